from django.conf import settings
from django.db import models

from cskpi.choices import DEFAULT_CURRENCY, Role
from cskpi.validators import validate_currency, validate_timezone


def default_timezone() -> str:
    return settings.CSKPI_DEFAULT_TIMEZONE


class Department(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    timezone = models.CharField(max_length=64, default=default_timezone, validators=[validate_timezone])
    # The reporting currency: money on the department's records (a customer's MRR) is in it.
    # db_default too: rows written by code that predates the column (old migrations, raw SQL) get it.
    currency = models.CharField(max_length=3, default=DEFAULT_CURRENCY, db_default=DEFAULT_CURRENCY,
                                validators=[validate_currency],
                                help_text="ISO 4217 code of the department's reporting currency.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Grant(models.Model):
    """A user's role in one department. An `agent` grant is linked to one agent id."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="grants")
    department = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="grants")
    role = models.CharField(max_length=16, choices=Role.choices)
    agent = models.CharField(max_length=128, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "department", "role"], name="grant_unique_role"),
            models.CheckConstraint(
                condition=~models.Q(role=Role.AGENT) | ~models.Q(agent=""), name="grant_agent_needs_agent_id"
            ),
        ]

    def __str__(self) -> str:
        suffix = f" ({self.agent})" if self.agent else ""
        return f"{self.user} {self.role}@{self.department}{suffix}"


class ApiToken(models.Model):
    """A bearer token. Only its SHA-256 digest is stored; the token itself is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True, default="")
    prefix = models.CharField(max_length=12, help_text="First characters, to recognise a token.")
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"


class DepartmentCalendar(models.Model):
    """A department's business-hours calendar: its versions as checked by `cskpi.calendars`.

    `revision` changes on every write: whoever keeps numbers measured with the calendar (ingestion's
    per-record SLA columns) compares it with the one it compiled.
    """

    department = models.OneToOneField(Department, on_delete=models.CASCADE, related_name="calendar")
    versions = models.JSONField(default=list)
    revision = models.BigIntegerField()
    updated_at = models.DateTimeField()


class SlaPolicy(models.Model):
    """A department's SLA targets as checked by `cskpi.service_levels` (`body`); see DepartmentCalendar
    for `revision`."""

    department = models.OneToOneField(Department, on_delete=models.CASCADE, related_name="sla_policy")
    body = models.JSONField()
    revision = models.BigIntegerField()
    updated_at = models.DateTimeField()
