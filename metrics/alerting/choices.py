"""Choices of the alerting models and API, declared once."""

from django.db import models


class AlertCondition(models.TextChoices):
    ABOVE = "above", "value above the threshold"
    BELOW = "below", "value below the threshold"
    CHANGE_ABOVE = "change_above", "percentage change vs the window just before, above the threshold"
    CHANGE_BELOW = "change_below", "percentage change vs the window just before, below the threshold"


class AlertState(models.TextChoices):
    OK = "ok", "OK"
    PENDING = "pending", "Pending (breaching, not yet for_evaluations times in a row)"
    FIRING = "firing", "Firing"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending (first attempt or a retry scheduled)"
    DELIVERED = "delivered", "Delivered (the receiver answered 2xx)"
    FAILED = "failed", "Failed (gave up after the retry period, or no webhook any more)"


class AttemptOutcome(models.TextChoices):
    DELIVERED = "delivered", "2xx answer"
    HTTP_ERROR = "http_error", "non-2xx answer"
    TIMEOUT = "timeout", "no answer within the timeout"
    CONNECTION_ERROR = "connection_error", "could not connect or the connection broke"
    REFUSED = "refused", "the address failed the SSRF rule at send time"
    LOST = "lost", "the worker was lost while sending (killed, out of memory, time limit)"
