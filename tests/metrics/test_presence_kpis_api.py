"""Presence KPIs through GET /metrics: per role, across record types, on a controlled clock."""

from datetime import UTC, datetime

import pytest
from django.utils import timezone

from tests.metrics.records import recompute_all

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock(monkeypatch, settings):
    settings.CSKPI_PRESENCE_TIMEOUT_SECONDS = 8 * 3600
    monkeypatch.setattr(timezone, "now", lambda: datetime(2026, 3, 2, 4, 0, tzinfo=UTC))  # 11:00 in HCM City


def test_presence_kpis_through_metrics_by_role(department, staff_client, make_client, clock):
    """Per agent for managers, itself for an agent, 403 for a viewer grouping by agent; contacts per
    online hour across two record types, not groupable by a dimension one side lacks."""
    day = "2026-03-02"
    staff_client.post("/api/v1/agent-events", [
        {"external_id": "k1", "department": "cskh-hn", "agent": "a-1", "status": "available",
         "at": f"{day}T08:00:00+07:00"},
        {"external_id": "k2", "department": "cskh-hn", "agent": "a-1", "status": "busy", "at": f"{day}T09:00:00+07:00"},
        {"external_id": "k3", "department": "cskh-hn", "agent": "a-1", "status": "offline",
         "at": f"{day}T10:00:00+07:00"},
        {"external_id": "k4", "department": "cskh-hn", "agent": "a-2", "status": "busy", "at": f"{day}T08:00:00+07:00"},
        {"external_id": "k5", "department": "cskh-hn", "agent": "a-2", "status": "offline",
         "at": f"{day}T08:30:00+07:00"},
    ], format="json")
    staff_client.post("/api/v1/interactions", [
        {"external_id": f"i{n}", "department": "cskh-hn", "channel": "phone", "agent": "a-1", "status": "resolved",
         "created_at": f"{day}T09:1{n}:00+07:00", "resolved_at": f"{day}T09:2{n}:00+07:00", "handle_seconds": 100}
        for n in range(3)
    ], format="json")
    recompute_all()  # what the task kicked after commit does (the test transaction never commits)
    params = f"department=cskh-hn&start={day}&end=2026-03-03&granularity=total"
    manager = make_client(grants=[("cskh-hn", "manager")])
    body = manager.get(f"/api/v1/metrics?kpi=occupancy,contacts_per_online_hour,talk_time,agent_online_time"
                       f"&group_by=agent&{params}").json()
    values = {(r["kpi"], r["group"]["agent"]): r["value"] for r in body["results"]}
    assert values[("occupancy", "a-1")] == 50.0
    assert values[("occupancy", "a-2")] == 100.0
    assert values[("contacts_per_online_hour", "a-1")] == 1.5  # 3 resolved in 2 online hours
    assert values[("talk_time", "a-1")] == 300.0
    assert values[("agent_online_time", "a-2")] == 1800.0
    agent = make_client(grants=[("cskh-hn", "agent")], agent="a-2")
    body = agent.get(f"/api/v1/metrics?kpi=agent_busy_time&group_by=agent&{params}").json()
    assert [(r["group"]["agent"], r["value"]) for r in body["results"]] == [("a-2", 1800.0)]
    viewer = make_client(grants=[("cskh-hn", "viewer")])
    assert viewer.get(f"/api/v1/metrics?kpi=occupancy&group_by=agent&{params}").status_code == 403
    overall = viewer.get(f"/api/v1/metrics?kpi=occupancy,average_agents_online&{params}").json()["results"]
    assert overall[0]["value"] == pytest.approx(5400 / 9000 * 100)  # busy 1 h + 30 min, available 1 h
    assert overall[1]["value"] == pytest.approx(9000 / (11 * 3600))  # 2.5 online hours over the 11 h elapsed
    refused = manager.get(f"/api/v1/metrics?kpi=contacts_per_online_hour&group_by=channel&{params}")
    assert refused.status_code == 400 and refused.json()["errors"][0]["code"] == "dimension_not_shared"
