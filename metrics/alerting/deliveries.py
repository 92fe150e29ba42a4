"""Webhook deliveries: at-least-once, one leased attempt at a time, exponential backoff for up to 24 h.

A delivery is an outbox row written with its event. Each attempt claims the row (a lease), logs
the attempt before sending (so one that dies with its worker is seen, as `lost`, and redone after
the lease), POSTs the frozen body signed with the rule's current secret, and records the outcome:
delivered on a 2xx, else the next attempt is scheduled. Running an attempt twice is harmless: a
delivered row is never sent again, and a leased one is left to its holder.
"""

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from time import monotonic, time

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cskpi.celery import app as celery_app
from metrics.alerting import webhooks
from metrics.alerting.choices import AttemptOutcome, DeliveryStatus
from metrics.alerting.models import AlertEvent, WebhookAttempt, WebhookDelivery

logger = logging.getLogger(__name__)

WORKER_LOST = "the worker was lost while sending (killed, out of memory or over its time limit)"
USER_AGENT = "cskpi-webhooks/1"
DELIVER_TASK = "metrics.alerting.deliver_webhook"


def webhook_delivery_create(*, event: AlertEvent, now: datetime) -> WebhookDelivery:
    """The outbox row of the event's webhook; its first attempt is queued after commit."""
    delivery = WebhookDelivery.objects.create(event=event, next_attempt_at=now, created_at=now)
    transaction.on_commit(lambda: webhook_delivery_enqueue(event_id=event.id))
    return delivery


def webhook_delivery_enqueue(*, event_id, countdown: float = 0) -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        if countdown <= 0:  # in-process: send now; later retries wait for the beat sweep
            webhook_delivery_attempt(event_id=event_id)
        return
    try:
        # By name: the task module imports this one.
        celery_app.send_task(DELIVER_TASK, args=(str(event_id),), countdown=max(countdown, 0))
    except Exception:  # noqa: BLE001 - broker down: the row is safe, the beat sweep queues it later
        logger.warning("could not queue webhook delivery %s; the sweep will", event_id, exc_info=True)


def retry_delay(attempts: int) -> float:
    """Seconds before the next attempt after `attempts` failed ones: exponential, capped, ±10 % jitter."""
    base = settings.CSKPI_WEBHOOK_RETRY_BASE_SECONDS * 2 ** min(attempts - 1, 30)
    return min(base, settings.CSKPI_WEBHOOK_RETRY_MAX_DELAY_SECONDS) * random.uniform(0.9, 1.1)


@dataclass(frozen=True)
class AttemptResult:
    sent: bool  # an attempt was made (False: delivered already, leased elsewhere, or not due)
    status: str  # the delivery's status afterwards
    retry_at: datetime | None  # when to try next, if anything is left to do


def _claim(*, event_id, now: datetime) -> tuple[WebhookDelivery | None, WebhookAttempt | None, AttemptResult | None]:
    with transaction.atomic():
        delivery = (WebhookDelivery.objects.select_for_update(of=("self",))
                    .select_related("event__rule").filter(event_id=event_id).first())
        if delivery is None:
            return None, None, AttemptResult(False, DeliveryStatus.FAILED, None)
        if delivery.status != DeliveryStatus.PENDING:
            return None, None, AttemptResult(False, delivery.status, None)
        if delivery.claimed_until and delivery.claimed_until > now:
            return None, None, AttemptResult(False, delivery.status, delivery.claimed_until)
        if delivery.next_attempt_at > now:
            return None, None, AttemptResult(False, delivery.status, delivery.next_attempt_at)
        # An attempt still open here outlived its lease: its worker died mid-send.
        WebhookAttempt.objects.filter(delivery=delivery, finished_at__isnull=True).update(
            finished_at=now, outcome=AttemptOutcome.LOST, error=WORKER_LOST)
        rule = delivery.event.rule
        if not rule.webhook_url:
            delivery.status = DeliveryStatus.FAILED
            delivery.save(update_fields=["status"])
            return None, None, AttemptResult(False, delivery.status, None)
        delivery.attempts += 1
        delivery.claimed_until = now + timedelta(seconds=settings.CSKPI_WEBHOOK_LEASE_SECONDS)
        delivery.save(update_fields=["attempts", "claimed_until"])
        attempt = WebhookAttempt.objects.create(delivery=delivery, number=delivery.attempts, started_at=now,
                                                url=rule.webhook_url)
        return delivery, attempt, None


def webhook_delivery_attempt(*, event_id, now: datetime | None = None) -> AttemptResult:
    """Make the next attempt of the event's webhook, if one is due and nobody else is making it."""
    now = now or timezone.now()
    delivery, attempt, skipped = _claim(event_id=event_id, now=now)
    if skipped:
        return skipped
    rule = delivery.event.rule
    body = delivery.event.payload.encode()
    started = monotonic()
    address, status_code, outcome, error = "", None, AttemptOutcome.CONNECTION_ERROR, ""
    try:
        target = webhooks.target_resolve(rule.webhook_url)
    except webhooks.WebhookTargetError as exc:
        outcome, error = AttemptOutcome.REFUSED, f"{exc.code}: {exc}"
    else:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Cskpi-Event-Id": str(delivery.event_id),
            "X-Cskpi-Signature": webhooks.signature_header(secret=rule.secret, body=body, timestamp=int(time())),
            "X-Cskpi-Delivery-Attempt": str(attempt.number),
        }
        sent = webhooks.post(target=target, headers=headers, body=body,
                             timeout=settings.CSKPI_WEBHOOK_TIMEOUT_SECONDS)
        address, status_code, error = sent.address, sent.status_code, sent.error
        if sent.timed_out:
            outcome = AttemptOutcome.TIMEOUT
        elif status_code is not None:
            outcome = AttemptOutcome.DELIVERED if 200 <= status_code < 300 else AttemptOutcome.HTTP_ERROR
            error = "" if outcome == AttemptOutcome.DELIVERED else f"HTTP {status_code}"
    elapsed = monotonic() - started
    return _record(delivery=delivery, attempt=attempt, address=address, status_code=status_code, outcome=outcome,
                   error=error, duration_ms=elapsed * 1000, now=now + timedelta(seconds=elapsed))


def _record(*, delivery: WebhookDelivery, attempt: WebhookAttempt, address: str, status_code: int | None,
            outcome: str, error: str, duration_ms: float, now: datetime) -> AttemptResult:
    with transaction.atomic():
        WebhookAttempt.objects.filter(id=attempt.id).update(
            finished_at=now, address=address, status_code=status_code, outcome=outcome, error=error[:2000],
            duration_ms=duration_ms)
        fields = {"claimed_until": None}
        retry_at = None
        if outcome == AttemptOutcome.DELIVERED:
            fields.update(status=DeliveryStatus.DELIVERED, delivered_at=now)
        else:
            retry_at = now + timedelta(seconds=retry_delay(delivery.attempts))
            if retry_at - delivery.created_at > timedelta(seconds=settings.CSKPI_WEBHOOK_RETRY_FOR_SECONDS):
                fields.update(status=DeliveryStatus.FAILED)
                retry_at = None
                logger.warning("webhook of event %s failed for good after %s attempts", delivery.event_id,
                               delivery.attempts)
            else:
                fields.update(next_attempt_at=retry_at)
        # Only the lease holder's attempt may write the outcome (a lease that ran out was retaken).
        WebhookDelivery.objects.filter(event_id=delivery.event_id, attempts=attempt.number).update(**fields)
    return AttemptResult(True, fields.get("status", DeliveryStatus.PENDING), retry_at)


def webhook_deliveries_due(*, now: datetime | None = None, grace_seconds: float = 30, limit: int = 500) -> list:
    """Event ids of pending deliveries whose attempt is overdue and not leased (the sweep queues them)."""
    now = now or timezone.now()
    return list(
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING,
                                       next_attempt_at__lte=now - timedelta(seconds=grace_seconds))
        .exclude(claimed_until__gt=now)
        .order_by("next_attempt_at").values_list("event_id", flat=True)[:limit]
    )
