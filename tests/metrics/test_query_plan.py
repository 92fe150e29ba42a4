"""Which cube serves which query: the cheapest whose dimensions and buckets fit."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from metrics.catalog import KPIS
from metrics.selectors import DepartmentScope, KpiQuery, query_plan

pytestmark = pytest.mark.django_db


def _plan(department, *, zone="Asia/Ho_Chi_Minh", start="2026-03-01", end="2026-04-01", granularity="day",
          kpi="interactions", agent_scope=None, **kwargs):
    tz = ZoneInfo(zone)
    s = datetime.fromisoformat(start)
    e = datetime.fromisoformat(end)
    s = s.astimezone(UTC) if s.tzinfo else s.replace(tzinfo=tz).astimezone(UTC)
    e = e.astimezone(UTC) if e.tzinfo else e.replace(tzinfo=tz).astimezone(UTC)
    query = KpiQuery(kpis=(KPIS[kpi],), scopes=(DepartmentScope(department, agent_scope),), start=s, end=e,
                     zone=zone, granularity=granularity, **kwargs)
    return query_plan(query=query)[("interaction", department.slug)]


@pytest.mark.parametrize(("kwargs", "cube"), [
    ({}, "day"),
    # Month periods whose ends are local month starts: the month cubes.
    ({"granularity": "month", "start": "2026-01-01", "end": "2027-01-01"}, "month"),
    ({"granularity": "month", "group_by": ("agent",)}, "month_agent"),
    ({"granularity": "month", "group_by": ("agent",), "channels": ("phone",)}, "month_agent_channel"),
    ({"granularity": "month", "group_by": ("channel",)}, "month_channel"),
    ({"granularity": "month", "group_by": ("topic",)}, "day_topic"),
    ({"granularity": "month", "start": "2026-03-05"}, "day"),
    ({"granularity": "month", "zone": "UTC"}, "hour"),
    ({"granularity": "month", "zone": "UTC", "group_by": ("channel",)}, "quarter"),
    ({"granularity": "month", "group_by": ("weekday",)}, "day"),
    ({"granularity": "total", "end": "2026-03-15"}, "day"),
    ({"group_by": ("channel",)}, "day_channel"),
    ({"group_by": ("department",)}, "day"),
    ({"group_by": ("agent",)}, "day_agent"),
    ({"agents": ("a-1",)}, "day_agent"),
    ({"agent_scope": "a-1"}, "day_agent"),
    # No day × agent × channel cube: the raw records (the exact layer) answer it.
    ({"group_by": ("agent",), "channels": ("phone",)}, "quarter"),
    ({"group_by": ("agent", "channel"), "granularity": "month"}, "month_agent_channel"),
    ({"granularity": "total"}, "month"),
    ({"granularity": "hour", "end": "2026-03-02"}, "hour"),
    ({"granularity": "hour", "end": "2026-03-02", "channels": ("chat",)}, "quarter"),
    ({"zone": "UTC"}, "hour"),
    ({"zone": "America/New_York"}, "hour"),
    ({"zone": "America/New_York", "group_by": ("channel",)}, "quarter"),
    ({"zone": "Asia/Kolkata"}, "hour_30"),  # local midnights at 18:30 UTC
    ({"zone": "Asia/Kolkata", "granularity": "hour", "end": "2026-03-02"}, "hour_30"),
    ({"zone": "Asia/Kolkata", "group_by": ("channel",)}, "quarter"),
    ({"zone": "Asia/Kathmandu"}, "quarter"),  # +05:45
    ({"zone": "UTC", "group_by": ("agent",)}, "quarter"),
    ({"granularity": "total", "start": "2026-03-01T10:15:00+07:00"}, "quarter"),
    ({"granularity": "total", "start": "2026-03-01T10:00:00+07:00"}, "hour"),
    # From 03:30 to 17:00 UTC: neither the hours nor the hours from half past fit both ends.
    ({"granularity": "total", "start": "2026-03-01T10:30:00+07:00"}, "quarter"),
    ({"granularity": "total", "start": "2026-03-01T10:30:00+07:00", "end": "2026-03-01T22:30:00+07:00"},
     "hour_30"),
    # Bangkok shares Ho Chi Minh City's midnights: the local-day cubes fit.
    ({"zone": "Asia/Bangkok"}, "day"),
    ({"zone": "Asia/Bangkok", "channels": ("chat",)}, "day_channel"),
    ({"group_by": ("topic",)}, "day_topic"),
    ({"group_by": ("customer_region",)}, "day_region_segment"),
    ({"customer_regions": ("north",), "granularity": "month"}, "month_region_segment"),
    ({"customer_regions": ("north",), "granularity": "week"}, "day_region_segment"),
    ({"customer_regions": ("north",), "group_by": ("channel",)}, "quarter"),
    ({"topics": ("card",), "group_by": ("channel",)}, "quarter"),
    # A partial range: its clipped ends must be bucket starts.
    ({"start": "2026-03-01T10:00:00+07:00", "end": "2026-03-03"}, "hour"),
    ({"start": "2026-03-01T10:30:00+07:00", "end": "2026-03-03"}, "quarter"),
    ({"start": "2026-03-01T10:45:00+07:00", "end": "2026-03-03"}, "quarter"),
    # Weekday × hour heatmaps: every bucket inside one local day and hour of the query zone.
    ({"group_by": ("weekday",)}, "day"),
    ({"group_by": ("weekday", "hour_of_day")}, "hour"),
    ({"group_by": ("hour_of_day", "agent")}, "quarter"),
    ({"zone": "Asia/Kolkata", "group_by": ("hour_of_day",)}, "hour_30"),
    ({"zone": "UTC", "group_by": ("weekday",)}, "hour"),
])
def test_cheapest_fitting_cube(department, kwargs, cube):
    assert _plan(department, **kwargs) == cube


@pytest.mark.parametrize(("kwargs", "cube"), [
    ({}, "day"),
    ({"group_by": ("check",)}, "day_check"),
    ({"checks": ("bank-api",), "granularity": "week", "start": "2026-03-02", "end": "2026-03-30"}, "day_check"),
    ({"group_by": ("check",), "zone": "UTC"}, "quarter"),
    ({"checks": ("bank-api",), "granularity": "hour", "end": "2026-03-02"}, "quarter"),
])
def test_system_checks_by_check_read_the_day_check_cube_or_the_exact_layer(department, kwargs, cube):
    tz = ZoneInfo(kwargs.pop("zone", "Asia/Ho_Chi_Minh"))
    start = datetime.fromisoformat(kwargs.pop("start", "2026-03-01")).replace(tzinfo=tz).astimezone(UTC)
    end = datetime.fromisoformat(kwargs.pop("end", "2026-04-01")).replace(tzinfo=tz).astimezone(UTC)
    query = KpiQuery(kpis=(KPIS["system_check_interval"],), scopes=(DepartmentScope(department),), start=start,
                     end=end, zone=str(tz), **{"granularity": "day", **kwargs})
    assert query_plan(query=query)[("system_check", department.slug)] == cube


@pytest.mark.parametrize(("kwargs", "cube", "first_contact_cube"), [
    ({}, "day", "day"),
    ({"group_by": ("channel",)}, "day_channel", "day"),
    ({"group_by": ("customer_region",), "agents": ("a-1",)}, "quarter", "day"),
    ({"agent_scope": "a-1"}, "day_agent", "day"),
    ({"group_by": ("topic",)}, "quarter", "day"),  # the sets keep no day_topic
    ({"zone": "UTC"}, "hour", "hour"),
    ({"zone": "UTC", "group_by": ("channel",)}, "quarter", "hour"),  # the raw records
    ({"zone": "Asia/Kolkata"}, "quarter", "quarter"),  # no hour_30 sets
])
def test_distinct_sets_read_the_cheapest_cube_they_keep(department, kwargs, cube, first_contact_cube):
    """The set tables keep fewer cubes; the first contacts are read department-wide (no dimension)."""
    from metrics.models import MEASURE_TABLES
    from metrics.periods import boundaries_get
    from metrics.planner import scope_cube_choose

    zone = kwargs.pop("zone", "Asia/Ho_Chi_Minh")
    agent_scope = kwargs.pop("agent_scope", None)
    tz = ZoneInfo(zone)
    start, end = datetime(2026, 3, 1, tzinfo=tz).astimezone(UTC), datetime(2026, 4, 1, tzinfo=tz).astimezone(UTC)
    query = KpiQuery(kpis=(KPIS["new_customers"],), scopes=(DepartmentScope(department, agent_scope),), start=start,
                     end=end, zone=zone, **kwargs)
    boundaries = boundaries_get(start=start, end=end, zone=tz, granularity="day")
    sets, firsts = MEASURE_TABLES["customers"], MEASURE_TABLES["first_contact_customers"]
    chosen = scope_cube_choose(query=query, scope=query.scopes[0], record_type="interaction", boundaries=boundaries,
                               granularity="day",
                               kept=sets.cubes)
    wide = scope_cube_choose(query=query.department_wide(), scope=DepartmentScope(department),
                             record_type="interaction", boundaries=boundaries,
                             granularity="day", kept=firsts.cubes)
    assert (chosen.key, wide.key) == (cube, first_contact_cube)


@pytest.mark.parametrize(("kwargs", "cube"), [
    ({"granularity": "month", "group_by": ("agent", "channel")}, "month_agent_channel"),
    ({"granularity": "month", "group_by": ("agent",)}, "month_agent"),
    ({"group_by": ("agent", "channel")}, "quarter"),  # by day: the raw records
    ({"zone": "UTC"}, "quarter"),  # no hour sketches
])
def test_sketches_read_the_cheapest_cube_they_keep(department, kwargs, cube):
    """The sketch table keeps the local-day and local-month cubes (month × agent × channel too), no hours."""
    from metrics.models import MEASURE_TABLES
    from metrics.periods import boundaries_get
    from metrics.planner import scope_cube_choose

    zone = kwargs.pop("zone", "Asia/Ho_Chi_Minh")
    granularity = kwargs.pop("granularity", "day")
    tz = ZoneInfo(zone)
    start, end = datetime(2026, 1, 1, tzinfo=tz).astimezone(UTC), datetime(2026, 4, 1, tzinfo=tz).astimezone(UTC)
    query = KpiQuery(kpis=(KPIS["first_response_time_p90"],), scopes=(DepartmentScope(department),), start=start,
                     end=end, zone=zone, granularity=granularity, **kwargs)
    boundaries = boundaries_get(start=start, end=end, zone=tz, granularity=granularity)
    chosen = scope_cube_choose(query=query, scope=query.scopes[0], record_type="interaction", boundaries=boundaries,
                               granularity=granularity, kept=MEASURE_TABLES["first_response_seconds_sketch"].cubes)
    assert chosen.key == cube


@pytest.mark.parametrize(("record_type", "copies"), [
    ("cashout", {"day_agent", "month_agent_channel", "month_agent", "day_topic"}),
    ("agent_event", {"day_channel", "month_channel", "month_agent_channel"}),
    ("customer", {"day_agent", "day_channel", "month_agent"}),
])
def test_a_record_type_keeps_no_cube_copying_another(record_type, copies):
    """A cube keeping a dimension the type lacks would hold '' there: the rows of the cube without it."""
    from metrics.planner import cubes_kept

    kept = {c.key for c in cubes_kept(record_type)}
    assert not kept & copies
    assert {"day", "hour", "quarter"} <= kept


def test_a_grouping_by_a_dimension_the_type_lacks_reads_the_cube_without_it(department):
    """Cashouts have no agent: by agent they are one group (null), read from the day cube."""
    tz = ZoneInfo("Asia/Ho_Chi_Minh")
    start, end = datetime(2026, 3, 1, tzinfo=tz).astimezone(UTC), datetime(2026, 4, 1, tzinfo=tz).astimezone(UTC)
    query = KpiQuery(kpis=(KPIS["cashout_requests"],), scopes=(DepartmentScope(department),), start=start, end=end,
                     zone="Asia/Ho_Chi_Minh", group_by=("agent", "channel"))
    assert query_plan(query=query)[("cashout", department.slug)] == "day_channel"


def test_only_a_record_type_that_holds_state_keeps_the_hour_agent_cubes():
    from metrics.planner import cubes_kept

    holding = {"hour_agent", "hour_30_agent", "quarter_department"}
    assert holding <= {c.key for c in cubes_kept("agent_event")}
    for record_type in ("interaction", "survey", "cashout", "system_check", "customer"):
        assert not holding & {c.key for c in cubes_kept(record_type)}


@pytest.mark.parametrize(("zone", "kwargs", "agent_event_cube", "interaction_cube"), [
    # By agent in another whole-hour zone, or by agent × hour: the hour × agent cube (interactions: the raw records).
    ("UTC", {"group_by": ("agent",)}, "hour_agent", "quarter"),
    ("Asia/Ho_Chi_Minh", {"granularity": "hour", "group_by": ("agent",)}, "hour_agent", "quarter"),
    ("Asia/Kolkata", {"group_by": ("agent",)}, "hour_30_agent", "quarter"),
    # Without an agent the hour cubes fit first; in a 45-minute zone the quarter-hour × department cube, by
    # agent there only the exact layer (the raw events).
    ("UTC", {}, "hour", "hour"),
    ("Asia/Kathmandu", {}, "quarter_department", "quarter"),
    ("Asia/Kathmandu", {"group_by": ("agent",)}, "quarter", "quarter"),
])
def test_time_in_state_reads_the_hour_agent_cubes_where_they_fit(department, zone, kwargs, agent_event_cube,
                                                                  interaction_cube):
    tz = ZoneInfo(zone)
    start, end = datetime(2026, 3, 1, tzinfo=tz).astimezone(UTC), datetime(2026, 3, 8, tzinfo=tz).astimezone(UTC)
    # contacts per online hour: interactions and online time (agent events) in one KPI
    query = KpiQuery(kpis=(KPIS["contacts_per_online_hour"],), scopes=(DepartmentScope(department),), start=start,
                     end=end, zone=zone, **{"granularity": "day", **kwargs})
    plan = query_plan(query=query)
    assert (plan[("agent_event", department.slug)], plan[("interaction", department.slug)]) == (
        agent_event_cube, interaction_cube)
