"""The KPI catalog: every KPI of the spec, formulas against hand-computed numbers, columns in sync."""

import math
import random

import pytest
from django.core.management import call_command

from metrics.catalog import KPIS, MEASURES, MEASURES_BY_KEY, Unit
from metrics.cubes import DIMENSION_COLUMNS, DIMENSIONS
from metrics.models import BUCKET_MODELS, CUBE_TABLES, ROW_TABLES
from metrics.planner import cubes_kept
from metrics.services import table_sources

SPEC_KEYS = [
    "interactions", "tickets_handled", "first_response_time", "resolution_time", "fcr_rate",
    "abandonment_rate", "average_wait_time", "average_handle_time", "self_service_rate", "missed_calls",
    "csat", "csat_score", "nps", "ces", "qa_score", "cashout_requests", "cashout_processing_time",
    "cashout_response_time", "cashout_success_rate", "cashout_error_rate",
]


def test_catalog_declares_every_kpi_of_the_spec_once():
    assert list(KPIS)[:len(SPEC_KEYS)] == SPEC_KEYS
    for kpi in KPIS.values():
        assert kpi.label_en and kpi.label_vi and kpi.formula_text
        assert kpi.unit in Unit.ALL
        assert set(kpi.components) <= set(MEASURES_BY_KEY)
    assert KPIS["fcr_rate"].label("vi") == "Giải quyết ngay lần đầu (FCR)"


@pytest.mark.parametrize(("key", "totals", "expected"), [
    ("interactions", {"interactions": 7}, (7, 7)),
    ("interactions", {}, (0, 0)),
    ("fcr_rate", {"resolved_first_contact": 13, "resolved": 16}, (81.25, 16)),
    ("fcr_rate", {"resolved_first_contact": 0, "resolved": 0}, (None, 0)),
    ("first_response_time", {"first_response_seconds_sum": 300.0, "first_responses": 4}, (75.0, 4)),
    ("nps", {"nps_promoters": 6, "nps_detractors": 2, "nps_responses": 10}, (40.0, 10)),
    ("nps", {"nps_promoters": 0, "nps_detractors": 3, "nps_responses": 3}, (-100.0, 3)),
    ("csat", {"csat_satisfied": 3, "csat_responses": 4}, (75.0, 4)),
    ("cashout_success_rate", {"succeeded": 9, "failed": 1, "settled": 10}, (90.0, 10)),
    ("cashout_error_rate", {"succeeded": 9, "failed": 1, "settled": 10}, (10.0, 10)),
    ("qa_score", {"qa_score_sum": 0.0, "qa_reviews": 0}, (None, 0)),
])
def test_formula_evaluate_hand_computed(key, totals, expected):
    assert KPIS[key].formula.evaluate(totals) == expected


@pytest.mark.parametrize(("key", "totals", "span", "expected"), [
    ("occupancy", {"busy_seconds": 30.0, "available_seconds": 90.0}, None, (25.0, 120)),
    ("occupancy", {}, None, (None, 0)),
    ("agent_online_time", {"available_seconds": 1.5, "busy_seconds": 2.0, "away_seconds": 0.5}, None, (4.0, 4)),
    ("contacts_per_online_hour", {"resolved": 3, "available_seconds": 1800.0, "busy_seconds": 1800.0}, None,
     (3.0, 3)),
    ("contacts_per_online_hour", {"resolved": 3}, None, (None, 0)),
    ("average_agents_online", {"available_seconds": 7200.0}, 3600.0, (2.0, 7200)),
    ("average_agents_online", {"available_seconds": 7200.0}, 0.0, (None, 0)),
    ("talk_time", {"handle_seconds_sum": 90.5, "handles": 2}, None, (90.5, 2)),
])
def test_formula_evaluate_time_and_share_kinds_hand_computed(key, totals, span, expected):
    assert KPIS[key].formula.evaluate(totals, span) == expected


def _formula_reference(kind: str, v: list, span):
    """Each additive formula as the catalog's docstring defines it, over the parts' values in order."""
    if kind == "count":
        return int(v[0]), int(v[0])
    if kind == "total":
        return float(v[0]), int(v[1])
    if kind == "seconds":
        return float(sum(v)), int(sum(v))
    if kind == "share":
        return (100 * v[0] / sum(v), int(sum(v))) if sum(v) > 0 else (None, 0)
    if kind == "per_hour":
        return (v[0] / (sum(v[1:]) / 3600), int(v[0])) if sum(v[1:]) > 0 else (None, 0)
    if kind == "per_span":
        return (sum(v) / span, int(sum(v))) if span else (None, 0)
    n = int(v[-1])
    if n == 0:
        return None, 0
    return {"ratio": 100 * v[0] / n, "mean": v[0] / n, "nps": 100 * (v[0] - v[1]) / n}[kind], n


def test_formula_evaluate_and_on_values_match_a_reference_for_every_additive_kpi():
    """Random states, missing parts included: the mapping path and the reader's fast path (the parts'
    values in order) both give the definition's value and sample size."""
    rng = random.Random(7)
    additive = [k for k in KPIS.values() if k.formula.on_values is not None]
    assert {k.formula.kind for k in additive} == {
        "count", "ratio", "mean", "nps", "total", "seconds", "share", "per_hour", "per_span"}
    for kpi in additive:
        for _ in range(200):
            states = {p: rng.choice([0, 0.0, rng.randint(0, 50), rng.uniform(0, 1e5)])
                      for p in kpi.formula.parts if rng.random() < 0.9}
            span = rng.choice([None, 0.0, 900.0, rng.uniform(1, 1e6)])
            values = [states.get(p, 0) for p in kpi.formula.parts]
            if kpi.formula.kind == "per_span" and span is None:
                span = 0.0
            expected_value, expected_sample = _formula_reference(kpi.formula.kind, values, span)
            for value, sample in (kpi.formula.evaluate(states, span), kpi.formula.on_values(tuple(values), span)):
                assert sample == expected_sample, (kpi.key, states)
                if expected_value is None:
                    assert value is None, (kpi.key, states)
                else:
                    assert math.isclose(value, expected_value, rel_tol=1e-12, abs_tol=1e-12), (kpi.key, states)


def test_formula_on_columns_equals_on_values_cell_by_cell_for_every_additive_kpi():
    """The series path (the formula over the periods' columns) gives exactly what the per-cell path gives,
    period by period, zeros and empty periods included."""
    rng = random.Random(11)
    for kpi in (k for k in KPIS.values() if k.formula.on_values is not None):
        formula = kpi.formula
        for periods in (0, 1, 5, 48):
            rows = [tuple(rng.choice([0, 0.0, rng.randint(0, 50), rng.uniform(0, 1e5)]) for _ in formula.parts)
                    for _ in range(periods)]
            spans = tuple(rng.choice([0.0, 900.0, rng.uniform(1, 1e6)]) if formula.kind == "per_span" else None
                          for _ in range(periods))
            columns = [list(column) for column in zip(*rows, strict=True)] or [[] for _ in formula.parts]
            values, samples = formula.on_columns(columns, spans)
            cells = [formula.on_values(row, span) for row, span in zip(rows, spans, strict=True)]
            assert list(zip(values, samples, strict=True)) == cells, kpi.key
            assert all(type(v) is type(c[0]) for v, c in zip(values, cells, strict=True)), kpi.key


def test_bucket_columns_are_the_catalog_measures():
    for record_type, models in BUCKET_MODELS.items():
        columns = {f.name for model in models for f in model._meta.concrete_fields} - {
            "id", "cube", "department", "bucket_start", "since", *(DIMENSION_COLUMNS[d] for d in DIMENSIONS)}
        assert columns == {c for m in MEASURES[record_type] for c in m.columns}
    # Every store of a record type in one table (a key stored once), a stock's in its own.
    assert [m.__name__ for m in BUCKET_MODELS["interaction"]] == ["InteractionBucket"]
    assert [m.__name__ for m in BUCKET_MODELS["survey"]] == ["SurveyBucket"]
    assert [m.__name__ for m in BUCKET_MODELS["customer"]] == ["CustomerStockBucket"]
    assert [[t.kind.store for t in stores] for stores in ROW_TABLES["interaction"]] == [
        ["", "sketch", "set", "first_contact"]]


def test_every_table_writes_each_row_once_from_one_source_per_cube():
    """The first store of a table keeps every cube the others keep; the stores merged in SQL share each cube's
    source; a department-wide store keeps no cube with a dimension (`metrics.services.table_sources`)."""
    for record_type, groups in ROW_TABLES.items():
        for stores in groups:
            sources = table_sources(record_type, stores)
            assert {c.key for c in sources} == {c.key for c in cubes_kept(record_type) if stores[0].keeps(c)}
    counts, sketches, sets, _ = CUBE_TABLES["interaction"]
    with pytest.raises(ValueError, match="keeps every cube"):  # the sketches keep no hour cube
        table_sources("interaction", (sketches, counts))
    with pytest.raises(ValueError, match="keeps every cube"):  # a set store cannot own the rows
        table_sources("interaction", (sets,))


def test_bucket_columns_are_laid_out_widest_fixed_width_first():
    """No padding between fixed-width columns, the key is the primary key (no surrogate id) except where
    it holds a nullable column."""
    widths = {"ForeignKey": 8, "DateTimeField": 8, "FloatField": 8, "BigIntegerField": 8, "IntegerField": 4}
    for tables in CUBE_TABLES.values():
        for table in tables:
            fields = table.model._meta.concrete_fields
            if table.model._meta.pk.name == "id":
                assert table.key[-1] == "since"
                fields = [f for f in fields if f.name != "id"]
            else:
                assert tuple(f.name for f in table.model._meta.pk.fields) == table.key
            order = [widths.get(type(f).__name__, 0) for f in fields]
            assert order == sorted(order, reverse=True), table.model.__name__


@pytest.mark.django_db
def test_migrations_match_the_catalog():
    call_command("makemigrations", "metrics", "--check", "--dry-run", verbosity=0)
