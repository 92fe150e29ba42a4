"""The record-type declarations (ingestion.fields) and what derives from them, for every declared type."""

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from django.db import models

from cskpi.choices import ReadLevel
from ingestion.changes import quarter_floor
from ingestion.fields import RECORD_SPECS, SPEC_BY_TYPE, FieldSpec, FieldType, RecordSpec
from ingestion.validation import batch_validator_get
from metrics.catalog import ANCHORS, KPIS
from metrics.cubes import CUBES, DIMENSION_COLUMNS
from metrics.planner import RECORD_DIMENSIONS
from metrics.services import _LOCK_NAMESPACE
from tests.ingestion.factories import record_payload

SPECS = list(RECORD_SPECS.values())
BOOKKEEPING = {"id", "department_id", "content_hash", "received_at"}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.plural)
def test_every_model_column_is_declared_or_derived(spec):
    """A column the declaration forgot could be neither sent nor validated: it must not exist."""
    derived = set(spec.derived(_typed_example(spec)).keys()) if spec.derived else set()
    derived |= set(spec.service_level_columns)  # measured with the department's calendar and SLA policy
    columns = {f.column for f in spec.model._meta.concrete_fields} - BOOKKEEPING
    declared = {f.target for f in spec.fields} - {"department"}  # the department is the FK department_id
    assert columns == declared | derived


def _typed_example(spec: RecordSpec) -> dict:
    rows, errors = batch_validator_get(spec).validate([record_payload(spec.plural)], departments={"cskh-hn": 1})
    assert not errors, errors
    return rows[0]


def test_lock_namespaces_are_unique_and_the_engine_uses_them():
    namespaces = [spec.lock_namespace for spec in SPECS]
    assert len(set(namespaces)) == len(namespaces)
    assert _LOCK_NAMESPACE == {spec.record_type: spec.lock_namespace for spec in SPECS}


def test_kpis_are_placed_by_the_declared_anchor():
    """A point record by its anchor; a stock (the customer registry) by its start and its end."""
    assert ANCHORS == {spec.record_type: spec.anchor or f"{spec.start}, {spec.end}" for spec in SPECS}
    for kpi in KPIS.values():
        spec = SPEC_BY_TYPE[kpi.record_type]
        assert kpi.anchor == (spec.anchor or f"{spec.start}, {spec.end}"), kpi.key
        assert kpi.stock == spec.stock, kpi.key


def _span_spec(**times) -> RecordSpec:
    fields = (FieldSpec("department", FieldType.DEPARTMENT, "", required=True),
              FieldSpec("started_at", FieldType.DATETIME, "", required=True),
              FieldSpec("ended_at", FieldType.DATETIME, ""))
    return RecordSpec(record_type="presence", plural="presences", model=models.Model, fields=fields,
                      lock_namespace=1, **times)


def test_a_record_type_has_an_anchor_or_a_span_and_declares_its_columns():
    assert _span_spec(start="started_at", end="ended_at").time_columns == ("started_at", "ended_at")
    assert _span_spec(anchor="started_at").time_columns == ("started_at",)
    for wrong in ({}, {"anchor": "started_at", "start": "started_at", "end": "ended_at"},
                  {"start": "started_at"}, {"anchor": "nowhere"}, {"start": "started_at", "end": "nowhere"}):
        with pytest.raises(ValueError):
            _span_spec(**wrong)


T0 = datetime(2026, 3, 29, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("start_minutes", "length_seconds"), [
    (0, 0), (0, 1), (0, 900), (0, 901), (7, 60), (7, 480), (7, 481), (14.99, 10), (59, 3 * 3600 + 17), (3, None),
])
def test_a_span_counts_in_every_quarter_it_overlaps(start_minutes, length_seconds):
    spec = _span_spec(start="started_at", end="ended_at")
    start = T0 + timedelta(minutes=start_minutes)
    end = None if length_seconds is None else start + timedelta(seconds=length_seconds)
    touched = {quarter_floor(m) for m in spec.quarters_touched((start, end))}
    # Reference: walk the quarters one by one; [q, q + 15 min) overlaps [start, end) or holds start.
    expected, quarter = set(), quarter_floor(start)
    while quarter <= (end or start):
        if quarter == quarter_floor(start) or (end is not None and quarter < end):
            expected.add(quarter)
        quarter += timedelta(minutes=15)
    assert touched == expected


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.plural)
@pytest.mark.parametrize("level", list(ReadLevel))
def test_redaction_follows_the_field_roles(spec, level):
    data = {f.name: f"v-{f.name}" for f in spec.fields}
    seen = spec.redact(dict(data), level)
    hidden = {f.name for f in spec.fields if f.redacted_below is not None and level < f.redacted_below}
    assert set(seen) == set(data) - hidden
    for name in seen:
        owner = spec.field_named(name).owner
        assert seen[name] == (None if owner and level == ReadLevel.DEPARTMENT else data[name])
    if spec.plural == "cashouts":  # the contract: amounts for managers and staff only
        assert ("amount" in seen) == (level >= ReadLevel.FULL)
    if spec.plural == "customers":  # and MRR
        assert ("mrr" in seen) == (level >= ReadLevel.FULL)


@pytest.mark.parametrize("ended", [None, 0, 1, 900, 86_400 * 400])
def test_a_stock_counts_in_the_quarters_of_its_start_and_its_end_only(ended):
    """A customer for a year marks two quarter-hours, not 35,000: a level changes only where it starts and ends."""
    spec = _span_spec(start="started_at", end="ended_at", stock=True)
    start = T0 + timedelta(minutes=7)
    end = None if ended is None else start + timedelta(seconds=ended)
    touched = {quarter_floor(m) for m in spec.quarters_touched((start, end))}
    assert touched == {quarter_floor(start)} | ({quarter_floor(end)} if end is not None else set())
    with pytest.raises(ValueError):
        _span_spec(anchor="started_at", stock=True)


def _variants(spec: RecordSpec) -> list[dict]:
    """Valid items that differ in every filterable field: each declared choice, and two texts."""
    items = []
    for field in spec.filters:
        values = field.choices or (f"{field.name[:3]}-x", f"{field.name[:3]}-y")
        for value in values:
            item = record_payload(spec.plural, external_id=f"{field.name}-{value}", **{field.name: value})
            _, errors = batch_validator_get(spec).validate([item], departments={"cskh-hn": 1})
            if not errors:  # a choice whose rules need other fields (e.g. status) is left out
                items.append(item)
    return items


@pytest.mark.django_db
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.plural)
def test_each_declared_filter_selects_exactly_the_matching_records(spec, staff_client, department):
    items = _variants(spec)
    response = staff_client.post(f"/api/v1/{spec.plural}", items, format="json")
    assert response.status_code == 200, response.content
    for field, value in itertools.product(spec.filters, {v for item in items for v in item.values()}):
        expected = sorted(item["external_id"] for item in items if item.get(field.name) == value)
        if not expected:
            continue
        got = staff_client.get(f"/api/v1/{spec.plural}", {field.name: value, "page_size": 1000})
        assert got.status_code == 200, got.content
        assert sorted(r["external_id"] for r in got.json()["results"]) == expected, (field.name, value)
    assert staff_client.get(f"/api/v1/{spec.plural}", {"not_a_field": "x"}).status_code == 400


@pytest.mark.django_db
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.plural)
def test_no_error_echoes_a_sensitive_value(spec, staff_client, department):
    marker = "SECRET-4711"
    for field in (f for f in spec.fields if f.sensitive):
        value = marker + "x" * (field.max_length or 0) if field.type is FieldType.STR else marker
        item = record_payload(spec.plural, **{field.name: value})
        response = staff_client.post(f"/api/v1/{spec.plural}", [item], format="json")
        assert response.status_code == 400, (field.name, response.content)
        assert field.name in {e["field"] for e in response.json()["errors"]}
        assert marker not in response.content.decode(), field.name


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.plural)
def test_the_cubes_keep_only_declared_dimensions(spec):
    """The cubes keep a record's column as a dimension exactly when the declaration calls it one."""
    kept = {DIMENSION_COLUMNS[dim] for cube in CUBES for dim in cube.dims}
    assert set(spec.dimensions) <= kept
    assert {DIMENSION_COLUMNS[d] for d in RECORD_DIMENSIONS[spec.record_type]} == set(spec.dimensions)
