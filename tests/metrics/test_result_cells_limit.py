"""Finding 4 of the hardening issue: a /metrics answer holds at most CSKPI_MAX_RESULT_CELLS cells
(KPIs × groups × periods); over it, 400 result_too_large naming the product and how to narrow it."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.metrics.records import interaction_build, records_store

pytestmark = pytest.mark.django_db

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DAY = datetime(2026, 5, 4, tzinfo=TZ)
AGENTS = [f"a-{i}" for i in range(6)]
CHANNELS = ["phone", "chat"]


@pytest.fixture
def traffic(department, other_department):
    """6 agents × 2 channels in cskh-hn over 3 days; 1 agent in cskh-hcm."""
    records_store([
        interaction_build(department=department, created_at=DAY + timedelta(days=d, hours=9 + i), agent=agent,
                          channel=channel)
        for d in range(3) for i, agent in enumerate(AGENTS) for channel in CHANNELS
    ] + [interaction_build(department=other_department, created_at=DAY, agent="b-1")])


def _get(client, **params):
    return client.get("/api/v1/metrics", {"start": "2026-05-04", "end": "2026-05-14", "department": "cskh-hn",
                                          **params})


def _cells(body) -> int:
    return sum(max(len(r.get("series", [])), 1) for r in body["results"])


@pytest.mark.parametrize(("params", "kpis", "groups", "periods"), [
    ({"kpi": "interactions,fcr_rate", "group_by": "agent"}, 2, 6, 10),
    ({"kpi": "interactions", "group_by": "agent,channel"}, 1, 12, 10),
    ({"kpi": "interactions,fcr_rate", "group_by": "department", "department": "cskh-hn,cskh-hcm"}, 2, 2, 10),
    ({"kpi": "interactions", "group_by": "agent,department", "department": "cskh-hn,cskh-hcm"}, 1, 7, 10),
    ({"kpi": "interactions", "group_by": "agent", "department": "cskh-hn,cskh-hcm"}, 1, 7, 10),
    ({"kpi": "interactions", "group_by": "agent", "granularity": "hour", "end": "2026-05-05"}, 1, 6, 24),
])
def test_the_cap_is_the_product_of_kpis_groups_and_periods(staff_client, traffic, settings, params, kpis, groups,
                                                           periods):
    cells = kpis * groups * periods
    settings.CSKPI_MAX_RESULT_CELLS = cells
    response = _get(staff_client, **params)
    assert response.status_code == 200, response.content
    assert _cells(response.json()) == cells  # the groups counted are the groups answered
    settings.CSKPI_MAX_RESULT_CELLS = cells - 1
    response = _get(staff_client, **params)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "result_too_large" and body["errors"][0]["code"] == "result_too_large"
    message = body["errors"][0]["message"]
    assert f"{kpis} KPIs" in message and f"{periods} periods" in message and f"{cells - 1} (CSKPI_MAX_RESULT_CELLS)" in message
    assert "coarser granularity" in message and "filter by agent" in message


def test_filters_and_the_callers_scope_count(make_client, traffic, settings):
    settings.CSKPI_MAX_RESULT_CELLS = 20
    staff = make_client(staff=True)
    assert _get(staff, kpi="interactions", group_by="agent").status_code == 400  # 6 agents × 10 days
    assert _get(staff, kpi="interactions", group_by="agent", agent="a-1,a-2").status_code == 200
    agent = make_client(grants=[("cskh-hn", "agent")], agent="a-1")
    assert _get(agent, kpi="interactions", group_by="agent").status_code == 200  # only itself: 10 cells


def test_a_range_too_many_periods_for_the_kpis_is_refused_without_reading(staff_client, traffic, settings):
    settings.CSKPI_MAX_RESULT_CELLS = 100
    with CaptureQueriesContext(connection) as queries:
        response = _get(staff_client, kpi="interactions,csat,nps", granularity="hour", end="2026-05-06")
    assert not [q for q in queries.captured_queries if "bucket" in q["sql"]]  # no cube was read
    assert response.status_code == 400 and "3 KPIs × 1 groups × 48 periods = 144 cells" in response.json()["detail"]


def test_a_grouped_query_reading_too_many_aggregate_rows_is_refused(staff_client, traffic, settings):
    """A clipped month by agent is summed from the day cube: its cost follows days × agents, not cells."""
    settings.CSKPI_MAX_READ_ROWS = 18  # 6 agents × 3 days of records in the agent day cube
    params = {"kpi": "interactions", "group_by": "agent", "granularity": "month", "start": "2026-05-01",
              "end": "2026-05-31"}
    assert _get(staff_client, **params).status_code == 200
    settings.CSKPI_MAX_READ_ROWS = 17
    response = _get(staff_client, **params)
    assert response.status_code == 400 and response.json()["code"] == "result_too_large"
    assert "more than 17 aggregate rows" in response.json()["detail"]


def test_a_whole_month_by_agent_counts_the_month_cube_rows(staff_client, traffic, settings):
    """A whole month by agent reads the month cube: one row per agent, however many days."""
    params = {"kpi": "interactions", "group_by": "agent", "granularity": "month", "start": "2026-05-01",
              "end": "2026-06-01"}
    settings.CSKPI_MAX_READ_ROWS = 6  # 6 agents × 1 month
    assert _get(staff_client, **params).status_code == 200
    settings.CSKPI_MAX_READ_ROWS = 5
    assert _get(staff_client, **params).json()["code"] == "result_too_large"


def test_calendar_and_topic_groupings_count(staff_client, traffic, settings):
    """weekday × hour_of_day: at most 7 × 24 groups (fewer in a short range); topic groups are counted."""
    params = {"kpi": "interactions", "granularity": "total", "group_by": "weekday,hour_of_day"}
    settings.CSKPI_MAX_RESULT_CELLS = 7 * 24
    assert _get(staff_client, **params).status_code == 200
    settings.CSKPI_MAX_RESULT_CELLS = 7 * 24 - 1
    assert _get(staff_client, **params).json()["code"] == "result_too_large"
    # topic and agent together: no day cube holds both, the exact layer is pre-counted (6 agents, no topic).
    settings.CSKPI_MAX_RESULT_CELLS = 60
    assert _get(staff_client, kpi="interactions", group_by="topic,agent").status_code == 200
    settings.CSKPI_MAX_RESULT_CELLS = 59
    assert _get(staff_client, kpi="interactions", group_by="topic,agent").json()["code"] == "result_too_large"


def test_distinct_sets_merged_in_python_read_a_bounded_number_of_rows(staff_client, traffic, settings):
    """Customers are merged in the process from every cube row read: over CSKPI_MAX_READ_ROWS rows, 400."""
    settings.CSKPI_MAX_READ_ROWS = 10
    # The department's zone: 10 day rows of the customers cube, within the bound.
    assert _get(staff_client, kpi="customers").status_code == 200
    # Asia/Kolkata: the quarter-hour exact layer, 36 rows (one per agent × channel × day).
    response = _get(staff_client, kpi="new_customers", timezone="Asia/Kolkata")
    assert response.status_code == 400 and response.json()["errors"][0]["code"] == "result_too_large"
    assert _get(staff_client, kpi="interactions", timezone="Asia/Kolkata").status_code == 200
