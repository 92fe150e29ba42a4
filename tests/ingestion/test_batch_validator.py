"""The compiled batch validator: every rule, its stable code, and typed output."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ingestion.fields import CASHOUT, INTERACTION, SURVEY
from ingestion.validation import batch_validator_get
from tests.ingestion.factories import cashout_payload, interaction_payload, survey_payload

DEPARTMENTS = {"cskh-hn": 1, "cskh-hcm": 2}


def errors_of(spec, items, text=False):
    _, errors = batch_validator_get(spec).validate(items, departments=DEPARTMENTS, text=text)
    return [(e["index"], e["field"], e["code"]) for e in errors]


def test_valid_interaction_is_typed_with_defaults_and_derived_durations():
    rows, errors = batch_validator_get(INTERACTION).validate(
        [interaction_payload(source=..., wait_seconds=..., handle_seconds=7)], departments=DEPARTMENTS
    )
    assert errors == []
    row = rows[0]
    assert row["source"] == "api"
    assert row["department_id"] == 1
    assert row["created_at"] == datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    assert row["contact_count"] == 1 and row["self_service"] is False
    assert row["wait_seconds"] is None and row["handle_seconds"] == 7.0
    assert row["first_response_seconds"] == 60.0 and row["resolution_seconds"] == 600.0


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"created_at": "2026-03-02T09:00:00"}, "created_at", "naive_datetime"),
        ({"created_at": "2026-03-02"}, "created_at", "invalid_datetime"),
        ({"created_at": "yesterday"}, "created_at", "invalid_datetime"),
        ({"created_at": "2026-02-30T09:00:00Z"}, "created_at", "invalid_datetime"),
        ({"created_at": 1767225600}, "created_at", "invalid_type"),
        ({"first_response_at": "2026-03-02T08:59:59+07:00"}, "first_response_at", "before_anchor"),
        ({"resolved_at": "2026-03-02T01:59:00Z"}, "resolved_at", "before_anchor"),
        ({"wait_seconds": -1}, "wait_seconds", "negative_duration"),
        ({"handle_seconds": -0.5}, "handle_seconds", "negative_duration"),
        ({"handle_seconds": "12"}, "handle_seconds", "invalid_type"),
        ({"contact_count": 0}, "contact_count", "out_of_range"),
        ({"contact_count": 1.5}, "contact_count", "invalid_type"),
        ({"contact_count": "2"}, "contact_count", "invalid_type"),
        ({"contact_count": True}, "contact_count", "invalid_type"),
        ({"self_service": 1}, "self_service", "invalid_type"),
        ({"status": "closed"}, "status", "invalid_choice"),
        ({"status": "open"}, "status", "status_contradiction"),
        ({"resolved_at": None}, "status", "status_contradiction"),
        ({"status": "abandoned", "resolved_at": None}, "status", "status_contradiction"),
        ({"channel": "Phone"}, "channel", "invalid_slug"),
        ({"channel": "x" * 33}, "channel", "max_length"),
        ({"external_id": ""}, "external_id", "blank"),
        ({"external_id": "x" * 129}, "external_id", "max_length"),
        ({"external_id": 12}, "external_id", "invalid_type"),
        ({"agent": "a\x00b"}, "agent", "invalid_characters"),
        ({"agent": "\ud800"}, "agent", "invalid_characters"),
        ({"department": "nowhere"}, "department", "unknown_department"),
        ({"priority": "high"}, "priority", "unknown_field"),
        ({"external_id": ...}, "external_id", "required"),
        ({"created_at": None}, "created_at", "required"),
    ],
)
def test_interaction_rule(overrides, field, code):
    assert errors_of(INTERACTION, [interaction_payload(**overrides)]) == [(0, field, code)]


def test_abandoned_without_response_and_missed_are_valid():
    items = [
        interaction_payload(status="abandoned", first_response_at=None, resolved_at=None),
        interaction_payload(status="missed", first_response_at=None, resolved_at=None, channel="zalo"),
        interaction_payload(status="open", resolved_at=None),
    ]
    assert errors_of(INTERACTION, items) == []


@pytest.mark.parametrize(
    ("kind", "score", "ok"),
    [("csat", 1, True), ("csat", 5, True), ("csat", 0, False), ("csat", 6, False), ("csat", 4.5, False),
     ("csat", 4.0, True), ("nps", 0, True), ("nps", 10, True), ("nps", 11, False), ("nps", -1, False),
     ("ces", 7, True), ("ces", 8, False), ("qa", 0, True), ("qa", 87.5, True), ("qa", 100.01, False)],
)
def test_survey_score_scale(kind, score, ok):
    expected = [] if ok else [(0, "score", "out_of_scale")]
    assert errors_of(SURVEY, [survey_payload(kind=kind, score=score)]) == expected


def test_survey_interaction_maps_to_its_column_and_bool_score_is_refused():
    rows, _ = batch_validator_get(SURVEY).validate([survey_payload(interaction="T-9")], departments=DEPARTMENTS)
    assert rows[0]["interaction_external_id"] == "T-9"
    assert errors_of(SURVEY, [survey_payload(score=True)]) == [(0, "score", "invalid_type")]


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"amount": 1500.5}, "amount", "invalid_amount"),
        ({"amount": "0"}, "amount", "invalid_amount"),
        ({"amount": "-5"}, "amount", "invalid_amount"),
        ({"amount": "1e5"}, "amount", "invalid_amount"),
        ({"amount": "1.1234567"}, "amount", "invalid_amount"),
        ({"amount": "1" * 19}, "amount", "invalid_amount"),
        ({"currency": "vnd"}, "currency", "invalid_currency"),
        ({"currency": "ABC"}, "currency", "invalid_currency"),
        ({"currency": "XXX"}, "currency", "invalid_currency"),
        ({"completed_at": "2026-03-02T10:59:00+07:00"}, "completed_at", "before_anchor"),
        ({"status": "processing"}, "status", "status_contradiction"),
        ({"completed_at": None}, "status", "status_contradiction"),
        ({"failure_reason": "bank_timeout"}, "failure_reason", "status_contradiction"),
    ],
)
def test_cashout_rule(overrides, field, code):
    assert errors_of(CASHOUT, [cashout_payload(**overrides)]) == [(0, field, code)]


def test_cashout_amount_is_exact_decimal():
    rows, errors = batch_validator_get(CASHOUT).validate(
        [cashout_payload(amount="0.000001"), cashout_payload(amount=250000, status="failed",
                                                             failure_reason="limit")],
        departments=DEPARTMENTS,
    )
    assert errors == []
    assert rows[0]["amount"] == Decimal("0.000001")
    assert rows[1]["amount"] == Decimal("250000") and rows[1]["processing_seconds"] == 300.0


def test_every_item_and_every_error_is_reported():
    items = [
        interaction_payload(),
        interaction_payload(wait_seconds=-3, channel="PHONE"),
        "not an object",
        interaction_payload(department="elsewhere"),
    ]
    assert errors_of(INTERACTION, items) == [
        (1, "channel", "invalid_slug"), (1, "wait_seconds", "negative_duration"),
        (2, None, "not_an_object"), (3, "department", "unknown_department"),
    ]


def test_text_mode_reads_csv_cells():
    item = {k: str(v) for k, v in interaction_payload(contact_count=2, self_service=True).items()}
    item.update({"self_service": "true", "agent": "", "topic": ""})
    rows, errors = batch_validator_get(INTERACTION).validate([item], departments=DEPARTMENTS, text=True)
    assert errors == []
    assert rows[0]["contact_count"] == 2 and rows[0]["self_service"] is True
    assert rows[0]["wait_seconds"] == 30.0 and rows[0]["agent"] is None
    bad = {**item, "contact_count": "two", "self_service": "maybe"}
    assert errors_of(INTERACTION, [bad], text=True) == [
        (0, "contact_count", "invalid_type"), (0, "self_service", "invalid_type")]


@pytest.mark.parametrize(("value", "code"), [
    (1e308, "duration_too_long"),  # the poison of the hardening issue: it overflowed the recompute
    (315_576_001, "duration_too_long"),
    (10**400, "invalid_number"),
    (315_576_000, None),  # ten years is the most
    (0.5, None),
])
def test_durations_are_bounded_to_ten_years(value, code):
    errors = errors_of(INTERACTION, [interaction_payload(wait_seconds=value, handle_seconds=value)])
    assert errors == ([] if code is None else [(0, "wait_seconds", code), (0, "handle_seconds", code)])


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1e400"])
def test_non_finite_numbers_are_refused_in_text_mode(text):
    item = {k: str(v) for k, v in interaction_payload().items()}
    item.update({"agent": "", "topic": "", "wait_seconds": text})
    assert errors_of(INTERACTION, [item], text=True) == [(0, "wait_seconds", "invalid_number")]


def test_errors_are_capped_and_counted_names_clipped(settings):
    settings.CSKPI_MAX_ERRORS = 5
    item = {**interaction_payload(), **{f"x{i}": 1 for i in range(50)}, "y" * 10_000: 1}
    _, errors = batch_validator_get(INTERACTION).validate([item, "no"], departments=DEPARTMENTS)
    assert len(errors) == 5 and errors.not_listed == 47  # 51 unknown fields + 1 bad item - 5 listed
    assert all(len(e["field"]) < 200 for e in errors)
