"""Celery entrypoints of alerting: thin and idempotent (each can run twice or concurrently)."""

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from metrics.alerting import deliveries, services


@shared_task(name=services.EVALUATE_TASK, acks_late=True)
def evaluate_department_alerts(department_id: int) -> int:
    services.evaluation_flag_clear(department_id=department_id)  # a later recompute queues another run
    return services.alert_rules_evaluate(department_id=department_id)


@shared_task(name="metrics.alerting.evaluate_all_alerts", acks_late=True)
def evaluate_all_alerts() -> int:
    """Beat: every rule on the current clock (an absence rule fires with no recompute at all), and
    any delivery whose scheduled attempt was lost (broker down, retry further away than a countdown)."""
    transitions = services.alert_rules_evaluate(defer_to_recompute=True)
    for event_id in deliveries.webhook_deliveries_due():
        deliveries.webhook_delivery_enqueue(event_id=event_id)
    return transitions


# Longer delays are left to the beat sweep: a Redis ETA message past the visibility timeout would be
# redelivered while it waits.
_MAX_COUNTDOWN = 900


@shared_task(name=deliveries.DELIVER_TASK, acks_late=True)
def deliver_webhook(event_id: str) -> str:
    result = deliveries.webhook_delivery_attempt(event_id=event_id)
    leased_elsewhere = not result.sent and result.retry_at is not None and result.status == "pending"
    if result.retry_at is not None and (result.sent or leased_elsewhere):
        delay = (result.retry_at - timezone.now()).total_seconds() + (0.5 if leased_elsewhere else 0)
        if delay <= _MAX_COUNTDOWN and not settings.CELERY_TASK_ALWAYS_EAGER:
            deliveries.webhook_delivery_enqueue(event_id=event_id, countdown=delay)
    return result.status
