"""GET/PUT /api/v1/departments/{slug}/calendar and /sla: who may, what is stored, bad input, and the
records measured again after a change."""

from datetime import UTC, datetime

import pytest

from cskpi.models import DepartmentCalendar, SlaPolicy
from cskpi.services import department_upsert
from ingestion.models import Cashout, Interaction, RecordChange, ServiceLevelRemeasure
from ingestion.service_levels import pending_remeasures_run

pytestmark = pytest.mark.django_db

CALENDAR = {"versions": [{
    "effective_from": "2026-01-01",
    "weekly": {"mon": [["08:00", "12:00"], ["13:00", "17:30"]], "tue": [["08:00", "17:30"]],
               "sat": [["22:00", "06:00"]]},
    "holidays": ["2026-09-02"], "holiday_country": "VN"}]}
POLICY = {"first_response_seconds": 3600, "resolution_seconds": 28800,
          "channels": {"phone": {"first_response_seconds": 60}},
          "cashout_response_seconds": 900, "cashout_clock": "calendar"}


def _url(slug, what):
    return f"/api/v1/departments/{slug}/{what}"


def test_a_department_without_settings_is_open_all_week_with_no_targets(department, make_client):
    client = make_client(grants=[(department.slug, "viewer")])
    calendar = client.get(_url(department.slug, "calendar"))
    assert calendar.status_code == 200
    assert calendar.json() == {"versions": [], "updated_at": None}
    sla = client.get(_url(department.slug, "sla")).json()
    assert sla["updated_at"] is None and sla["first_response_seconds"] is None and sla["channels"] == {}


def test_a_manager_sets_the_calendar_and_policy(department, make_client):
    client = make_client(grants=[(department.slug, "manager")])
    answer = client.put(_url(department.slug, "calendar"), CALENDAR, format="json")
    assert answer.status_code == 200, answer.json()
    version = answer.json()["versions"][0]
    assert version["weekly"]["mon"] == [["08:00", "12:00"], ["13:00", "17:30"]]
    assert version["weekly"]["sun"] == [] and version["holiday_country"] == "VN"
    assert client.get(_url(department.slug, "calendar")).json()["versions"] == answer.json()["versions"]
    answer = client.put(_url(department.slug, "sla"), POLICY, format="json")
    assert answer.status_code == 200, answer.json()
    assert {k: answer.json()[k] for k in POLICY} == POLICY


@pytest.mark.parametrize("role", ["viewer", "agent", "ingest"])
def test_other_roles_may_not_change_them(department, make_client, role):
    client = make_client(grants=[(department.slug, role)], agent="a-1" if role == "agent" else "")
    for what, body in (("calendar", CALENDAR), ("sla", POLICY)):
        answer = client.put(_url(department.slug, what), body, format="json")
        assert answer.status_code == 403
        assert answer.json()["errors"][0]["code"] == "permission_denied"
    assert not DepartmentCalendar.objects.exists() and not SlaPolicy.objects.exists()


def test_another_departments_manager_gets_the_same_answer_as_for_a_missing_one(department, other_department,
                                                                              make_client):
    client = make_client(grants=[(other_department.slug, "manager")])
    for slug in (department.slug, "no-such-department"):
        answer = client.put(_url(slug, "calendar"), CALENDAR, format="json")
        assert answer.status_code == 403
        assert client.get(_url(slug, "sla")).status_code == 403


def test_staff_naming_no_department_get_a_404(staff_client):
    assert staff_client.get(_url("no-such-department", "calendar")).status_code == 404
    assert staff_client.put(_url("no-such-department", "sla"), POLICY, format="json").status_code == 404


@pytest.mark.parametrize("what, body, field, code", [
    ("calendar", {"versions": [{"effective_from": "1066-10-14", "weekly": {}}]},
     "versions[0].effective_from", "out_of_range"),
    ("calendar", {"versions": [{"effective_from": "2026-01-01", "weekly": {}, "timezone": "UTC"}]},
     "versions[0].timezone", "unknown_field"),
    ("calendar", {"versions": [{"effective_from": "2026-01-01", "weekly": {"mon": [["08:00", "12:00"],
                                                                                   ["09:00", "10:00"]]}}]},
     "versions[0].weekly.mon", "overlap"),
    ("calendar", {"versions": [{"effective_from": "2026-01-01", "weekly": {"mon": [["8am", "12:00"]]}}]},
     "versions[0].weekly.mon[0]", "invalid_time"),
    ("calendar", {"versions": [{"effective_from": "2026-01-01", "weekly": {}, "holiday_country": "ZZ"}]},
     "versions[0].holiday_country", "unknown_country"),
    ("sla", {"first_response_seconds": -1}, "first_response_seconds", "negative"),
    ("sla", {"channels": {"phone": {"resolution_seconds": -5}}}, "channels.phone.resolution_seconds", "negative"),
    ("sla", {"cashout_clock": "lunar"}, "cashout_clock", "invalid_choice"),
    ("sla", {"first_response_seconds": 1.5}, "first_response_seconds", "invalid"),
    ("sla", {"channels": []}, "channels", "invalid"),
    ("sla", {"channels": None}, "channels", "invalid"),
    ("calendar", {"versions": [{"effective_from": "2026-01-01", "weekly": {}, "holidays": None}]},
     "versions[0].holidays", "invalid"),
])
def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(department, staff_client, what, body, field,
                                                                 code):
    assert staff_client.put(_url(department.slug, what), CALENDAR if what == "calendar" else POLICY,
                            format="json").status_code == 200
    before = staff_client.get(_url(department.slug, what)).json()
    answer = staff_client.put(_url(department.slug, what), body, format="json")
    assert answer.status_code == 400
    assert {"field": field, "code": code} in [{"field": e["field"], "code": e["code"]} for e in answer.json()["errors"]]
    assert staff_client.get(_url(department.slug, what)).json() == before


def _ingest(client, department, kind, items):
    answer = client.post(f"/api/v1/{kind}", items, format="json")
    assert answer.status_code == 200, answer.json()


def test_records_are_measured_on_write_and_again_after_a_change(department, make_client):
    manager = make_client(grants=[(department.slug, "manager"), (department.slug, "ingest")])
    # Mon 2 Mar 2026, 16:00 to 18:00 local (Asia/Ho_Chi_Minh): 2 h of calendar time.
    _ingest(manager, department, "interactions", [{
        "external_id": "i-1", "department": department.slug, "channel": "chat", "status": "resolved",
        "created_at": "2026-03-02T16:00:00+07:00", "first_response_at": "2026-03-02T18:00:00+07:00",
        "resolved_at": "2026-03-03T09:00:00+07:00"}])
    stored = Interaction.objects.get()
    assert stored.first_response_business_seconds == 7200 and stored.first_response_sla is None
    assert manager.put(_url(department.slug, "calendar"), CALENDAR, format="json").status_code == 200
    assert manager.put(_url(department.slug, "sla"), POLICY, format="json").status_code == 200
    assert ServiceLevelRemeasure.objects.filter(department=department).exists()  # waiting for the worker
    RecordChange.objects.all().delete()  # what the write itself marked (recomputed by then)
    pending_remeasures_run(time_budget=30)
    assert not ServiceLevelRemeasure.objects.exists()
    # The record's quarter is marked for the KPI engine (in a test transaction no recompute ran).
    assert list(RecordChange.objects.values_list("quarter_start", flat=True)) == [
        datetime(2026, 3, 2, 9, 0, tzinfo=UTC)]
    stored.refresh_from_db()
    # Open until 17:30 on Monday: 1.5 h; resolution: + Tuesday 08:00-09:00.
    assert stored.first_response_business_seconds == 5400
    assert stored.resolution_business_seconds == 5400 + 3600
    # 1.5 h against the 1 h first-response target; 2.5 h against the 8 h resolution target.
    assert (stored.first_response_sla, stored.resolution_sla) == ("breached", "met")
    # A version taking effect later does not touch this record.
    later = {"versions": [*CALENDAR["versions"], {"effective_from": "2026-04-01", "weekly": {}}]}
    assert manager.put(_url(department.slug, "calendar"), later, format="json").status_code == 200
    assert ServiceLevelRemeasure.objects.get().since.isoformat() == "2026-03-31T17:00:00+00:00"
    pending_remeasures_run(time_budget=30)
    stored.refresh_from_db()
    assert stored.first_response_business_seconds == 5400


def test_cashouts_on_the_calendar_clock(department, make_client):
    manager = make_client(grants=[(department.slug, "manager"), (department.slug, "ingest")])
    assert manager.put(_url(department.slug, "calendar"), CALENDAR, format="json").status_code == 200
    assert manager.put(_url(department.slug, "sla"), POLICY, format="json").status_code == 200
    pending_remeasures_run(time_budget=30)
    base = {"department": department.slug, "amount": "100", "currency": "VND", "status": "pending",
            "requested_at": "2026-03-01T03:00:00+07:00"}  # a Sunday night: closed, but the cashout clock is calendar
    _ingest(manager, department, "cashouts", [
        {**base, "external_id": "c-1", "first_response_at": "2026-03-01T03:15:00+07:00"},
        {**base, "external_id": "c-2", "first_response_at": "2026-03-01T03:15:01+07:00"},
        {**base, "external_id": "c-3"},
    ])
    states = dict(Cashout.objects.values_list("external_id", "response_sla"))
    assert states == {"c-1": "met", "c-2": "breached", "c-3": "breached"}


def test_while_records_are_measured_again_status_says_so_and_metrics_answer_as_of_the_change(department,
                                                                                            make_client):
    manager = make_client(grants=[(department.slug, "manager")])
    assert manager.put(_url(department.slug, "calendar"), CALENDAR, format="json").status_code == 200
    waiting = ServiceLevelRemeasure.objects.get()  # the worker has not run (no commit inside a test)
    status = manager.get("/api/v1/status").json()
    assert status["remeasuring"] == [{"department": department.slug, "since": "2025-12-31T17:00:00Z",
                                      "requested_at": waiting.requested_at.isoformat().replace("+00:00", "Z"),
                                      "records_done": 0}]
    answer = manager.get("/api/v1/metrics", {"kpi": "sla_first_response_rate", "department": department.slug,
                                             "start": "2026-03-01", "end": "2026-03-02"}).json()
    assert datetime.fromisoformat(answer["as_of"]) == waiting.requested_at
    pending_remeasures_run(time_budget=30)
    assert manager.get("/api/v1/status").json()["remeasuring"] == []
    answer = manager.get("/api/v1/metrics", {"kpi": "sla_first_response_rate", "department": department.slug,
                                             "start": "2026-03-01", "end": "2026-03-02"}).json()
    assert datetime.fromisoformat(answer["as_of"]) > waiting.requested_at


def test_a_zone_change_measures_the_records_again(department, make_client):
    manager = make_client(grants=[(department.slug, "manager"), (department.slug, "ingest")])
    assert manager.put(_url(department.slug, "calendar"), CALENDAR, format="json").status_code == 200
    pending_remeasures_run(time_budget=30)
    # Mon 2 Mar 2026 08:00-09:00 in Ho Chi Minh City (01:00-02:00Z): open an hour there.
    _ingest(manager, department, "interactions", [{
        "external_id": "i-1", "department": department.slug, "channel": "chat", "status": "open",
        "created_at": "2026-03-02T01:00:00Z", "first_response_at": "2026-03-02T02:00:00Z"}])
    assert Interaction.objects.get().first_response_business_seconds == 3600
    department_upsert(slug=department.slug, timezone="Europe/London")  # 01:00-02:00 local: closed
    pending_remeasures_run(time_budget=30)
    assert Interaction.objects.get().first_response_business_seconds == 0
