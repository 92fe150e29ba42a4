"""POST /api/v1/{interactions,surveys,cashouts}: upsert results, stored values, atomicity, limits,
access, and the dirty-bucket marks the KPI engine consumes."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.test import override_settings

from ingestion.models import Cashout, Interaction, RecordChange, SurveyResponse
from tests.ingestion.factories import cashout_payload, interaction_payload, survey_payload

pytestmark = pytest.mark.django_db

URL = "/api/v1/interactions"


def post(client, url, body):
    return client.post(url, body, format="json")


def counts(body):
    return {k: body[k] for k in ("created", "updated", "unchanged", "stale")}


def marks():
    return sorted((d.record_type, d.department.slug, d.quarter_start) for d in RecordChange.objects.all())


def q(hour, minute=0):
    """UTC quarter start on 2026-03-02."""
    return datetime(2026, 3, 2, hour, minute, tzinfo=UTC)


def test_created_unchanged_updated_stale_and_keys_echoed_in_order(staff_client, department):
    a = interaction_payload(external_id="A", updated_at="2026-03-02T10:00:00Z")
    b = interaction_payload(external_id="B")
    response = post(staff_client, URL, [a, b])
    assert response.status_code == 200
    assert counts(response.json()) == {"created": 2, "updated": 0, "unchanged": 0, "stale": 0}

    a_new = {**a, "status": "pending", "resolved_at": None, "updated_at": "2026-03-02T11:00:00Z"}
    a_old = {**a, "topic": "older", "updated_at": "2026-03-02T09:00:00Z"}
    response = post(staff_client, URL, [b, a_new, a_old])
    body = response.json()
    assert counts(body) == {"created": 0, "updated": 1, "unchanged": 1, "stale": 1}
    assert [(i["source"], i["external_id"], i["result"]) for i in body["items"]] == [
        ("crm", "B", "unchanged"), ("crm", "A", "updated"), ("crm", "A", "stale")]
    stored = Interaction.objects.get(external_id="A")
    assert stored.status == "pending" and stored.resolved_at is None and stored.resolution_seconds is None
    assert stored.topic is None
    assert stored.updated_at == datetime(2026, 3, 2, 11, tzinfo=UTC)
    assert Interaction.objects.count() == 2


def test_same_content_with_newer_updated_at_is_unchanged_but_keeps_the_version(staff_client, department):
    item = interaction_payload(updated_at="2026-03-02T10:00:00Z")
    post(staff_client, URL, item)
    body = post(staff_client, URL, {**item, "updated_at": "2026-03-02T12:00:00Z"}).json()
    assert counts(body)["unchanged"] == 1
    assert Interaction.objects.get().updated_at == datetime(2026, 3, 2, 12, tzinfo=UTC)
    # a version from 11:00 is now older than the stored one
    body = post(staff_client, URL, {**item, "topic": "x", "updated_at": "2026-03-02T11:00:00Z"}).json()
    assert counts(body)["stale"] == 1
    assert Interaction.objects.get().topic is None


def test_without_updated_at_the_last_write_wins(staff_client, department):
    item = interaction_payload()
    post(staff_client, URL, item)
    body = post(staff_client, URL, [{**item, "topic": "one"}, {**item, "topic": "two"}]).json()
    assert [i["result"] for i in body["items"]] == ["updated", "updated"]
    assert Interaction.objects.get().topic == "two"


def test_duplicates_in_one_batch_fold_in_order(staff_client, department):
    item = interaction_payload(updated_at="2026-03-02T10:00:00Z")
    newer = {**item, "wait_seconds": 99, "updated_at": "2026-03-02T10:05:00Z"}
    body = post(staff_client, URL, [item, newer, item, newer]).json()
    assert [i["result"] for i in body["items"]] == ["created", "updated", "stale", "unchanged"]
    stored = Interaction.objects.get()
    assert stored.wait_seconds == 99.0 and stored.updated_at == datetime(2026, 3, 2, 10, 5, tzinfo=UTC)


def test_same_external_id_from_two_sources_are_two_records(staff_client, department):
    body = post(staff_client, URL, [interaction_payload(external_id="X", source="crm"),
                                    interaction_payload(external_id="X", source="ivr")]).json()
    assert body["created"] == 2
    assert sorted(Interaction.objects.values_list("source", flat=True)) == ["crm", "ivr"]


def test_a_bad_item_rejects_the_whole_batch_and_writes_nothing(staff_client, department):
    existing = interaction_payload(external_id="KEEP")
    post(staff_client, URL, existing)
    RecordChange.objects.all().delete()
    good = interaction_payload()
    changed = {**existing, "topic": "would change"}
    response = post(staff_client, URL, [good, changed, interaction_payload(created_at="2026-03-02T09:00:00"),
                                        interaction_payload(wait_seconds=-1)])
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert [(e["index"], e["field"], e["code"]) for e in body["errors"]] == [
        (2, "created_at", "naive_datetime"), (3, "wait_seconds", "negative_duration")]
    assert list(Interaction.objects.values_list("external_id", "topic")) == [("KEEP", None)]
    assert RecordChange.objects.count() == 0


def test_unknown_department_is_400_naming_it(staff_client, department):
    response = post(staff_client, URL, [interaction_payload(), interaction_payload(department="cskh-dn")])
    assert response.status_code == 400
    body = response.json()
    assert "cskh-dn" in body["detail"]
    assert body["errors"] == [{"index": 1, "field": "department", "code": "unknown_department",
                               "message": "No department 'cskh-dn'."}]
    assert Interaction.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "codes"),
    [("42", ["invalid_body"]), ('"text"', ["invalid_body"]), ("null", ["invalid_body"]),
     ("[]", ["empty_batch"]), ("{bad json", []), ("[NaN]", []), ("", ["empty_body"]), ("  ", ["empty_body"])],
)
def test_bodies_that_are_not_objects_or_arrays_are_400(staff_client, department, body, codes):
    response = staff_client.post(URL, body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == ("invalid" if codes else "parse_error")
    assert [e["code"] for e in response.json()["errors"]] == codes


@override_settings(CSKPI_MAX_BATCH=3)
def test_batch_over_the_limit_is_413(staff_client, department):
    response = post(staff_client, URL, [interaction_payload() for _ in range(4)])
    assert response.status_code == 413
    assert response.json()["code"] == "batch_too_large"
    assert post(staff_client, URL, [interaction_payload() for _ in range(3)]).status_code == 200
    assert Interaction.objects.count() == 3


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2000)
def test_body_over_the_size_limit_is_413(staff_client, department):
    body = json.dumps([interaction_payload(topic="x" * 100) for _ in range(20)])
    assert len(body) > 2000
    response = staff_client.post(URL, body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert Interaction.objects.count() == 0


def test_stored_values_of_each_record_type(staff_client, department):
    assert post(staff_client, "/api/v1/surveys",
                survey_payload(external_id="S1", kind="nps", score=9, interaction="T-1")).status_code == 200
    survey = SurveyResponse.objects.get()
    assert (survey.kind, survey.score, survey.interaction_external_id) == ("nps", 9.0, "T-1")
    assert survey.submitted_at == datetime(2026, 3, 2, 10, tzinfo=UTC)

    assert post(staff_client, "/api/v1/cashouts",
                cashout_payload(external_id="C1", amount="123.45")).status_code == 200
    cashout = Cashout.objects.get()
    assert cashout.amount == Decimal("123.45") and cashout.currency == "VND"
    assert (cashout.processing_seconds, cashout.response_seconds) == (300.0, 30.0)
    assert cashout.requested_at == datetime(2026, 3, 2, 4, tzinfo=UTC)


# --- access -----------------------------------------------------------------------------------
def test_ingest_role_is_needed_for_every_department_named(make_client, department, other_department):
    client = make_client(grants=[("cskh-hn", "ingest"), ("cskh-hcm", "manager")])
    response = post(client, URL, [interaction_payload("cskh-hn"), interaction_payload("cskh-hcm")])
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "permission_denied"
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(1, "department")]
    assert Interaction.objects.count() == 0
    assert post(client, URL, interaction_payload("cskh-hn")).status_code == 200


def test_viewer_and_manager_cannot_ingest(make_client, department):
    for role in ("viewer", "manager"):
        client = make_client(grants=[("cskh-hn", role)])
        assert post(client, URL, interaction_payload()).status_code == 403


def test_a_key_of_another_departments_record_is_403_and_untouched(make_client, staff_client, department,
                                                                 other_department):
    post(staff_client, URL, interaction_payload("cskh-hcm", external_id="K"))
    client = make_client(grants=[("cskh-hn", "ingest")])
    response = post(client, URL, [interaction_payload("cskh-hn"), interaction_payload("cskh-hn", external_id="K")])
    assert response.status_code == 403
    assert [(e["index"], e["code"]) for e in response.json()["errors"]] == [(1, "record_in_other_department")]
    assert list(Interaction.objects.values_list("external_id", "department__slug")) == [("K", "cskh-hcm")]


def test_unauthenticated_is_401(anon_client, department):
    assert post(anon_client, URL, interaction_payload()).status_code == 401


# --- marks for the KPI engine -----------------------------------------------------------------
def test_marks_new_and_old_buckets_and_a_move_between_departments(make_client, department, other_department,
                                                                  django_capture_on_commit_callbacks):
    client = make_client(grants=[("cskh-hn", "ingest"), ("cskh-hcm", "ingest")])
    item = interaction_payload("cskh-hn", created_at="2026-03-02T09:07:00+07:00",  # 02:07 UTC
                               first_response_at="2026-03-02T09:08:00+07:00")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        post(client, URL, item)
    assert len(callbacks) == 1  # the recompute is kicked after commit
    assert marks() == [("interaction", "cskh-hn", q(2))]

    RecordChange.objects.all().delete()
    moved = {**item, "department": "cskh-hcm", "created_at": "2026-03-02T09:31:00+07:00",
             "first_response_at": None, "resolved_at": None, "status": "open"}
    with django_capture_on_commit_callbacks(execute=False):
        assert post(client, URL, moved).json()["updated"] == 1
    assert marks() == [("interaction", "cskh-hcm", q(2, 30)), ("interaction", "cskh-hn", q(2))]
    assert Interaction.objects.get().department.slug == "cskh-hcm"


def test_unchanged_and_stale_mark_nothing(staff_client, department, django_capture_on_commit_callbacks):
    item = interaction_payload(updated_at="2026-03-02T10:00:00Z")
    post(staff_client, URL, item)
    RecordChange.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        body = post(staff_client, URL, [item, {**item, "topic": "x", "updated_at": "2026-03-02T09:00:00Z"}]).json()
    assert counts(body) == {"created": 0, "updated": 0, "unchanged": 1, "stale": 1}
    assert RecordChange.objects.count() == 0
    assert callbacks == []


def test_survey_and_cashout_marks_use_their_anchor(staff_client, department, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        post(staff_client, "/api/v1/surveys", survey_payload(submitted_at="2026-03-02T10:44:59Z"))
        post(staff_client, "/api/v1/cashouts", cashout_payload(requested_at="2026-03-02T11:15:00+07:00",
                                                               first_response_at=None,
                                                               completed_at="2026-03-02T11:20:00+07:00"))
    assert marks() == [("cashout", "cskh-hn", q(4, 15)), ("survey", "cskh-hn", q(10, 30))]


def test_a_body_that_is_not_json_is_415(staff_client, department):
    response = staff_client.post(URL, "external_id=1", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


@pytest.mark.parametrize(
    ("url", "item", "field", "code"),
    [
        ("interactions", interaction_payload(created_at="2026-03-02T09:00:00"), "created_at", "naive_datetime"),
        ("interactions", interaction_payload(handle_seconds=-5), "handle_seconds", "negative_duration"),
        ("interactions", interaction_payload(resolved_at="2026-03-02T08:00:00+07:00"), "resolved_at",
         "before_anchor"),
        ("interactions", interaction_payload(status="missed", resolved_at=None), "status", "status_contradiction"),
        ("interactions", interaction_payload(sentiment="angry"), "sentiment", "unknown_field"),
        ("surveys", survey_payload(kind="ces", score=8), "score", "out_of_scale"),
        ("surveys", survey_payload(submitted_at="2026-03-02"), "submitted_at", "invalid_datetime"),
        ("cashouts", cashout_payload(currency="DOLLAR"), "currency", "invalid_currency"),
        ("cashouts", cashout_payload(amount=12.5), "amount", "invalid_amount"),
        ("cashouts", cashout_payload(status="pending"), "status", "status_contradiction"),
    ],
)
def test_each_rule_is_a_clear_400_over_http(staff_client, department, url, item, field, code):
    response = post(staff_client, f"/api/v1/{url}", [item])
    assert response.status_code == 400
    body = response.json()
    assert [(e["index"], e["field"], e["code"]) for e in body["errors"]] == [(0, field, code)]
    assert body["detail"] == "1 of 1 items are invalid; nothing was written."
    assert Interaction.objects.count() + SurveyResponse.objects.count() + Cashout.objects.count() == 0
