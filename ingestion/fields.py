"""The fields of each record type, declared once.

The fast batch validator (`ingestion.validation`), the OpenAPI input schemas (`ingestion.schema`),
the list filters and the CSV import all derive from these declarations, so what the API
accepts, what it documents and what the backfill accepts cannot drift apart.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ingestion.choices import (
    DEFAULT_SOURCE,
    SURVEY_SCALES,
    CashoutStatus,
    InteractionStatus,
    RecordType,
    SurveyKind,
)


class FieldType(StrEnum):
    STR = "str"  # free text
    SLUG = "slug"  # lowercase a-z, 0-9, "-" and "_"
    DEPARTMENT = "department"  # slug of an existing department
    DATETIME = "datetime"  # ISO 8601 with an offset
    DURATION = "duration"  # seconds, a number >= 0
    INT = "int"  # whole number >= min_value
    BOOL = "bool"
    DECIMAL = "decimal"  # money: decimal string (or integer) > 0, never a float
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

    @property
    def target(self) -> str:
        return self.column or self.name


# A rule sees a row of valid, typed values (keyed by column) and yields (field, code, message).
Rule = Callable[[dict], Iterator[tuple[str, str, str]]]


@dataclass(frozen=True)
class RecordSpec:
    record_type: RecordType
    plural: str  # URL segment and import command argument
    anchor: str  # the column whose time places a record in a period
    fields: tuple[FieldSpec, ...]
    rules: tuple[Rule, ...] = field(default=())
    derived: Callable[[dict], dict] | None = None  # durations stored beside the timestamps

    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]


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
    anchor="created_at",
    fields=(
        *_key_fields(),
        FieldSpec("channel", FieldType.SLUG, "Channel slug, e.g. phone, email, chat, facebook, zalo, web; "
                  "new channels need no registration.", example="phone", required=True, max_length=32),
        FieldSpec("agent", FieldType.STR, "The sender's agent id; agents need no registration.",
                  example="agent-17", max_length=128),
        FieldSpec("customer", FieldType.STR, "The sender's customer id.", example="C-88121", max_length=128),
        FieldSpec("customer_region", FieldType.STR, "Customer region, e.g. a province.", example="Hà Nội",
                  max_length=128),
        FieldSpec("topic", FieldType.STR, "Topic of the contact.", example="card-blocked", max_length=128),
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
                  choices=tuple(InteractionStatus.values)),
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
)

SURVEY = RecordSpec(
    record_type=RecordType.SURVEY,
    plural="surveys",
    anchor="submitted_at",
    fields=(
        *_key_fields(),
        FieldSpec("kind", FieldType.CHOICE, "csat (1-5) | nps (0-10) | ces (1-7): whole numbers; qa (0-100): "
                  "any number.", example="csat", required=True, choices=tuple(SurveyKind.values)),
        FieldSpec("score", FieldType.SCORE, "The score, within the scale of its kind.", example=5,
                  required=True),
        FieldSpec("submitted_at", FieldType.DATETIME, "When the response was given; places it in a period.",
                  example="2026-03-02T10:00:00+07:00", required=True),
        FieldSpec("interaction", FieldType.STR, "external_id of the interaction it rates (same source).",
                  example="T-100234", max_length=128, column="interaction_external_id"),
        FieldSpec("agent", FieldType.STR, "The sender's agent id.", example="agent-17", max_length=128),
        FieldSpec("customer", FieldType.STR, "The sender's customer id.", example="C-88121", max_length=128),
        FieldSpec("channel", FieldType.SLUG, "Channel slug.", example="chat", max_length=32),
        FieldSpec("comment", FieldType.STR, "Free-text comment.", example="Nhanh và lịch sự.", max_length=4000),
    ),
    rules=(_survey_scale,),
)

CASHOUT = RecordSpec(
    record_type=RecordType.CASHOUT,
    plural="cashouts",
    anchor="requested_at",
    fields=(
        *_key_fields(),
        FieldSpec("customer", FieldType.STR, "The sender's customer id.", example="C-88121", max_length=128),
        FieldSpec("amount", FieldType.DECIMAL, "Amount as a decimal string (or an integer) > 0, at most 6 "
                  "decimals; floats are refused (they lose precision). Shown to managers and staff only.",
                  example="1500000.00", required=True),
        FieldSpec("currency", FieldType.CURRENCY, "ISO 4217 code, uppercase.", example="VND", required=True),
        FieldSpec("channel", FieldType.SLUG, "Channel slug.", example="app", max_length=32),
        FieldSpec("requested_at", FieldType.DATETIME, "When the customer asked; places it in a period.",
                  example="2026-03-02T11:00:00+07:00", required=True),
        FieldSpec("first_response_at", FieldType.DATETIME, "First answer to the customer (>= requested_at).",
                  example="2026-03-02T11:00:40+07:00"),
        FieldSpec("completed_at", FieldType.DATETIME, "When it succeeded or failed (>= requested_at); given "
                  "exactly when status is succeeded or failed.", example="2026-03-02T11:04:00+07:00"),
        FieldSpec("status", FieldType.CHOICE, "pending | processing | succeeded | failed.",
                  example="succeeded", required=True, choices=tuple(CashoutStatus.values)),
        FieldSpec("failure_reason", FieldType.STR, "Why it failed; only with status failed.",
                  example="bank_timeout", max_length=255),
    ),
    rules=(_cashout_times, _cashout_status),
    derived=_cashout_derived,
)

RECORD_SPECS: dict[str, RecordSpec] = {spec.plural: spec for spec in (INTERACTION, SURVEY, CASHOUT)}
SPEC_BY_TYPE: dict[str, RecordSpec] = {spec.record_type: spec for spec in RECORD_SPECS.values()}
