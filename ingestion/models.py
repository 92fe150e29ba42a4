"""Raw records as the platforms sent them, one row per (source, external_id) per record type.

Durations (`*_seconds`) derived from the timestamps are stored beside them so aggregation is a plain
SUM on every database; they are written by the upsert service from the same payload.
"""

from django.db import models

from cskpi.models import Department
from ingestion.choices import (
    AgentStatus,
    CashoutStatus,
    ChangeScope,
    CheckOutcome,
    InteractionStatus,
    RecordType,
    SlaState,
    SurveyKind,
)


def _sla_state():
    return models.CharField(max_length=8, choices=SlaState.choices, null=True, blank=True)


def _overdue_index(key: str, name: str) -> models.Index:
    """The records still waiting on the target `key`, by deadline: what the overdue sweep reads."""
    return models.Index(fields=[f"{key}_due_at"], name=name, condition=models.Q(**{f"{key}_sla": SlaState.PENDING}))


class RecordBase(models.Model):
    # No index of its own: every record type has indexes leading with the department (a redundant one
    # cost every insert and every update that moves an indexed column, e.g. a calendar change
    # measuring a year of records again, another index write).
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="+", db_index=False)
    source = models.CharField(max_length=64)
    external_id = models.CharField(max_length=128)
    updated_at = models.DateTimeField(null=True, blank=True, help_text="The sender's modification time.")
    content_hash = models.CharField(max_length=32, help_text="Digest of the content, updated_at excluded.")
    received_at = models.DateTimeField(help_text="When this version was stored.")

    class Meta:
        abstract = True


class Interaction(RecordBase):
    channel = models.CharField(max_length=32)
    agent = models.CharField(max_length=128, null=True, blank=True)
    customer = models.CharField(max_length=128, null=True, blank=True)
    customer_region = models.CharField(max_length=128, null=True, blank=True)
    topic = models.CharField(max_length=128, null=True, blank=True)
    parent_external_id = models.CharField(max_length=128, null=True, blank=True)
    created_at = models.DateTimeField()
    first_response_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=InteractionStatus.choices)
    wait_seconds = models.FloatField(null=True, blank=True)
    handle_seconds = models.FloatField(null=True, blank=True)
    contact_count = models.PositiveIntegerField(default=1)
    self_service = models.BooleanField(default=False)
    first_response_seconds = models.FloatField(null=True, blank=True)
    resolution_seconds = models.FloatField(null=True, blank=True)
    # Measured with the department's calendar and SLA policy (ingestion.service_levels).
    first_response_business_seconds = models.FloatField(null=True, blank=True)
    resolution_business_seconds = models.FloatField(null=True, blank=True)
    first_response_sla = _sla_state()
    first_response_due_at = models.DateTimeField(null=True, blank=True)
    resolution_sla = _sla_state()
    resolution_due_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "external_id"], name="interaction_key")]
        indexes = [
            models.Index(fields=["department", "created_at"], name="interaction_dept_time"),
            models.Index(fields=["department", "agent", "created_at"], name="interaction_dept_agent_time"),
            # A customer's first interaction with a department (metrics.customers): one index probe.
            models.Index(fields=["department", "customer", "created_at"], name="interaction_dept_customer_time"),
            _overdue_index("first_response", "interaction_first_response_due"),
            _overdue_index("resolution", "interaction_resolution_due"),
        ]


class SurveyResponse(RecordBase):
    kind = models.CharField(max_length=8, choices=SurveyKind.choices)
    score = models.FloatField()
    submitted_at = models.DateTimeField()
    interaction_external_id = models.CharField(max_length=128, null=True, blank=True)
    agent = models.CharField(max_length=128, null=True, blank=True)
    customer = models.CharField(max_length=128, null=True, blank=True)
    channel = models.CharField(max_length=32, null=True, blank=True)
    comment = models.TextField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "external_id"], name="survey_key")]
        indexes = [
            models.Index(fields=["department", "submitted_at"], name="survey_dept_time"),
            models.Index(fields=["department", "agent", "submitted_at"], name="survey_dept_agent_time"),
        ]


class Cashout(RecordBase):
    customer = models.CharField(max_length=128, null=True, blank=True)
    amount = models.DecimalField(max_digits=24, decimal_places=6)
    currency = models.CharField(max_length=3)
    channel = models.CharField(max_length=32, null=True, blank=True)
    requested_at = models.DateTimeField()
    first_response_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=CashoutStatus.choices)
    failure_reason = models.CharField(max_length=255, null=True, blank=True)
    processing_seconds = models.FloatField(null=True, blank=True)
    response_seconds = models.FloatField(null=True, blank=True)
    response_sla = _sla_state()
    response_due_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "external_id"], name="cashout_key")]
        indexes = [models.Index(fields=["department", "requested_at"], name="cashout_dept_time"),
                   _overdue_index("response", "cashout_response_due")]


class AgentEvent(RecordBase):
    """An agent's status from `at` on, until that agent's next event in the department (or the
    presence timeout): the intervals are derived from the events, never stored (ingestion.presence)."""

    agent = models.CharField(max_length=128)
    status = models.CharField(max_length=16, choices=AgentStatus.choices)
    at = models.DateTimeField()
    reason = models.CharField(max_length=255, null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "external_id"], name="agent_event_key")]
        indexes = [
            models.Index(fields=["department", "at"], name="agent_event_dept_time"),
            # The predecessor/successor lookups of the intervals and of /agents/now.
            models.Index(fields=["department", "agent", "at"], name="agent_event_dept_agent_time"),
        ]


class SystemCheck(RecordBase):
    """One run of a monitoring probe (`check_name`, e.g. payout-gateway) and its outcome.

    The field is `check_name`, published as `check`: a model field named `check` would hide
    Django's `Model.check()` (the system-check framework calls it on every model).
    """

    check_name = models.CharField(max_length=64)
    at = models.DateTimeField()
    outcome = models.CharField(max_length=8, choices=CheckOutcome.choices)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    detail = models.TextField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "external_id"], name="system_check_key")]
        indexes = [
            models.Index(fields=["department", "at"], name="system_check_dept_time"),
            # The series of one check: its predecessor (the interval KPI) and its successor (the
            # quarter a write re-marks) are each one probe of this index.
            models.Index(fields=["department", "check_name", "at"], name="system_check_series"),
        ]


class Customer(RecordBase):
    """A customer of a department from `started_at` until `ended_at` (null: still a customer)."""

    customer_region = models.CharField(max_length=128, null=True, blank=True)
    segment = models.CharField(max_length=128, null=True, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    mrr = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    currency = models.CharField(max_length=3, null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "external_id"], name="customer_key")]
        indexes = [
            models.Index(fields=["department", "started_at"], name="customer_dept_time"),
            models.Index(fields=["department", "ended_at"], name="customer_dept_end"),
        ]


class RecordChange(models.Model):
    """The change log: a quarter-hour of one department's records of one type that changed.

    Written by the upsert in the same transaction as the records (a lost broker message loses
    nothing); read and cleared by whoever keeps aggregates of the records (metrics recomputes the
    quarter, then deletes the row). `version` changes on every new mark: a consumer that handled
    version v deletes the row only if it is still v. `claimed_until`, `claimed_by`, `attempts`,
    `failed_at` and `last_error` are the consumer's lease and failure bookkeeping.
    """

    record_type = models.CharField(max_length=16, choices=RecordType.choices)
    # No index of its own: every batch writes thousands of marks (each index is a write per mark), and
    # the key below serves the lookups by department of each record type; the table is a queue, short.
    department = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="+", db_index=False)
    quarter_start = models.DateTimeField(help_text="UTC start of the 15-minute bucket.")
    scope = models.CharField(max_length=16, choices=ChangeScope.choices, default=ChangeScope.ALL,
                             db_default=ChangeScope.ALL)
    version = models.BigIntegerField()
    first_marked_at = models.DateTimeField()
    marked_at = models.DateTimeField()
    claimed_until = models.DateTimeField(null=True, blank=True)
    claimed_by = models.IntegerField(
        null=True, blank=True,
        help_text="PostgreSQL backend pid of the connection holding the claim (null: none, or SQLite).",
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    failed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["record_type", "department", "quarter_start"], name="record_change_key")
        ]
        indexes = [models.Index(fields=["first_marked_at"], name="record_change_age")]


class ServiceLevelRemeasure(models.Model):
    """A department whose records must be measured again with its calendar and SLA policy (one
    changed): those anchored at or after `since` (null: all). Written in the transaction of the
    change; `version` changes on every new request, so a worker that finished an older one leaves
    the row for another pass. /status shows the rows waiting; /metrics says `as_of` their oldest."""

    department = models.OneToOneField(Department, on_delete=models.CASCADE, related_name="+")
    since = models.DateTimeField(null=True, blank=True)
    version = models.BigIntegerField()
    requested_at = models.DateTimeField()
    claimed_until = models.DateTimeField(null=True, blank=True)
    records_done = models.BigIntegerField(default=0)
