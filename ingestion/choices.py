from datetime import timedelta

from django.db import models

# The grain of the change log, and so of the KPI engine's exact layer (metrics.cubes).
QUARTER_SECONDS = 900
QUARTER = timedelta(seconds=QUARTER_SECONDS)


class ChangeScope(models.TextChoices):
    """What changed in the records of a quarter the change log marks: anything (records written,
    updated or moved), or only the columns measured with the department's calendar and SLA policy (a
    calendar, policy or zone change measuring stored records again, a deadline passing). A consumer
    may redo less for the second; two marks of a quarter with different scopes make `all`."""

    ALL = "all", "Records"
    SERVICE_LEVELS = "service_levels", "Service-level columns"


class RecordType(models.TextChoices):
    INTERACTION = "interaction", "Interaction"
    SURVEY = "survey", "Survey response"
    CASHOUT = "cashout", "Cashout"
    AGENT_EVENT = "agent_event", "Agent status event"
    SYSTEM_CHECK = "system_check", "System check"
    CUSTOMER = "customer", "Customer"


class InteractionStatus(models.TextChoices):
    OPEN = "open", "Open"
    PENDING = "pending", "Pending"
    RESOLVED = "resolved", "Resolved"
    ABANDONED = "abandoned", "Abandoned"
    MISSED = "missed", "Missed"


class SurveyKind(models.TextChoices):
    CSAT = "csat", "CSAT (1-5)"
    NPS = "nps", "NPS (0-10)"
    CES = "ces", "Customer effort (1-7)"
    QA = "qa", "Quality review (0-100)"


# (lowest, highest, whole numbers only)
SURVEY_SCALES: dict[str, tuple[int, int, bool]] = {
    SurveyKind.CSAT: (1, 5, True),
    SurveyKind.NPS: (0, 10, True),
    SurveyKind.CES: (1, 7, True),
    SurveyKind.QA: (0, 100, False),
}


class CashoutStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class AgentStatus(models.TextChoices):
    AVAILABLE = "available", "Available"
    BUSY = "busy", "Busy"
    AWAY = "away", "Away"
    OFFLINE = "offline", "Offline"


# An agent is online in any status but offline.
ONLINE_STATUSES = (AgentStatus.AVAILABLE, AgentStatus.BUSY, AgentStatus.AWAY)


class CheckOutcome(models.TextChoices):
    OK = "ok", "OK"
    FAILED = "failed", "Failed"


class UpsertResult(models.TextChoices):
    CREATED = "created", "Created"
    UPDATED = "updated", "Updated"
    UNCHANGED = "unchanged", "Unchanged"
    STALE = "stale", "Stale (older than the stored version; ignored)"


# Channels need no registration; these are the common ones, shown in the API docs.
KNOWN_CHANNELS = ("phone", "email", "chat", "facebook", "zalo", "web", "sms", "app")
DEFAULT_SOURCE = "api"


class SlaState(models.TextChoices):
    """Where a record stands against one SLA target."""

    MET = "met", "Met"
    BREACHED = "breached", "Breached (late, or overdue without a response)"
    PENDING = "pending", "Not yet due"
