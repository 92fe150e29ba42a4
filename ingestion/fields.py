"""The record types, each declared once: model, time, fields with their roles, lock namespace.

Everything that used to repeat a record type derives from its `RecordSpec`: the batch validator
(`ingestion.validation`), the OpenAPI input schemas (`ingestion.schema`), the CSV/JSONL
import, the upsert (table layout, change-log marks), the record-list filters and redaction
(`ingestion.apis`, `ingestion.selectors`), the KPI engine's anchors and recompute locks
(`metrics`), and the tests that loop over record types. docs/record-types.md says how to add one.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from django.db import models

from cskpi.choices import ReadLevel
from ingestion.choices import (
    DEFAULT_SOURCE,
    QUARTER,
    SURVEY_SCALES,
    AgentStatus,
    CashoutStatus,
    CheckOutcome,
    InteractionStatus,
    RecordType,
    SurveyKind,
)
from ingestion.models import AgentEvent, Cashout, Customer, Interaction, SurveyResponse, SystemCheck
from ingestion.presence import presence_span


class FieldType(StrEnum):
    STR = "str"  # free text
    SLUG = "slug"  # lowercase a-z, 0-9, "-" and "_"
    DEPARTMENT = "department"  # slug of an existing department
    DATETIME = "datetime"  # ISO 8601 with an offset
    DURATION = "duration"  # seconds, a number >= 0
    INT = "int"  # whole number >= min_value
    BOOL = "bool"
    DECIMAL = "decimal"  # money: decimal string (or integer) > 0 (>= 0 with min_value=0), never a float
    CURRENCY = "currency"  # ISO 4217
    CHOICE = "choice"
    SCORE = "score"  # a number; its scale is a record rule (it depends on the survey kind)


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: FieldType
    doc: str
    example: Any = None
    required: bool = False
    default: Any = None  # used when absent (or null); None means the column is NULL
    max_length: int | None = None
    choices: tuple[str, ...] | None = None
    min_value: int | None = None
    column: str | None = None  # model column when it differs from the public name
    # --- roles ---
    public: bool = True  # returned when records are read back (GET); False: accepted and stored only
    filterable: bool = False  # an exact-match filter of the record list: GET /api/v1/<plural>?<name>=
    dimension: bool = False  # KPIs group and filter by it (kept as a dimension of the cubes)
    redacted_below: ReadLevel | None = None  # hidden from callers whose read level is below this
    sensitive: bool = False  # personal or financial data: no error message or log line echoes it
    owner: bool = False  # the agent the record belongs to: agent grants read only their own records
    department_currency: bool = False  # a currency that must be its department's (`currency_mismatch`)

    @property
    def target(self) -> str:
        return self.column or self.name


@dataclass(frozen=True)
class SlaClock:
    """A service-level target a record type is measured against: from the anchor to `stop`, against
    the department policy's `target` (business seconds, or the clock the policy names for it).

    Stored per record beside its fields: `<key>_sla` (met | breached | pending; null: no target) and
    `<key>_due_at` (the deadline: the last instant a `stop` still meets the target; null: no target,
    or never due because the calendar never opens).
    """

    key: str
    stop: str
    target: str
    exempt_statuses: tuple[str, ...] = ()  # records with these statuses have no target on this clock

    @property
    def state_column(self) -> str:
        return f"{self.key}_sla"

    @property
    def due_column(self) -> str:
        return f"{self.key}_due_at"


# A rule sees a row of valid, typed values (keyed by column) and yields (field, code, message).
Rule = Callable[[dict], Iterator[tuple[str, str, str]]]


@dataclass(frozen=True)
class RecordSpec:
    """One record type. A record sits at an instant (`anchor`) or spans time (`start`, `end`)."""

    record_type: RecordType
    plural: str  # URL segment and import command argument
    model: type[models.Model]
    fields: tuple[FieldSpec, ...]
    # First key of the PostgreSQL advisory lock serialising the recompute of this record type's
    # aggregates of one department (the second key is the department id); unique per record type.
    lock_namespace: int
    anchor: str | None = None  # the column whose time places a record in a period
    start: str | None = None  # records that span time: the columns of the span (end null: ongoing)
    end: str | None = None
    # A span counted as a stock: the record enters at `start` and leaves at `end`, and only those two
    # instants place it in the aggregates (a level at t is everything that entered before t less what
    # left), so it counts in two quarter-hours, not in every quarter of its span.
    stock: bool = False
    rules: tuple[Rule, ...] = field(default=())
    derived: Callable[[dict], dict] | None = None  # durations stored beside the timestamps
    # Records that set a state (agent presence): the column whose value holds from the anchor until
    # the owner's next record in the department, at most the presence timeout (ingestion.presence).
    holds: str | None = None
    # Records of one department with equal values of these columns form a series ordered by the
    # anchor, and a record's aggregates may depend on its predecessor in it (the interval between
    # consecutive system checks). A write then also re-marks the quarter of the record that follows
    # the written one's old and new place (ingestion.services), whose predecessor it changed.
    series: tuple[str, ...] = ()
    # Durations on the department's business-hours clock, measured from the anchor: (column, stop
    # column) each; and the SLA targets the record is measured against (ingestion.service_levels).
    business_durations: tuple[tuple[str, str], ...] = ()
    sla_clocks: tuple[SlaClock, ...] = ()

    def __post_init__(self):
        if (self.anchor is None) == (self.start is None) or (self.start is None) != (self.end is None):
            raise ValueError(f"{self.plural}: declare either an anchor or a start and an end")
        if self.holds is not None and (self.anchor is None or self.owner is None):
            raise ValueError(f"{self.plural}: a state record needs an anchor and an owner")
        if self.stock and self.start is None:
            raise ValueError(f"{self.plural}: a stock declares a start and an end")
        names = {f.target for f in self.fields}
        missing = [c for c in (self.anchor, self.start, self.end) if c is not None and c not in names]
        if missing:
            raise ValueError(f"{self.plural}: no declared field {', '.join(missing)}")
        if self.series and (self.anchor is None or not set(self.series) <= names):
            raise ValueError(f"{self.plural}: a series needs an anchor and declared columns")

    @property
    def title(self) -> str:
        """The record type in CamelCase (`SystemCheck`): the prefix of its class and schema names."""
        return "".join(part.capitalize() for part in self.record_type.value.split("_"))

    @property
    def identifier(self) -> str:
        """The plural as a Python/OpenAPI identifier (`system_checks`): operation ids."""
        return self.plural.replace("-", "_")

    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def field_named(self, name: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def time(self) -> str:
        """The column that orders records in lists and that `start`/`end` filters apply to."""
        return self.anchor or self.start  # type: ignore[return-value]

    @property
    def time_columns(self) -> tuple[str, ...]:
        """The columns whose values place a stored record in the aggregates."""
        return (self.anchor,) if self.anchor else (self.start, self.end)  # type: ignore[return-value]

    def quarters_touched(self, times: tuple) -> list[datetime]:
        """Moments, one per quarter-hour, that a record with these `time_columns` values counts in.

        A point record counts in the quarter of its anchor; a span in every quarter from its start
        to its end (an ongoing span, end null, only in its start's quarter until it ends); a stock in
        the quarters of its start and of its end. A state record counts in every quarter its status
        can decide (`ingestion.presence.presence_span`).
        """
        if self.holds:
            start, end = presence_span(times[0])
        elif self.anchor:
            return [times[0]]
        else:
            start, end = times
            if self.stock:
                return [start] if end is None else [start, end]
        return self.span_quarters(start, end)

    @staticmethod
    def span_quarters(start, end) -> list[datetime]:
        moments, moment = [start], start + QUARTER
        while end is not None and moment < end:
            moments.append(moment)
            moment += QUARTER
        if end is not None and end > start:
            moments.append(end - timedelta(microseconds=1))  # the quarter holding the span's last instant
        return moments

    @property
    def derived_columns(self) -> tuple[str, ...]:
        """The columns `derived` writes beside the sender's fields (durations), found by a probe row."""
        return self.timestamp_durations + self.service_level_columns

    @property
    def timestamp_durations(self) -> tuple[str, ...]:
        """The columns `derived` writes from the row alone (found by a probe row)."""
        if self.derived is None:
            return ()
        moment = datetime(2000, 1, 1, tzinfo=UTC)
        probe = {f.target: moment if f.type == FieldType.DATETIME else None for f in self.fields}
        return tuple(self.derived(probe | {column: moment for column in self.time_columns}))

    @property
    def service_level_columns(self) -> tuple[str, ...]:
        """The columns measured with the department's calendar and SLA policy (ingestion.service_levels)."""
        return (*(column for column, _ in self.business_durations),
                *(c for clock in self.sla_clocks for c in (clock.state_column, clock.due_column)))

    @property
    def filters(self) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if f.filterable)

    @property
    def dimensions(self) -> tuple[str, ...]:
        return tuple(f.target for f in self.fields if f.dimension)

    @property
    def owner(self) -> str | None:
        """The column naming the agent a record belongs to, if the type has one."""
        return next((f.target for f in self.fields if f.owner), None)

    def redact(self, data: dict, read_level: ReadLevel) -> dict:
        """A record as read back (`data`, keyed by public name) as a caller at `read_level` may see it."""
        for f in self.fields:
            if not f.public or (f.redacted_below is not None and read_level < f.redacted_below):
                data.pop(f.name, None)
        owner = next((f.name for f in self.fields if f.owner), None)
        if owner is not None and read_level == ReadLevel.DEPARTMENT and owner in data:
            data[owner] = None  # viewers see department-level data, no per-agent breakdown
        return data


# --- shared fields ---------------------------------------------------------------------------
def _key_fields() -> tuple[FieldSpec, ...]:
    return (
        FieldSpec("external_id", FieldType.STR, "The sender's id of the record; with `source` the upsert key.",
                  example="T-100234", required=True, max_length=128),
        FieldSpec("source", FieldType.STR, "The sending system; `(source, external_id)` is unique per record type.",
                  example="zendesk", default=DEFAULT_SOURCE, max_length=64),
        FieldSpec("department", FieldType.DEPARTMENT, "Slug of an existing department.", example="cskh-hn",
                  required=True, max_length=64),
        FieldSpec("updated_at", FieldType.DATETIME,
                  "The sender's modification time. A version older than the stored one is ignored (`stale`); "
                  "without it the last write wins.", example="2026-03-02T09:30:00+07:00"),
    )


# --- rules -----------------------------------------------------------------------------------
def _not_before(row: dict, anchor: str, fields: tuple[str, ...]) -> Iterator[tuple[str, str, str]]:
    start = row[anchor]
    for name in fields:
        value = row[name]
        if value is not None and value < start:
            yield name, "before_anchor", f"{name} is before {anchor}."


def _interaction_times(row: dict):
    yield from _not_before(row, "created_at", ("first_response_at", "resolved_at"))


def _interaction_status(row: dict):
    status = row["status"]
    if (status == InteractionStatus.RESOLVED) != (row["resolved_at"] is not None):
        yield ("status", "status_contradiction",
               "resolved_at is given exactly when status is resolved." if row["resolved_at"] is None
               else f"status {status} contradicts resolved_at; a record with resolved_at is resolved.")
    if status in (InteractionStatus.ABANDONED, InteractionStatus.MISSED) and row["first_response_at"] is not None:
        yield "status", "status_contradiction", f"A {status} interaction has no first_response_at."


def _interaction_derived(row: dict) -> dict:
    created = row["created_at"]
    first, resolved = row["first_response_at"], row["resolved_at"]
    return {
        "first_response_seconds": (first - created).total_seconds() if first is not None else None,
        "resolution_seconds": (resolved - created).total_seconds() if resolved is not None else None,
    }


def _survey_scale(row: dict):
    low, high, whole = SURVEY_SCALES[row["kind"]]
    score = row["score"]
    if not low <= score <= high or (whole and score != int(score)):
        kind = "whole numbers " if whole else ""
        yield "score", "out_of_scale", f"A {row['kind']} score is {kind}from {low} to {high}; got {score:g}."


_FINISHED = (CashoutStatus.SUCCEEDED, CashoutStatus.FAILED)


def _cashout_times(row: dict):
    yield from _not_before(row, "requested_at", ("first_response_at", "completed_at"))


def _cashout_status(row: dict):
    status = row["status"]
    if (status in _FINISHED) != (row["completed_at"] is not None):
        yield ("status", "status_contradiction",
               "completed_at is given exactly when status is succeeded or failed.")
    if row["failure_reason"] is not None and status != CashoutStatus.FAILED:
        yield "failure_reason", "status_contradiction", "failure_reason is only given when status is failed."


def _cashout_derived(row: dict) -> dict:
    requested = row["requested_at"]
    completed, first = row["completed_at"], row["first_response_at"]
    return {
        "processing_seconds": (completed - requested).total_seconds() if completed is not None else None,
        "response_seconds": (first - requested).total_seconds() if first is not None else None,
    }


# --- the record types ------------------------------------------------------------------------
INTERACTION = RecordSpec(
    record_type=RecordType.INTERACTION,
    plural="interactions",
    model=Interaction,
    lock_namespace=7_301,
    anchor="created_at",
    fields=(
        *_key_fields(),
        FieldSpec("channel", FieldType.SLUG, "Channel slug, e.g. phone, email, chat, facebook, zalo, web; "
                  "new channels need no registration.", example="phone", required=True, max_length=32,
                  filterable=True, dimension=True),
        FieldSpec("agent", FieldType.STR, "The sender's agent id; agents need no registration.",
                  example="agent-17", max_length=128, filterable=True, dimension=True, owner=True),
        FieldSpec("customer", FieldType.STR, "The sender's customer id.", example="C-88121", max_length=128,
                  sensitive=True),
        FieldSpec("customer_region", FieldType.STR, "Customer region, e.g. a province; KPIs group and filter "
                  "by it (`customer_region`).", example="Hà Nội", max_length=128, dimension=True),
        FieldSpec("topic", FieldType.STR, "Topic of the contact.", example="card-blocked", max_length=128,
                  dimension=True),
        FieldSpec("parent_external_id", FieldType.STR, "external_id of the parent ticket (same source).",
                  example="T-100200", max_length=128),
        FieldSpec("created_at", FieldType.DATETIME, "When the contact arrived; places it in a period.",
                  example="2026-03-02T09:00:00+07:00", required=True),
        FieldSpec("first_response_at", FieldType.DATETIME, "First answer to the customer (>= created_at).",
                  example="2026-03-02T09:02:30+07:00"),
        FieldSpec("resolved_at", FieldType.DATETIME, "When it was resolved (>= created_at); given exactly when "
                  "status is resolved.", example="2026-03-02T09:20:00+07:00"),
        FieldSpec("status", FieldType.CHOICE, "open | pending | resolved | abandoned | missed. abandoned and "
                  "missed contacts have no first_response_at.", example="resolved", required=True,
                  choices=tuple(InteractionStatus.values), filterable=True),
        FieldSpec("wait_seconds", FieldType.DURATION, "Seconds queued before an agent took it (>= 0).",
                  example=42),
        FieldSpec("handle_seconds", FieldType.DURATION, "Talk + hold + after-contact work in seconds (>= 0).",
                  example=610.5),
        FieldSpec("contact_count", FieldType.INT, "Contacts the customer needed for this issue (>= 1).",
                  example=1, default=1, min_value=1),
        FieldSpec("self_service", FieldType.BOOL, "Resolved by bot/FAQ/portal without an agent.",
                  example=False, default=False),
    ),
    rules=(_interaction_times, _interaction_status),
    derived=_interaction_derived,
    business_durations=(("first_response_business_seconds", "first_response_at"),
                        ("resolution_business_seconds", "resolved_at")),
    sla_clocks=(
        SlaClock("first_response", "first_response_at", "first_response_seconds"),
        # A contact that ended without reaching anyone is never resolved: abandoned_rate and missed_calls
        # count it, the resolution target does not.
        SlaClock("resolution", "resolved_at", "resolution_seconds",
                 exempt_statuses=(InteractionStatus.ABANDONED, InteractionStatus.MISSED)),
    ),
)

SURVEY = RecordSpec(
    record_type=RecordType.SURVEY,
    plural="surveys",
    model=SurveyResponse,
    lock_namespace=7_302,
    anchor="submitted_at",
    fields=(
        *_key_fields(),
        FieldSpec("kind", FieldType.CHOICE, "csat (1-5) | nps (0-10) | ces (1-7): whole numbers; qa (0-100): "
                  "any number.", example="csat", required=True, choices=tuple(SurveyKind.values),
                  filterable=True),
        FieldSpec("score", FieldType.SCORE, "The score, within the scale of its kind.", example=5,
                  required=True),
        FieldSpec("submitted_at", FieldType.DATETIME, "When the response was given; places it in a period.",
                  example="2026-03-02T10:00:00+07:00", required=True),
        FieldSpec("interaction", FieldType.STR, "external_id of the interaction it rates (same source).",
                  example="T-100234", max_length=128, column="interaction_external_id"),
        FieldSpec("agent", FieldType.STR, "The sender's agent id.", example="agent-17", max_length=128,
                  filterable=True, dimension=True, owner=True),
        FieldSpec("customer", FieldType.STR, "The sender's customer id.", example="C-88121", max_length=128,
                  sensitive=True),
        FieldSpec("channel", FieldType.SLUG, "Channel slug.", example="chat", max_length=32, filterable=True,
                  dimension=True),
        FieldSpec("comment", FieldType.STR, "Free-text comment.", example="Nhanh và lịch sự.", max_length=4000,
                  sensitive=True),
    ),
    rules=(_survey_scale,),
)

CASHOUT = RecordSpec(
    record_type=RecordType.CASHOUT,
    plural="cashouts",
    model=Cashout,
    lock_namespace=7_303,
    anchor="requested_at",
    fields=(
        *_key_fields(),
        FieldSpec("customer", FieldType.STR, "The sender's customer id.", example="C-88121", max_length=128,
                  sensitive=True),
        FieldSpec("amount", FieldType.DECIMAL, "Amount as a decimal string (or an integer) > 0, at most 6 "
                  "decimals; floats are refused (they lose precision). Shown to managers and staff only.",
                  example="1500000.00", required=True, redacted_below=ReadLevel.FULL, sensitive=True),
        FieldSpec("currency", FieldType.CURRENCY, "ISO 4217 code, uppercase.", example="VND", required=True),
        FieldSpec("channel", FieldType.SLUG, "Channel slug.", example="app", max_length=32, filterable=True,
                  dimension=True),
        FieldSpec("requested_at", FieldType.DATETIME, "When the customer asked; places it in a period.",
                  example="2026-03-02T11:00:00+07:00", required=True),
        FieldSpec("first_response_at", FieldType.DATETIME, "First answer to the customer (>= requested_at).",
                  example="2026-03-02T11:00:40+07:00"),
        FieldSpec("completed_at", FieldType.DATETIME, "When it succeeded or failed (>= requested_at); given "
                  "exactly when status is succeeded or failed.", example="2026-03-02T11:04:00+07:00"),
        FieldSpec("status", FieldType.CHOICE, "pending | processing | succeeded | failed.",
                  example="succeeded", required=True, choices=tuple(CashoutStatus.values), filterable=True),
        FieldSpec("failure_reason", FieldType.STR, "Why it failed; only with status failed.",
                  example="bank_timeout", max_length=255),
    ),
    rules=(_cashout_times, _cashout_status),
    derived=_cashout_derived,
    sla_clocks=(SlaClock("response", "first_response_at", "cashout_response_seconds"),),
)

AGENT_EVENT = RecordSpec(
    record_type=RecordType.AGENT_EVENT,
    plural="agent-events",
    model=AgentEvent,
    lock_namespace=7_304,
    anchor="at",
    holds="status",
    fields=(
        *_key_fields(),
        FieldSpec("agent", FieldType.STR, "The sender's agent id whose status this is.", example="agent-17",
                  required=True, max_length=128, filterable=True, dimension=True, owner=True),
        FieldSpec("status", FieldType.CHOICE, "available | busy | away | offline. Holds from `at` until the "
                  "agent's next event in the department, at most CSKPI_PRESENCE_TIMEOUT_SECONDS (default 8 h); "
                  "online means available, busy or away.", example="available", required=True,
                  choices=tuple(AgentStatus.values), filterable=True),
        FieldSpec("at", FieldType.DATETIME, "When the agent entered the status; places the event in time.",
                  example="2026-03-02T08:00:00+07:00", required=True),
        FieldSpec("reason", FieldType.STR, "Why, in the sender's words (e.g. lunch, training).", example="lunch",
                  max_length=255),
    ),
)


SYSTEM_CHECK = RecordSpec(
    record_type=RecordType.SYSTEM_CHECK,
    plural="system-checks",
    model=SystemCheck,
    lock_namespace=7_312,
    anchor="at",
    series=("check_name",),
    fields=(
        *_key_fields(),
        FieldSpec("check", FieldType.SLUG, "Slug of the probe that ran, e.g. payout-gateway, bank-api; new checks "
                  "need no registration. Consecutive runs of one check in one department give the interval KPI.",
                  example="payout-gateway", required=True, max_length=64, column="check_name", filterable=True,
                  dimension=True),
        FieldSpec("at", FieldType.DATETIME, "When the check ran; places it in a period.",
                  example="2026-03-02T09:15:00+07:00", required=True),
        FieldSpec("outcome", FieldType.CHOICE, "ok | failed.", example="ok", required=True,
                  choices=tuple(CheckOutcome.values), filterable=True),
        FieldSpec("duration_ms", FieldType.INT, "How long the check took, in milliseconds (>= 0).", example=230,
                  min_value=0),
        FieldSpec("detail", FieldType.STR, "What the check saw, e.g. an error message.", example="HTTP 200 in 230 ms",
                  max_length=2000),
    ),
)

def _customer_times(row: dict):
    yield from _not_before(row, "started_at", ("ended_at",))


CUSTOMER = RecordSpec(
    record_type=RecordType.CUSTOMER,
    plural="customers",
    model=Customer,
    lock_namespace=7_305,
    start="started_at",
    end="ended_at",
    stock=True,
    fields=(
        *_key_fields(),  # external_id: the id interactions and cashouts carry in `customer`
        FieldSpec("region", FieldType.STR, "The customer's region, e.g. a province (the KPIs' `customer_region`).",
                  example="Hà Nội", max_length=128, column="customer_region", filterable=True, dimension=True),
        FieldSpec("segment", FieldType.STR, "The customer's segment, e.g. a plan or tier.", example="premium",
                  max_length=128, filterable=True, dimension=True),
        FieldSpec("started_at", FieldType.DATETIME, "When they became a customer.",
                  example="2026-01-15T10:00:00+07:00", required=True),
        FieldSpec("ended_at", FieldType.DATETIME, "When they left or cancelled (>= started_at); absent while still "
                  "a customer. Active at t means started_at < t and (no ended_at or ended_at >= t).",
                  example="2026-06-01T00:00:00+07:00"),
        FieldSpec("mrr", FieldType.DECIMAL, "Monthly recurring revenue as a decimal string (or an integer) >= 0, "
                  "at most 6 decimals, in the department's reporting currency; floats are refused. Shown to "
                  "managers and staff only.", example="250000", min_value=0, redacted_below=ReadLevel.FULL,
                  sensitive=True),
        FieldSpec("currency", FieldType.CURRENCY, "ISO 4217 code of `mrr`; when given it must be the department's "
                  "reporting currency (`currency_mismatch`).", example="VND", department_currency=True),
    ),
    rules=(_customer_times,),
)

# Every record type, in one place: the rest of the code and the tests iterate these.
RECORD_SPECS: dict[str, RecordSpec] = {
    spec.plural: spec for spec in (INTERACTION, SURVEY, CASHOUT, AGENT_EVENT, SYSTEM_CHECK, CUSTOMER)
}
SPEC_BY_TYPE: dict[str, RecordSpec] = {spec.record_type: spec for spec in RECORD_SPECS.values()}
SPEC_BY_MODEL: dict[type[models.Model], RecordSpec] = {spec.model: spec for spec in RECORD_SPECS.values()}
