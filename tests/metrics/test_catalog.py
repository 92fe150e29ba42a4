"""The KPI catalog: every KPI of the spec, formulas against hand-computed numbers, columns in sync."""

import pytest
from django.core.management import call_command

from metrics.catalog import KPIS, MEASURES, MEASURES_BY_KEY, Unit
from metrics.cubes import DIMENSION_COLUMNS, DIMENSIONS
from metrics.models import BUCKET_MODELS

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


def test_bucket_columns_are_the_catalog_measures():
    for record_type, models in BUCKET_MODELS.items():
        columns = {f.name for model in models for f in model._meta.get_fields()} - {
            "id", "cube", "department", "bucket_start", "since", *(DIMENSION_COLUMNS[d] for d in DIMENSIONS)}
        assert columns == {c for m in MEASURES[record_type] for c in m.columns}
    # Sketches live apart from counts and sums (the common reads never touch their pages).
    assert [m.__name__ for m in BUCKET_MODELS["interaction"]] == [
        "InteractionBucket", "InteractionSketchBucket", "InteractionSetBucket", "InteractionFirstContactBucket"]
    assert [m.__name__ for m in BUCKET_MODELS["survey"]] == ["SurveyBucket"]


@pytest.mark.django_db
def test_migrations_match_the_catalog():
    call_command("makemigrations", "metrics", "--check", "--dry-run", verbosity=0)
