"""Alert rules, the events of their state transitions, and the webhook deliveries of those events.

Imported by `metrics.models`, so they belong to the `metrics` app (migration metrics/0005_alerts)."""

import uuid

from django.conf import settings
from django.db import models

from cskpi.models import Department
from metrics.alerting.choices import AlertCondition, AlertState, AttemptOutcome, DeliveryStatus


class AlertRule(models.Model):
    """Watches one catalog KPI of one department over a rolling window ending now."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, blank=True, default="")
    department = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="+")
    kpi = models.CharField(max_length=64)
    agent = models.CharField(max_length=128, blank=True, default="", help_text="Filter: only this agent.")
    channel = models.CharField(max_length=32, blank=True, default="", help_text="Filter: only this channel.")
    # Published as `check` (a field named `check` would hide Django's Model.check()).
    check_name = models.CharField(max_length=64, blank=True, default="", help_text="Filter: only this system check.")
    window_seconds = models.PositiveIntegerField()
    condition = models.CharField(max_length=16, choices=AlertCondition.choices)
    threshold = models.FloatField()
    min_sample_size = models.PositiveIntegerField(default=0)
    for_evaluations = models.PositiveSmallIntegerField(default=1)
    webhook_url = models.CharField(max_length=2000, blank=True, default="")
    # Needed in the clear to sign with it (HMAC); never returned by the API.
    secret = models.CharField(max_length=256, blank=True, default="")
    enabled = models.BooleanField(default=True)
    # Evaluation state.
    state = models.CharField(max_length=16, choices=AlertState.choices, default=AlertState.OK)
    breaches = models.PositiveIntegerField(default=0, help_text="Consecutive breaching evaluations.")
    state_since = models.DateTimeField(null=True, blank=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    last_value = models.FloatField(null=True, blank=True)
    last_sample_size = models.BigIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["department", "enabled"], name="alert_rule_department")]


class AlertEvent(models.Model):
    """One state transition of a rule, with the reading that caused it.

    The rule's KPI, filters, condition, threshold and window are copied in: the event stays what it
    was when the rule is edited, and who may read it follows its own filters."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="events")
    department = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="+")
    kpi = models.CharField(max_length=64)
    agent = models.CharField(max_length=128, blank=True, default="")
    channel = models.CharField(max_length=32, blank=True, default="")
    check_name = models.CharField(max_length=64, blank=True, default="")
    condition = models.CharField(max_length=16, choices=AlertCondition.choices)
    threshold = models.FloatField()
    window_seconds = models.PositiveIntegerField()
    state = models.CharField(max_length=16, choices=AlertState.choices)
    previous_state = models.CharField(max_length=16, choices=AlertState.choices)
    value = models.FloatField(null=True, blank=True)
    sample_size = models.BigIntegerField(default=0)
    baseline_value = models.FloatField(null=True, blank=True, help_text="The window before (change conditions).")
    change_percent = models.FloatField(null=True, blank=True)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    at = models.DateTimeField()
    reason = models.CharField(max_length=32, default="evaluation")
    payload = models.TextField(blank=True, default="", help_text="The webhook body, frozen at the transition.")

    class Meta:
        indexes = [
            models.Index(fields=["department", "-at"], name="alert_event_department_at"),
            models.Index(fields=["rule", "-at"], name="alert_event_rule_at"),
        ]


class WebhookDelivery(models.Model):
    """The outbox entry of one event's webhook: at-least-once, retried with backoff, leased per attempt."""

    event = models.OneToOneField(AlertEvent, on_delete=models.CASCADE, primary_key=True, related_name="delivery")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    claimed_until = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due")]


class WebhookAttempt(models.Model):
    """One POST of a delivery, logged before it is sent (so an attempt that dies with its worker shows)."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    url = models.CharField(max_length=2000)
    address = models.CharField(max_length=64, blank=True, default="", help_text="The IP address connected to.")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=AttemptOutcome.choices, blank=True, default="")
    error = models.TextField(blank=True, default="")
    duration_ms = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="webhook_attempt_number")]
