"""Time in state (agent presence KPIs) against a plain-Python reference built from the final event set.

Events go through the real validation and upsert (marks included); the clock is controlled by
patching `django.utils.timezone.now`, so the "now" tail, its growth as time passes (the sweep's
`open_states_mark`) and the presence timeout are tested at known instants.
"""

from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingestion.fields import AGENT_EVENT
from ingestion.models import AgentEvent, Interaction
from ingestion.services import record_batch_upsert, record_batch_validate
from metrics.catalog import KPIS
from metrics.models import BUCKET_MODELS
from metrics.selectors import DepartmentScope, KpiQuery, kpi_series_get, query_plan
from metrics.services import OPEN_STATES_MARKED, open_states_mark
from tests.factories import DepartmentFactory
from tests.metrics.records import interaction_build, recompute_all, records_store
from tests.metrics.reference import next_boundary, period_start, period_starts

pytestmark = pytest.mark.django_db

PRESENCE_KPIS = ("agent_online_time", "agent_available_time", "agent_busy_time", "agent_away_time", "occupancy",
                 "average_agents_online", "talk_time", "contacts_per_online_hour")
ONLINE = ("available", "busy", "away")
ZONES = ["UTC", "Asia/Ho_Chi_Minh", "Asia/Kolkata", "America/New_York", "Asia/Kathmandu"]
# Two days across New York's fall-back (2026-11-01 06:00 UTC).
WINDOW = datetime(2026, 10, 31, 12, tzinfo=UTC)
WINDOW_MINUTES = 2 * 24 * 60
TIMEOUT = 3 * 3600
AGENTS = ["a-1", "a-2", "a-3"]


class Clock:
    def __init__(self, monkeypatch):
        self.now = WINDOW
        monkeypatch.setattr(timezone, "now", lambda: self.now)


@pytest.fixture
def clock(monkeypatch, settings):
    settings.CSKPI_PRESENCE_TIMEOUT_SECONDS = TIMEOUT
    cache.delete(OPEN_STATES_MARKED)
    return Clock(monkeypatch)


def _sweep():
    """What the beat's sweep does: mark the quarters time moved through, recompute."""
    open_states_mark()
    recompute_all()


def _ingest(items: list[dict]) -> None:
    rows = record_batch_validate(spec=AGENT_EVENT, items=items)
    record_batch_upsert(spec=AGENT_EVENT, rows=rows)
    recompute_all()


# --- the reference ------------------------------------------------------------------------------
def reference_intervals(now: datetime) -> list[tuple]:
    """(department id, agent, status, start, end) from the stored events: each holds until the agent's
    next event in its department, at most TIMEOUT, and at most until now."""
    by_agent = defaultdict(list)
    for e in AgentEvent.objects.all():
        by_agent[(e.department_id, e.agent)].append((e.at, e.source, e.external_id, e.status))
    out = []
    for (department_id, agent), events in by_agent.items():
        events.sort()
        for i, (at, _, _, status) in enumerate(events):
            end = min(at + timedelta(seconds=TIMEOUT), now)
            if i + 1 < len(events):
                end = min(end, events[i + 1][0])
            if end > at:
                out.append((department_id, agent, status, at, end))
    return out


def _pieces(start: datetime, end: datetime):
    """[start, end) cut at every UTC quarter-hour (each lies inside one local hour of every zone)."""
    while start < end:
        following = datetime.fromtimestamp((int(start.timestamp()) // 900 + 1) * 900, tz=UTC)
        yield start, min(end, following)
        start = following


def reference(*, kpi, now, departments, start, end, zone, granularity, group_by, agents, agent_scope):
    """{group: (value, sample, {period start: value})} of one presence KPI, from the raw rows."""
    slugs = {d.id: d.slug for d in departments}
    # group -> period -> {"available": s, "busy": s, "away": s, "resolved": n, "handle": s, "handles": n}
    acc = defaultdict(lambda: defaultdict(lambda: defaultdict(float)))

    def key_of(department_id, agent, local):
        values = {"agent": agent, "department": slugs[department_id], "channel": None, "topic": None,
                  "weekday": local.isoweekday(), "hour_of_day": local.hour}
        return tuple(values[g] for g in group_by)

    def wanted(department_id, agent):
        if department_id not in slugs:
            return False
        if agent_scope and agent != agent_scope:
            return False
        return not agents or agent in agents

    for department_id, agent, status, a, b in reference_intervals(now):
        if not wanted(department_id, agent):
            continue
        for p, q in _pieces(max(a, start), min(b, end)):
            local = p.astimezone(zone)
            acc[key_of(department_id, agent, local)][max(period_start(p, zone, granularity, start), start)][status] \
                += (q - p).total_seconds()
    for r in Interaction.objects.all():
        if not (start <= r.created_at < end) or not wanted(r.department_id, r.agent):
            continue
        bucket = acc[key_of(r.department_id, r.agent, r.created_at.astimezone(zone))][
            max(period_start(r.created_at, zone, granularity, start), start)]
        bucket["resolved"] += r.status == "resolved"
        if r.handle_seconds is not None:
            bucket["handle"] += r.handle_seconds
            bucket["handles"] += 1
    starts = period_starts(start, end, zone, granularity)
    ends = starts[1:] + [end]

    def value(s, span):
        online = s["available"] + s["busy"] + s["away"]
        return {
            "agent_online_time": (online, int(online)),
            "agent_available_time": (s["available"], int(s["available"])),
            "agent_busy_time": (s["busy"], int(s["busy"])),
            "agent_away_time": (s["away"], int(s["away"])),
            "occupancy": ((s["busy"] / (s["busy"] + s["available"]) * 100, int(s["busy"] + s["available"]))
                          if s["busy"] + s["available"] > 0 else (None, 0)),
            "average_agents_online": (online / span, int(online)) if span > 0 else (None, 0),
            "talk_time": (s["handle"], int(s["handles"])),
            "contacts_per_online_hour": (s["resolved"] / online * 3600, int(s["resolved"])) if online > 0
            else (None, 0),
        }[kpi]

    def elapsed(a, b):
        return max((min(b, now) - a).total_seconds(), 0.0)

    out = {}
    for key, periods in acc.items():
        total = defaultdict(float)
        for states in periods.values():
            for k, v in states.items():
                total[k] += v
        out[key] = (value(total, elapsed(start, end)),
                    {p: value(periods.get(p, defaultdict(float)), elapsed(p, e)) for p, e in zip(starts, ends, strict=True)})
    return out


def _close(actual, expected):
    if expected is None:
        assert actual is None
    else:
        assert actual == pytest.approx(expected, rel=1e-9, abs=1e-6)


def _check(query, expected, granularity):
    for result in kpi_series_get(query=query)["results"]:
        key = tuple(result["group"][g] for g in query.group_by)
        kpi = result["kpi"]
        if key not in expected[kpi]:  # the engine lists a group the reference never saw: nothing in it
            assert result["value"] in (None, 0, 0.0), (kpi, key, result)
            continue
        (value, sample), periods = expected[kpi][key]
        _close(result["value"], value)
        assert abs(result["sample_size"] - sample) <= 1, (kpi, key, result["sample_size"], sample)
        if granularity != "total":
            got = {datetime.fromisoformat(p["start"]).astimezone(UTC): p["value"] for p in result["series"]}
            assert set(got) == set(periods), (kpi, key)
            for p, (v, _) in periods.items():
                _close(got[p], v)
    for kpi, groups in expected.items():
        listed = {tuple(r["group"][g] for g in query.group_by) for r in kpi_series_get(query=query)["results"]
                  if r["kpi"] == kpi}
        for key, ((value, _), _) in groups.items():
            assert key in listed or value in (None, 0, 0.0), (kpi, key, value)


# --- the property test --------------------------------------------------------------------------
# A few shared minutes and seconds: events at the same instant (the tie-break) come up often.
minutes = st.one_of(st.integers(0, WINDOW_MINUTES - 1), st.sampled_from([600, 610, 1500]))
event = st.tuples(st.sampled_from(AGENTS), st.sampled_from(["available", "busy", "away", "offline"]), minutes,
                  st.sampled_from([0, 30, 59]), st.integers(0, 1))
# Operations after the first batch: a new event, a changed one (status and/or a moved `at`), a duplicate
# re-sent, a stale version (older updated_at: ignored).
operation = st.one_of(
    st.tuples(st.just("new"), event),
    st.tuples(st.just("move"), st.integers(0, 999), minutes, st.sampled_from(["available", "busy", "away", None])),
    st.tuples(st.just("duplicate"), st.integers(0, 999)),
    st.tuples(st.just("stale"), st.integers(0, 999), minutes),
)


def _at(minute: int, second: int) -> datetime:
    return WINDOW + timedelta(minutes=minute, seconds=second)


@st.composite
def queries(draw):
    granularity = draw(st.sampled_from(["hour", "day", "week", "month", "total"]))
    zone = ZoneInfo(draw(st.sampled_from(ZONES)))
    a = _at(draw(st.integers(-240, WINDOW_MINUTES)), 0)
    start = period_start(a, zone, granularity if granularity != "total" else "hour", a)
    end = start
    for _ in range(draw(st.integers(1, {"hour": 30, "day": 3, "week": 1, "month": 1, "total": 300}[granularity]))):
        end = next_boundary(end, zone, granularity)
    if draw(st.booleans()):  # a partial range: clipped first and last periods
        start += timedelta(minutes=15 * draw(st.integers(0, 100)))
        end = max(end - timedelta(minutes=15 * draw(st.integers(0, 100))), start + timedelta(minutes=15))
    return {
        "granularity": granularity, "zone": zone, "start": start, "end": end,
        "group_by": tuple(draw(st.lists(st.sampled_from(["agent", "department", "weekday", "hour_of_day"]),
                                        unique=True, max_size=2))),
        "agents": tuple(draw(st.one_of(st.just([]), st.lists(st.sampled_from(AGENTS), min_size=1, max_size=2,
                                                              unique=True)))),
        "departments": draw(st.sampled_from([(0,), (1,), (0, 1)])),
        "agent_scope": draw(st.sampled_from([None, "a-1"])),
        "kpis": tuple(draw(st.lists(st.sampled_from(PRESENCE_KPIS), min_size=1, max_size=4, unique=True))),
    }


@pytest.fixture
def zones_departments(db):
    return [DepartmentFactory(slug="p-hcm", timezone="Asia/Ho_Chi_Minh"),
            DepartmentFactory(slug="p-kol", timezone="Asia/Kolkata")]


def _reset():
    AgentEvent.objects.all().delete()
    Interaction.objects.all().delete()
    for models in BUCKET_MODELS.values():
        for model in models:
            model.objects.all().delete()
    cache.delete(OPEN_STATES_MARKED)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(first=st.lists(event, min_size=1, max_size=12), later=st.lists(operation, max_size=10),
       seed=st.randoms(use_true_random=False), ingest_minute=st.integers(0, WINDOW_MINUTES + 300),
       wait_minutes=st.integers(0, 600), query_list=st.lists(queries(), min_size=2, max_size=4),
       interactions=st.lists(st.tuples(st.sampled_from(AGENTS), minutes, st.sampled_from(["resolved", "open"]),
                                       st.integers(0, 1)), max_size=6))
def test_time_in_state_equals_plain_python_intervals(zones_departments, clock, first, later, seed, ingest_minute,
                                                     wait_minutes, query_list, interactions):
    _reset()
    departments = zones_departments
    clock.now = _at(ingest_minute, 7)
    _sweep()
    items = [{"external_id": f"e-{i}", "source": "pbx", "department": departments[d].slug, "agent": agent,
              "status": status, "at": _at(m, s).isoformat(), "updated_at": "2026-01-01T00:00:00+00:00"}
             for i, (agent, status, m, s, d) in enumerate(first)]
    seed.shuffle(items)  # out of order: the intervals depend on the final set only
    _ingest(items[: len(items) // 2])
    _ingest(items[len(items) // 2:])
    version = 1
    for op in later:
        version += 1
        stamp = f"2026-01-01T00:{version // 60:02d}:{version % 60:02d}+00:00"
        if op[0] == "new":
            agent, status, m, s, d = op[1]
            item = {"external_id": f"n-{version}", "source": "pbx", "department": departments[d].slug,
                    "agent": agent, "status": status, "at": _at(m, s).isoformat(), "updated_at": stamp}
            items.append(item)
        else:
            base = items[op[1] % len(items)]
            if op[0] == "move":
                item = base | {"at": _at(op[2], 30).isoformat(), "updated_at": stamp}
                if op[3] is not None:
                    item["status"] = op[3]
                items[op[1] % len(items)] = item
            elif op[0] == "duplicate":
                item = dict(base)
            else:  # stale: an older version, ignored
                item = base | {"at": _at(op[2], 0).isoformat(), "updated_at": "2025-01-01T00:00:00+00:00"}
        _ingest([item])
    if interactions:
        records_store([interaction_build(department=departments[d], created_at=_at(m, 0), agent=agent, status=status,
                                         resolved_after=60 if status == "resolved" else None)
                       for agent, m, status, d in interactions])
    clock.now += timedelta(minutes=wait_minutes)  # time passes: open states grow, old ones time out
    _sweep()
    for q in query_list:
        scopes = tuple(DepartmentScope(departments[i], agent=q["agent_scope"]) for i in q["departments"])
        query = KpiQuery(kpis=tuple(KPIS[k] for k in q["kpis"]), scopes=scopes, start=q["start"], end=q["end"],
                         zone=q["zone"].key, granularity=q["granularity"], group_by=q["group_by"], agents=q["agents"])
        expected = {k: reference(kpi=k, now=clock.now, departments=[departments[i] for i in q["departments"]],
                                 start=q["start"], end=q["end"], zone=q["zone"], granularity=q["granularity"],
                                 group_by=q["group_by"], agents=q["agents"], agent_scope=q["agent_scope"])
                    for k in q["kpis"]}
        _check(query, expected, q["granularity"])


# --- by hand --------------------------------------------------------------------------------------
@pytest.fixture
def hcm(db):
    return DepartmentFactory(slug="cskh-hn", timezone="Asia/Ho_Chi_Minh")


def _event(external_id, at, status, agent="a-1", department="cskh-hn"):
    return {"external_id": external_id, "department": department, "agent": agent, "status": status,
            "at": at.isoformat()}


def _series(department, kpi, start, end, granularity="hour", zone="Asia/Ho_Chi_Minh", group_by=()):
    query = KpiQuery(kpis=(KPIS[kpi],), scopes=(DepartmentScope(department),), start=start, end=end, zone=zone,
                     granularity=granularity, group_by=group_by)
    return kpi_series_get(query=query)["results"]


def test_an_interval_is_cut_exactly_at_period_edges(hcm, clock):
    """08:50-10:10 gives 10 minutes to the 08:00 hour, 60 to 09:00, 10 to 10:00 (the issue's example)."""
    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    clock.now = datetime(2026, 3, 3, tzinfo=zone)
    day = datetime(2026, 3, 2, tzinfo=zone)
    _ingest([_event("x1", day + timedelta(hours=8, minutes=50), "busy"),
             _event("x2", day + timedelta(hours=10, minutes=10), "offline")])
    [result] = _series(hcm, "agent_busy_time", day + timedelta(hours=8), day + timedelta(hours=11))
    assert [p["value"] for p in result["series"]] == [600.0, 3600.0, 600.0]
    assert result["value"] == 4800.0
    # Asia/Kolkata is 1h30 behind: the same interval is 07:20-08:40 there.
    kolkata = ZoneInfo("Asia/Kolkata")
    start = datetime(2026, 3, 2, 7, tzinfo=kolkata)
    [result] = _series(hcm, "agent_busy_time", start, start + timedelta(hours=2), zone="Asia/Kolkata")
    assert [p["value"] for p in result["series"]] == [2400.0, 2400.0]


def test_a_state_with_no_time_in_a_bucket_is_stored_as_null_and_read_as_zero(hcm, clock):
    """Only busy time: every other state's column holds NULL, never a zero (metrics 0024), and reads 0.0."""
    [presence] = BUCKET_MODELS["agent_event"]
    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    clock.now = datetime(2026, 3, 3, tzinfo=zone)
    day = datetime(2026, 3, 2, tzinfo=zone)
    _ingest([_event("z1", day + timedelta(hours=8, minutes=50), "busy"),
             _event("z2", day + timedelta(hours=10, minutes=10), "offline")])
    rows = list(presence.objects.values("busy_seconds", "available_seconds", "away_seconds"))
    assert rows and all(r["busy_seconds"] > 0 and r["available_seconds"] is None and r["away_seconds"] is None
                        for r in rows)
    [result] = _series(hcm, "agent_available_time", day + timedelta(hours=8), day + timedelta(hours=11))
    assert result["value"] == 0.0 and [p["value"] for p in result["series"]] == [0.0, 0.0, 0.0]


def test_no_quarter_rows_are_stored_and_a_query_no_cube_fits_cuts_the_raw_events(hcm, clock):
    """The raw events are the exact layer (metrics 0022): the recompute stores no quarter-hour rows, and
    the same 08:50-10:10 interval is read by agent × hour (hour × agent), by hour in a 45-minute zone (the
    quarter-hour × department cube) and by agent there (cut from the events)."""
    [presence] = BUCKET_MODELS["agent_event"]
    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    clock.now = datetime(2026, 3, 3, tzinfo=zone)
    day = datetime(2026, 3, 2, tzinfo=zone)
    _ingest([_event("q1", day + timedelta(hours=8, minutes=50), "busy"),
             _event("q2", day + timedelta(hours=10, minutes=10), "offline"),
             _event("q3", day + timedelta(hours=9, minutes=5), "busy", agent="a-2"),
             _event("q4", day + timedelta(hours=9, minutes=20), "offline", agent="a-2")])
    assert presence.objects.exists()
    assert not presence.objects.filter(cube="quarter").exists()
    by_agent = {r["group"]["agent"]: [p["value"] for p in r["series"]] for r in _series(
        hcm, "agent_busy_time", day + timedelta(hours=8), day + timedelta(hours=11), group_by=("agent",))}
    assert by_agent == {"a-1": [600.0, 3600.0, 600.0], "a-2": [0.0, 900.0, 0.0]}
    # Asia/Kathmandu is UTC+5:45, 1h15 behind: 07:35-08:55 there, and a-2's 07:50-08:05.
    kathmandu = ZoneInfo("Asia/Kathmandu")
    start = datetime(2026, 3, 2, 7, tzinfo=kathmandu)
    [result] = _series(hcm, "agent_busy_time", start, start + timedelta(hours=2), zone="Asia/Kathmandu")
    assert [p["value"] for p in result["series"]] == [1500.0 + 600.0, 3300.0 + 300.0]
    by_agent = {r["group"]["agent"]: [p["value"] for p in r["series"]] for r in _series(
        hcm, "agent_busy_time", start, start + timedelta(hours=2), zone="Asia/Kathmandu", group_by=("agent",))}
    assert by_agent == {"a-1": [1500.0, 3300.0], "a-2": [600.0, 300.0]}


def test_a_filter_on_a_dimension_status_events_lack_keeps_no_time_on_every_path(hcm, clock):
    """Status events have no channel: filtered by one, no time is kept, whether a cube serves the query
    (the department's zone) or the raw events are cut (by agent in a 45-minute zone), where the filter
    made the events' query empty and the streamed read raised EmptyResultSet (a 500)."""
    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    clock.now = datetime(2026, 3, 3, tzinfo=zone)
    day = datetime(2026, 3, 2, tzinfo=zone)
    _ingest([_event("c1", day + timedelta(hours=8, minutes=50), "busy"),
             _event("c2", day + timedelta(hours=10, minutes=10), "offline")])
    for query_zone in ("Asia/Ho_Chi_Minh", "Asia/Kathmandu"):
        start = datetime(2026, 3, 2, tzinfo=ZoneInfo(query_zone))
        query = KpiQuery(kpis=(KPIS["agent_busy_time"],), scopes=(DepartmentScope(hcm),), start=start,
                         end=start + timedelta(days=1), zone=query_zone, granularity="total", group_by=("agent",))
        plan = query_plan(query=query)
        [unfiltered] = kpi_series_get(query=query)["results"]
        assert unfiltered["value"] == 4800.0, plan
        filtered = kpi_series_get(query=replace(query, channels=("phone",)))["results"]
        assert all(not result["value"] for result in filtered), (plan, filtered)
    assert set(plan.values()) == {"quarter"}  # by agent in Asia/Kathmandu: the raw events


def test_the_timeout_ends_a_state_between_events_and_after_the_last(hcm, clock, settings):
    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    day = datetime(2026, 3, 2, tzinfo=zone)
    clock.now = day + timedelta(days=2)
    # available at 00:00, nothing for 10 h (timeout 3 h), busy at 10:00, nothing after it.
    _ingest([_event("t1", day, "available"), _event("t2", day + timedelta(hours=10), "busy")])
    [online] = _series(hcm, "agent_online_time", day, day + timedelta(days=1), granularity="total")
    assert online["value"] == 2 * TIMEOUT
    [available] = _series(hcm, "agent_available_time", day, day + timedelta(days=1), granularity="total")
    assert available["value"] == TIMEOUT


def test_an_open_state_grows_as_time_passes(hcm, clock):
    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    day = datetime(2026, 3, 2, tzinfo=zone)
    clock.now = day + timedelta(hours=9, minutes=30)
    _sweep()
    _ingest([_event("g1", day + timedelta(hours=9), "available")])
    [result] = _series(hcm, "agent_online_time", day, day + timedelta(days=1), granularity="day")
    assert result["value"] == 1800.0
    [average] = _series(hcm, "average_agents_online", day, day + timedelta(days=1), granularity="day")
    assert average["value"] == pytest.approx(1800 / (9.5 * 3600))  # over the part of the day elapsed
    clock.now += timedelta(minutes=50)  # crosses 10:00: the finished quarter and the current one are marked
    _sweep()
    [result] = _series(hcm, "agent_online_time", day, day + timedelta(days=1), granularity="day")
    assert result["value"] == 80 * 60.0
    clock.now += timedelta(hours=5)  # past the timeout: offline since 12:00
    _sweep()
    [result] = _series(hcm, "agent_online_time", day, day + timedelta(days=1), granularity="day")
    assert result["value"] == float(TIMEOUT)


def test_a_moved_event_changes_its_predecessor(hcm, clock):
    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    day = datetime(2026, 3, 2, tzinfo=zone)
    clock.now = day + timedelta(days=1)
    _ingest([_event("m1", day + timedelta(hours=8), "busy"), _event("m2", day + timedelta(hours=9), "offline")])
    [busy] = _series(hcm, "agent_busy_time", day, day + timedelta(days=1), granularity="total")
    assert busy["value"] == 3600.0
    _ingest([_event("m2", day + timedelta(hours=8, minutes=30), "offline")])  # the offline event moves earlier
    [busy] = _series(hcm, "agent_busy_time", day, day + timedelta(days=1), granularity="total")
    assert busy["value"] == 1800.0
    _ingest([_event("m2", day + timedelta(hours=10), "offline")])  # and later
    [busy] = _series(hcm, "agent_busy_time", day, day + timedelta(days=1), granularity="total")
    assert busy["value"] == 7200.0


def test_rebuild_and_zone_change_keep_states_that_run_past_their_day(hcm, clock):
    """A state that starts at 23:00 runs into the next local day (timeout 3 h): the rebuild covers the
    days the states reach, and a zone change re-cuts them."""
    from cskpi.services import department_upsert
    from metrics.services import department_cubes_rebuild

    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    day = datetime(2026, 3, 2, tzinfo=zone)
    clock.now = day + timedelta(days=3)
    _ingest([_event("r1", day + timedelta(hours=23), "busy")])
    before = _series(hcm, "agent_busy_time", day, day + timedelta(days=2), granularity="day")[0]["series"]
    assert [p["value"] for p in before] == [3600.0, 7200.0]
    for models in BUCKET_MODELS.values():
        for model in models:
            model.objects.all().delete()
    department_cubes_rebuild(department=hcm)
    after = _series(hcm, "agent_busy_time", day, day + timedelta(days=2), granularity="day")[0]["series"]
    assert after == before
    department_upsert(slug=hcm.slug, name=hcm.name, timezone="Asia/Kolkata")  # 1 h 30 min behind
    recompute_all()
    hcm.refresh_from_db()
    kolkata = ZoneInfo("Asia/Kolkata")
    start = datetime(2026, 3, 2, tzinfo=kolkata)
    series = _series(hcm, "agent_busy_time", start, start + timedelta(days=2), granularity="day",
                     zone="Asia/Kolkata")[0]["series"]
    assert [p["value"] for p in series] == [9000.0, 1800.0]  # 21:30-00:30 in Kolkata, cut at its midnight
