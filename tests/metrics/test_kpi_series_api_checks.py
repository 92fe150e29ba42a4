"""GET /api/v1/metrics for the system-check KPIs: group_by=check and the check filter, the 400 for a KPI
whose records have no check, and what each role sees (no agent owns a system check)."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.metrics.records import recompute_all, system_checks_upsert

pytestmark = pytest.mark.django_db

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DAY = datetime(2026, 5, 4, tzinfo=TZ)


@pytest.fixture
def checks(department, other_department):
    """cskh-hn: payout-gateway at 09:00, 09:10 (failed), 09:30; bank-api at 09:05, 10:05 (failed). cskh-hcm:
    payout-gateway at 09:20 (its own series)."""
    runs = [("p1", department, "payout-gateway", 0, "ok"), ("p2", department, "payout-gateway", 10, "failed"),
            ("p3", department, "payout-gateway", 30, "ok"), ("b1", department, "bank-api", 5, "ok"),
            ("b2", department, "bank-api", 65, "failed"), ("x1", other_department, "payout-gateway", 20, "ok")]
    system_checks_upsert([{"external_id": key, "department": dept.slug, "check": name, "outcome": outcome,
                           "at": (DAY + timedelta(hours=9, minutes=m)).isoformat()}
                          for key, dept, name, m, outcome in runs])
    recompute_all()


def _get(client, **params):
    params.setdefault("start", "2026-05-04")
    params.setdefault("end", "2026-05-05")
    params.setdefault("granularity", "total")
    return client.get("/api/v1/metrics", params)


def _values(response) -> dict:
    assert response.status_code == 200, response.json()
    return {(r["kpi"], tuple(r["group"].values())): (r["value"], r["sample_size"]) for r in response.json()["results"]}


def test_group_by_check_and_the_check_filter(make_client, department, checks):
    client = make_client(grants=[(department.slug, "viewer")])
    kpis = "system_checks,system_check_failure_rate,system_check_interval"
    grouped = _values(_get(client, kpi=kpis, department=department.slug, group_by="check"))
    assert grouped == {
        ("system_checks", ("bank-api",)): (2, 2), ("system_checks", ("payout-gateway",)): (3, 3),
        ("system_check_failure_rate", ("bank-api",)): (50.0, 2),
        ("system_check_failure_rate", ("payout-gateway",)): (pytest.approx(100 / 3), 3),
        ("system_check_interval", ("bank-api",)): (3600.0, 1),
        ("system_check_interval", ("payout-gateway",)): (900.0, 2),  # (600 + 1200) / 2
    }
    filtered = _values(_get(client, kpi=kpis, department=department.slug, check="payout-gateway",
                            granularity="hour", start="2026-05-04T09:00:00+07:00", end="2026-05-04T11:00:00+07:00"))
    assert filtered[("system_checks", ())] == (3, 3)
    series = {r["kpi"]: [(p["value"], p["sample_size"]) for p in r["series"]]
              for r in _get(client, kpi=kpis, department=department.slug, check="bank-api", granularity="hour",
                            start="2026-05-04T09:00:00+07:00", end="2026-05-04T11:00:00+07:00").json()["results"]}
    assert series["system_check_interval"] == [(None, 0), (3600.0, 1)]  # the gap counts in the later run's hour
    staff = make_client(staff=True)
    both = _values(_get(staff, kpi="system_check_interval,system_checks", group_by="department,check"))
    # Each department's runs of a check are their own series: cskh-hcm's one run has no interval.
    assert both[("system_check_interval", ("cskh-hn", "payout-gateway"))] == (900.0, 2)
    assert both[("system_check_interval", ("cskh-hcm", "payout-gateway"))] == (None, 0)
    assert both[("system_checks", ("cskh-hcm", "payout-gateway"))] == (1, 1)


@pytest.mark.parametrize(("params", "field"), [({"group_by": "check"}, "group_by"),
                                               ({"check": "payout-gateway"}, "check"),
                                               ({"group_by": "channel", "check": "bank-api"}, "check")])
def test_a_kpi_whose_records_have_no_check_cannot_be_grouped_or_filtered_by_it(make_client, department, params,
                                                                               field):
    client = make_client(grants=[(department.slug, "manager")])
    response = _get(client, kpi="system_checks,cashout_error_rate", department=department.slug, **params)
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert (error["field"], error["code"]) == (field, "dimension_not_shared")
    assert "cashout" in error["message"] and "check" in error["message"]
    # The system-check KPI alone is fine; the other dimensions keep their rule (one group, null).
    assert _get(client, kpi="system_checks", department=department.slug, **params).status_code == 200


def test_an_agent_grant_sees_no_system_checks(make_client, department, checks):
    """Like cashouts: numbers restricted to the linked agent, and no system check has one."""
    agent = make_client(grants=[(department.slug, "agent")], agent="a-1")
    assert _values(_get(agent, kpi="system_checks,system_check_interval", department=department.slug)) == {
        ("system_checks", ()): (0, 0), ("system_check_interval", ()): (None, 0)}
    viewer = make_client(grants=[(department.slug, "viewer")])
    assert _values(_get(viewer, kpi="system_checks", department=department.slug))[("system_checks", ())] == (5, 5)


def test_csv_has_a_check_column(make_client, department, checks):
    client = make_client(grants=[(department.slug, "viewer")])
    response = _get(client, kpi="system_checks", department=department.slug, group_by="check", format="csv")
    assert response.status_code == 200
    rows = response.content.decode().splitlines()
    assert rows[0] == "kpi,unit,check,period_start,period_end,value,sample_size"
    assert sorted(row.split(",")[2] + ":" + row.split(",")[5] for row in rows[1:]) == ["bank-api:2", "payout-gateway:3"]
