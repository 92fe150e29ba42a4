"""Agent status events through the API: bad input refused whole, and `GET /agents/now` per role, with
the presence timeout, on a controlled clock (`django.utils.timezone.now` patched)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from ingestion.models import AgentEvent

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)  # 11:00 in Ho Chi Minh City


@pytest.fixture
def clock(monkeypatch, settings):
    settings.CSKPI_PRESENCE_TIMEOUT_SECONDS = 8 * 3600
    state = {"now": NOW}
    monkeypatch.setattr(timezone, "now", lambda: state["now"])
    return state


def _event(external_id, agent, status, minutes_ago, **extra):
    return {"external_id": external_id, "department": "cskh-hn", "agent": agent, "status": status,
            "at": (NOW - timedelta(minutes=minutes_ago)).isoformat(), **extra}


@pytest.mark.parametrize(("change", "field", "code"), [
    ({"status": "lunch"}, "status", "invalid_choice"),
    ({"at": "2026-03-02T09:00:00"}, "at", "naive_datetime"),
    ({"agent": ...}, "agent", "required"),
    ({"at": ...}, "at", "required"),
    ({"reason": "x" * 256}, "reason", "max_length"),
])
def test_a_bad_event_is_a_400_naming_item_and_field_and_nothing_is_written(department, staff_client, change, field,
                                                                           code):
    bad = {k: v for k, v in (_event("e-2", "a-1", "busy", 5) | change).items() if v is not ...}
    response = staff_client.post("/api/v1/agent-events", [_event("e-1", "a-1", "available", 10), bad],
                                 format="json")
    assert response.status_code == 400, response.content
    [error] = response.json()["errors"]
    assert (error["index"], error["field"], error["code"]) == (1, field, code)
    assert not AgentEvent.objects.exists()


def test_events_upsert_and_read_back(department, staff_client, clock):
    response = staff_client.post("/api/v1/agent-events", [_event("e-1", "a-1", "available", 10, reason="start")],
                                 format="json")
    assert response.json()["created"] == 1
    again = staff_client.post("/api/v1/agent-events", [_event("e-1", "a-1", "available", 10, reason="start")],
                              format="json")
    assert again.json()["unchanged"] == 1
    [listed] = staff_client.get("/api/v1/agent-events?agent=a-1").json()["results"]
    assert (listed["agent"], listed["status"], listed["reason"]) == ("a-1", "available", "start")
    detail = staff_client.get("/api/v1/agent-events/api/e-1").json()
    assert detail["at"].startswith("2026-03-02T")


@pytest.fixture
def team(department, staff_client, clock):
    staff_client.post("/api/v1/agent-events", [
        _event("a1-1", "a-1", "available", 120),
        _event("a1-2", "a-1", "available", 30),  # the same status again: `since` stays at the first
        _event("a2-1", "a-2", "away", 200),
        _event("a2-2", "a-2", "busy", 45),
        _event("a3-1", "a-3", "busy", 9 * 60),  # silent for 9 h: offline since its event timed out
        _event("a4-1", "a-4", "offline", 60),
        _event("a5-1", "a-5", "available", -30),  # in the future (clock skew): not yet counted
    ], format="json")
    return department


def test_managers_see_every_agent_with_status_and_since(team, make_client):
    client = make_client(grants=[("cskh-hn", "manager")])
    body = client.get("/api/v1/agents/now?department=cskh-hn").json()
    assert body["timeout_seconds"] == 8 * 3600
    [dept] = body["departments"]
    agents = {a["agent"]: a for a in dept["agents"]}
    assert set(agents) == {"a-1", "a-2", "a-3", "a-4"}
    assert (agents["a-1"]["status"], _at(agents["a-1"]["since"])) == ("available", NOW - timedelta(minutes=120))
    assert (agents["a-2"]["status"], _at(agents["a-2"]["since"])) == ("busy", NOW - timedelta(minutes=45))
    assert (agents["a-3"]["status"], _at(agents["a-3"]["since"])) == ("offline", NOW - timedelta(hours=1))
    assert _at(agents["a-3"]["last_event_at"]) == NOW - timedelta(hours=9)
    assert agents["a-4"]["status"] == "offline"
    assert dept["counts"] == {"available": 1, "busy": 1, "away": 0, "offline": 2}
    assert dept["online"] == 2


def test_viewers_see_only_the_counts(team, make_client):
    client = make_client(grants=[("cskh-hn", "viewer")])
    [dept] = client.get("/api/v1/agents/now").json()["departments"]
    assert dept["agents"] is None
    assert dept["counts"] == {"available": 1, "busy": 1, "away": 0, "offline": 2}


def test_an_agent_sees_only_itself(team, make_client):
    client = make_client(grants=[("cskh-hn", "agent")], agent="a-2")
    [dept] = client.get("/api/v1/agents/now").json()["departments"]
    assert [a["agent"] for a in dept["agents"]] == ["a-2"]
    assert dept["counts"] == {"available": 0, "busy": 1, "away": 0, "offline": 0}


def test_time_passing_times_agents_out(team, make_client, clock):
    clock["now"] = NOW + timedelta(hours=7, minutes=31)  # a-1's last event was 8 h 1 min ago
    client = make_client(grants=[("cskh-hn", "manager")])
    [dept] = client.get("/api/v1/agents/now").json()["departments"]
    agents = {a["agent"]: a for a in dept["agents"]}
    assert agents["a-1"]["status"] == "offline"
    assert _at(agents["a-1"]["since"]) == NOW - timedelta(minutes=30) + timedelta(hours=8)
    assert agents["a-2"]["status"] == "offline"  # busy 8 h 16 min ago
    assert agents["a-5"]["status"] == "available"  # its time has come
    assert dept["counts"] == {"available": 1, "busy": 0, "away": 0, "offline": 4}


def test_reading_a_department_without_a_grant_is_refused(team, make_client, other_department):
    client = make_client(grants=[("cskh-hcm", "manager")])
    response = client.get("/api/v1/agents/now?department=cskh-hn")
    assert response.status_code == 403
    assert response.json()["errors"][0]["field"] == "department"
    ingest_only = make_client(grants=[("cskh-hn", "ingest")])
    assert ingest_only.get("/api/v1/agents/now").json()["code"] == "no_read_grant"


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def test_csv_and_jsonl_import_of_agent_events(tmp_path, department):
    from io import StringIO

    from django.core.management import call_command

    path = tmp_path / "events.csv"
    path.write_text("external_id,department,agent,status,at,reason\n"
                    "c1,cskh-hn,a-1,available,2026-03-02T08:00:00+07:00,\n"
                    "c2,cskh-hn,a-1,away,2026-03-02T12:00:00+07:00,lunch\n")
    out = StringIO()
    call_command("import_records", "agent-events", str(path), stdout=out)
    assert "created=2" in out.getvalue()
    assert AgentEvent.objects.get(external_id="c2").reason == "lunch"
    assert AgentEvent.objects.get(external_id="c1").reason is None
    jsonl = tmp_path / "events.jsonl"
    jsonl.write_text('{"external_id": "c1", "department": "cskh-hn", "agent": "a-1", "status": "busy", '
                     '"at": "2026-03-02T08:00:00+07:00"}\n')
    out = StringIO()
    call_command("import_records", "agent-events", str(jsonl), stdout=out)
    assert "updated=1" in out.getvalue()

