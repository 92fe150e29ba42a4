from django.db import models


class Role(models.TextChoices):
    INGEST = "ingest", "Ingest (post records, read nothing)"
    AGENT = "agent", "Agent (own KPIs only)"
    VIEWER = "viewer", "Viewer (department KPIs, no per-agent breakdown)"
    MANAGER = "manager", "Manager (everything in the department)"


class ReadLevel(models.IntegerChoices):
    """What a caller may read of one department, ordered: a higher level includes the lower."""

    NONE = 0
    AGENT = 1
    DEPARTMENT = 2
    FULL = 3


ROLE_READ_LEVEL = {
    Role.INGEST: ReadLevel.NONE,
    Role.AGENT: ReadLevel.AGENT,
    Role.VIEWER: ReadLevel.DEPARTMENT,
    Role.MANAGER: ReadLevel.FULL,
}


class SlaClockKind(models.TextChoices):
    """Which clock an SLA target runs on."""

    BUSINESS = "business", "Business hours (the department's calendar)"
    CALENDAR = "calendar", "Calendar time (every second counts)"


# A department's reporting currency unless it says otherwise (ISO 4217).
DEFAULT_CURRENCY = "VND"
