"""Who reads which rule and event: the agent role never receives or reads a rule on numbers it
cannot see (department-wide or another agent's); viewers see department-level rules only; nothing
crosses departments; webhook URLs and attempts are for managers."""

import base64
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from metrics.alerting.models import AlertEvent
from metrics.alerting.services import alert_rule_create, alert_rules_evaluate
from tests.metrics.alerting.conftest import SECRET

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_recompute_kick(monkeypatch):
    monkeypatch.setattr("metrics.services.alert_evaluation_kick", lambda **kwargs: None)


@pytest.fixture
def rules(department, other_department):
    """Four absence rules that all fire at once on empty departments: department-wide, agent a-1,
    agent a-2 (cskh-hn), and one of cskh-hcm filtered on a-1."""
    def make(dept, agent, name):
        return alert_rule_create(department=dept, name=name, kpi="interactions", window_seconds=900,
                                 condition="below", threshold=1, agent=agent, webhook_url="https://127.0.0.1/h",
                                 secret=SECRET)
    made = {"dept": make(department, "", "dept"), "a-1": make(department, "a-1", "a-1"),
            "a-2": make(department, "a-2", "a-2"), "other": make(other_department, "a-1", "other")}
    assert alert_rules_evaluate(now=timezone.now()) == 4
    return made


def names(client, path="/api/v1/alert-rules"):
    response = client.get(path)
    assert response.status_code == 200, response.json()
    body = response.json()
    return sorted(r["name"] for r in body) if isinstance(body, list) else body


def event_rules(client, rules) -> list[str]:
    by_id = {str(r.id): name for name, r in rules.items()}
    body = client.get("/api/v1/alert-events").json()
    return sorted(by_id[e["rule"]] for e in body["results"])


def test_an_agent_reads_only_rules_and_events_on_its_own_numbers(make_client, department, rules):
    agent = make_client(grants=[(department.slug, "agent")], agent="a-1")
    assert names(agent) == ["a-1"]
    assert event_rules(agent, rules) == ["a-1"]
    for hidden in ("dept", "a-2", "other"):
        assert agent.get(f"/api/v1/alert-rules/{rules[hidden].id}").status_code == 404
        event = AlertEvent.objects.get(rule=rules[hidden])
        assert agent.get(f"/api/v1/alert-events/{event.id}").status_code == 404
        assert agent.get(f"/api/v1/alert-events/{event.id}/deliveries").status_code == 404
    own = agent.get(f"/api/v1/alert-rules/{rules['a-1'].id}").json()
    assert own["webhook_url"] is None and "secret" not in own
    own_event = AlertEvent.objects.get(rule=rules["a-1"])
    assert agent.get(f"/api/v1/alert-events/{own_event.id}").json()["agent"] == "a-1"
    assert agent.get(f"/api/v1/alert-events/{own_event.id}/deliveries").status_code == 403
    assert agent.get(f"/api/v1/alert-events?rule={rules['dept'].id}").json()["results"] == []


def test_a_viewer_reads_department_level_rules_only(make_client, department, rules):
    viewer = make_client(grants=[(department.slug, "viewer")])
    assert names(viewer) == ["dept"]
    assert event_rules(viewer, rules) == ["dept"]


def test_a_manager_reads_the_whole_department_and_nothing_else(make_client, department, rules):
    manager = make_client(grants=[(department.slug, "manager")])
    assert names(manager) == ["a-1", "a-2", "dept"]
    assert event_rules(manager, rules) == ["a-1", "a-2", "dept"]
    assert manager.get(f"/api/v1/alert-rules/{rules['other'].id}").status_code == 404
    assert manager.patch(f"/api/v1/alert-rules/{rules['other'].id}", {"threshold": 2},
                         format="json").status_code == 404
    assert manager.get(f"/api/v1/alert-rules/{rules['a-2'].id}").json()["webhook_url"] == "https://127.0.0.1/h"


def test_ingest_only_callers_read_nothing_and_staff_read_everything(make_client, staff_client, department, rules):
    ingest = make_client(grants=[(department.slug, "ingest")])
    assert names(ingest) == [] and event_rules(ingest, rules) == []
    assert names(staff_client) == ["a-1", "a-2", "dept", "other"]


def test_event_list_filters_and_pages(staff_client, rules):
    assert alert_rules_evaluate(now=timezone.now() + timedelta(minutes=1)) == 0
    first = staff_client.get("/api/v1/alert-events", {"page_size": 3}).json()
    assert len(first["results"]) == 3 and first["next"]
    rest = staff_client.get(first["next"]).json()
    assert len(rest["results"]) == 1 and rest["next"] is None
    ats = [e["at"] for e in first["results"] + rest["results"]]
    assert ats == sorted(ats, reverse=True)
    assert len({e["id"] for e in first["results"] + rest["results"]}) == 4
    only = staff_client.get("/api/v1/alert-events", {"department": "cskh-hcm", "state": "firing"}).json()
    assert [e["rule"] for e in only["results"]] == [str(rules["other"].id)]
    event = only["results"][0]
    assert (event["state"], event["previous_state"], event["value"], event["sample_size"], event["threshold"],
            event["window"], event["delivery"]["status"]) == ("firing", "ok", 0, 0, 1.0, "PT15M", "pending")
    assert staff_client.get("/api/v1/alert-events", {"cursor": "nope"}).json()["errors"][0]["code"] == "invalid_cursor"
    # Any offset names an instant (PostgreSQL refuses one beyond ±15:59: it was a 503); before year 1 in UTC, none
    # (it was a 500 on SQLite).
    wide, early = (base64.urlsafe_b64encode(f"{at}|{uuid.uuid4()}".encode()).decode()
                   for at in ("2026-05-04T00:00:00+23:59", "0001-01-01T00:00:00+14:00"))
    assert staff_client.get("/api/v1/alert-events", {"cursor": wide}).status_code == 200
    assert staff_client.get("/api/v1/alert-events", {"cursor": early}).json()["errors"][0]["code"] == "invalid_cursor"
    for bad in ({"state": "on"}, {"page_size": 0}, {"rule": "x"}, {"colour": "red"}):
        response = staff_client.get("/api/v1/alert-events", bad)
        assert response.status_code == 400 and response.json()["errors"][0]["field"] == next(iter(bad))
