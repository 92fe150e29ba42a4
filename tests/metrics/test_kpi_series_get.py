"""kpi_series_get against an independent plain-Python recomputation from the raw records."""

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingestion.models import Cashout, Interaction, RecordChange, SurveyResponse
from metrics.catalog import KPIS
from metrics.models import BUCKET_MODELS, CustomerFirstContact, InteractionBucket
from metrics.selectors import DepartmentScope, KpiQuery, kpi_series_get, query_plan
from tests.factories import DepartmentFactory
from tests.metrics.records import (
    ANCHOR,
    cashout_build,
    interaction_build,
    recompute_all,
    records_store,
    survey_build,
)
from tests.metrics.reference import (
    empty_value,
    is_percentile,
    next_boundary,
    period_start,
    period_starts,
    reference_kpi,
)

pytestmark = pytest.mark.django_db

# KPIs of records placed by an anchor; time in state has its own property test (test_time_in_state.py).
ANCHORED_KPIS = [k for k, kpi in KPIS.items() if "agent_event" not in kpi.record_types and not kpi.stock]
ZONES = ["UTC", "Asia/Ho_Chi_Minh", "Asia/Kolkata", "America/New_York"]
# Two windows, each across a New York DST change (2026-03-08 spring forward, 2026-11-01 fall back).
WINDOWS = [datetime(2026, 3, 6, tzinfo=UTC), datetime(2026, 10, 30, tzinfo=UTC)]
WINDOW_MINUTES = 4 * 24 * 60
AGENTS = ["a-1", "a-2", "a-3", None]
CHANNELS = ["phone", "chat", "email"]
# The KPIs of records placed at one instant; the registry's levels have their own property test
# (tests/metrics/test_customer_registry_kpis.py).


def _assert_close(actual, expected, kpi: str = ""):
    if is_percentile(kpi) and expected is not None:
        # The sketch's bound: within max(1 %, 1 s) of the exact nearest-rank value.
        assert actual is not None and abs(actual - expected) <= max(0.01 * abs(expected), 1.0), (actual, expected)
    elif expected is None or isinstance(expected, int) and not isinstance(actual, float):
        assert actual == expected
    else:
        assert actual == pytest.approx(expected, rel=1e-9, abs=1e-9)


def _moment(window: int, minute: int, second: int) -> datetime:
    return WINDOWS[window] + timedelta(minutes=minute, seconds=second)


moments = st.builds(_moment, st.integers(0, 1), st.integers(0, WINDOW_MINUTES - 1), st.integers(0, 59))
# Whole seconds around the linear bins of the quantile sketch, and fractional ones up to ten days (its
# logarithmic bins).
seconds = st.one_of(st.none(), st.integers(0, 7200).map(float),
                    st.floats(0, 864_000, allow_nan=False).map(lambda x: round(x, 3)))

interaction_fields = st.fixed_dictionaries({
    "created_at": moments, "channel": st.sampled_from(CHANNELS), "agent": st.sampled_from(AGENTS),
    "status": st.sampled_from(["open", "pending", "resolved", "abandoned", "missed"]),
    "first_response_after": seconds, "resolved_after": seconds, "wait_seconds": seconds,
    "handle_seconds": seconds, "contact_count": st.integers(1, 5), "self_service": st.booleans(),
    "topic": st.sampled_from(["card", "loan", None]),
    "customer": st.sampled_from(["c-1", "c-2", "c-3", "c-4", None]),
    "customer_region": st.sampled_from(["north", "south", None]),
})
survey_fields = st.one_of(
    st.fixed_dictionaries({"kind": st.just("csat"), "score": st.integers(1, 5).map(float)}),
    st.fixed_dictionaries({"kind": st.just("nps"), "score": st.integers(0, 10).map(float)}),
    st.fixed_dictionaries({"kind": st.just("ces"), "score": st.integers(1, 7).map(float)}),
    st.fixed_dictionaries({"kind": st.just("qa"), "score": st.integers(0, 200).map(lambda x: x / 2)}),
).flatmap(lambda base: st.fixed_dictionaries({
    **{k: st.just(v) for k, v in base.items()}, "submitted_at": moments, "agent": st.sampled_from(AGENTS),
    "channel": st.sampled_from([*CHANNELS, None]),
}))
cashout_fields = st.fixed_dictionaries({
    "requested_at": moments, "channel": st.sampled_from([*CHANNELS, None]),
    "status": st.sampled_from(["pending", "processing", "succeeded", "failed"]),
    "processing_after": seconds, "response_after": seconds,
})
BUILDERS = {"interaction": interaction_build, "survey": survey_build, "cashout": cashout_build}
FIELDS = {"interaction": interaction_fields, "survey": survey_fields, "cashout": cashout_fields}

new_record = st.sampled_from(list(BUILDERS)).flatmap(
    lambda t: st.tuples(st.just("new"), st.just(t), st.integers(0, 1), FIELDS[t])
)
# Change a stored record: a new version (possibly another quarter / department), or a duplicate.
change = st.tuples(st.just("change"), st.integers(0, 10_000), st.integers(0, 1), st.one_of(st.none(), moments))
# An out-of-order (older) version: ingestion keeps the stored row but may still mark its buckets.
stale = st.tuples(st.just("stale"), st.integers(0, 10_000), st.integers(0, 1), moments)
# Each batch is one ingest transaction; some are left for a later recompute (a worker lagging behind).
operations = st.lists(
    st.tuples(st.lists(st.one_of(new_record, new_record, change, stale), min_size=1, max_size=8), st.booleans()),
    min_size=1, max_size=5,
)


@st.composite
def queries(draw):
    granularity = draw(st.sampled_from(["hour", "day", "week", "month", "total"]))
    zone = ZoneInfo(draw(st.sampled_from(ZONES)))
    window = draw(st.integers(0, 1))
    a = _moment(window, draw(st.integers(-600, WINDOW_MINUTES)), 0)
    start = period_start(a, zone, granularity if granularity != "total" else "hour", a)
    if granularity == "total":
        start = datetime.fromtimestamp(int(a.timestamp()) // 900 * 900, tz=UTC)
    end = start
    for _ in range(draw(st.integers(1, {"hour": 60, "day": 5, "week": 2, "month": 1, "total": 400}[granularity]))):
        end = next_boundary(end, zone, granularity)
    if draw(st.booleans()):  # a partial range: ends on any quarter-hour, first and last periods clipped
        start = start + timedelta(minutes=15 * draw(st.integers(0, 200)))
        end = max(end - timedelta(minutes=15 * draw(st.integers(0, 200))), start + timedelta(minutes=15))
    return {
        "granularity": granularity, "zone": zone, "start": start, "end": end,
        "group_by": tuple(draw(st.lists(st.sampled_from(["agent", "channel", "department", "topic", "weekday",
                                                         "hour_of_day", "customer_region"]),
                                        unique=True, max_size=2))),
        "agents": tuple(draw(st.one_of(st.just([]), st.lists(st.sampled_from(["a-1", "a-2"]), min_size=1,
                                                              max_size=2, unique=True)))),
        "channels": tuple(draw(st.one_of(st.just([]), st.lists(st.sampled_from(CHANNELS), min_size=1,
                                                                max_size=2, unique=True)))),
        "topics": tuple(draw(st.one_of(st.just([]), st.just([]), st.lists(st.sampled_from(["card", "loan"]),
                                                                           min_size=1, max_size=1)))),
        "regions": tuple(draw(st.one_of(st.just([]), st.just([]), st.lists(st.sampled_from(["north", "south"]),
                                                                            min_size=1, max_size=1)))),
        "departments": draw(st.sampled_from([(0,), (1,), (0, 1)])),
        "agent_scope": draw(st.sampled_from([None, "a-1"])),
        "compare": draw(st.sampled_from([None, "previous_period", "previous_week", "previous_year"])),
        "kpis": tuple(draw(st.lists(st.sampled_from(ANCHORED_KPIS), min_size=1, max_size=4, unique=True))),
    }


def _apply(batches, departments):
    stored: list = []
    for batch, recompute_now in batches:
        changed, old_places = [], []
        for op in batch:
            if op[0] == "new":
                _, kind, dept, fields = op
                key = {"interaction": "created_at", "survey": "submitted_at", "cashout": "requested_at"}[kind]
                record = BUILDERS[kind](department=departments[dept], **{**fields, key: fields[key]})
                stored.append(record)
                changed.append(record)
            elif stored:
                kind, index, dept, moment = op
                record = stored[index % len(stored)]
                if record.pk is None:
                    continue
                if kind == "stale":  # marks only: the raw rows do not change
                    old_places.append((record, departments[dept].id, moment))
                    continue
                anchor = ANCHOR[type(record)]
                old_places.append((record, record.department_id, getattr(record, anchor)))
                if moment is not None:  # a newer version moved it; None: a duplicate delivery
                    shift = moment - getattr(record, anchor)
                    for name in ("first_response_at", "resolved_at", "completed_at"):  # durations kept
                        if getattr(record, name, None) is not None:
                            setattr(record, name, getattr(record, name) + shift)
                    setattr(record, anchor, moment)
                    record.department = departments[dept]
                changed.append(record)
        records_store(changed, old_places=old_places, then="recompute" if recompute_now else None)
    recompute_all()


def _check(query_args, departments):
    tz = query_args["zone"]
    chosen = [departments[i] for i in query_args["departments"]]
    agent_scope = {d.id: query_args["agent_scope"] for d in chosen[:1]} if query_args["agent_scope"] else {}
    query = KpiQuery(
        kpis=tuple(KPIS[k] for k in query_args["kpis"]),
        scopes=tuple(DepartmentScope(d, agent_scope.get(d.id)) for d in chosen),
        start=query_args["start"], end=query_args["end"], zone=str(tz), granularity=query_args["granularity"],
        group_by=query_args["group_by"], agents=query_args["agents"], channels=query_args["channels"],
        compare=query_args["compare"], topics=query_args["topics"], checks=query_args.get("checks", ()),
        customer_regions=query_args.get("regions", ()),
    )
    response = kpi_series_get(query=query)
    slugs = {d.id: d.slug for d in chosen}
    for kpi in query_args["kpis"]:
        expected = reference_kpi(
            kpi=kpi, departments=slugs, start=query.start, end=query.end, zone=tz,
            granularity=query.granularity, group_by=query.group_by, agents=query.agents, channels=query.channels,
            agent_scope=agent_scope, topics=query.topics, checks=query.checks, regions=query.customer_regions,
        )
        results = [r for r in response["results"] if r["kpi"] == kpi]
        got = {tuple(r["group"][g] for g in query.group_by): r for r in results}
        if query.group_by:
            assert set(got) == set(expected), (kpi, query_args)
        else:
            assert set(got) == {()}
        for key, result in got.items():
            want = expected.get(key)
            value, sample = (want["value"], want["sample_size"]) if want else empty_value(kpi)
            _assert_close(result["value"], value, kpi)
            assert result["sample_size"] == sample
            if query.granularity != "total":
                starts = [datetime.fromisoformat(p["start"]) for p in result["series"]]
                assert starts == period_starts(query.start, query.end, tz, query.granularity)
                periods = want["periods"] if want else {}
                assert set(periods) <= set(starts)
                for point, moment in zip(result["series"], starts, strict=True):
                    p_value, p_sample = periods.get(moment, empty_value(kpi))
                    _assert_close(point["value"], p_value, kpi)
                    assert point["sample_size"] == p_sample
            if query.compare:
                previous = result["previous"]
                p_start, p_end = (datetime.fromisoformat(previous[k]) for k in ("start", "end"))
                prev = reference_kpi(
                    kpi=kpi, departments=slugs, start=p_start, end=p_end, zone=tz, granularity="total",
                    group_by=query.group_by, agents=query.agents, channels=query.channels,
                    agent_scope=agent_scope, topics=query.topics, checks=query.checks,
                    regions=query.customer_regions,
                ).get(key)
                p_value, p_sample = (prev["value"], prev["sample_size"]) if prev else empty_value(kpi)
                _assert_close(previous["value"], p_value, kpi)
                assert previous["sample_size"] == p_sample
                if query.granularity == "total":
                    assert "series" not in previous
                else:  # the previous range's own periods, checked like the current ones
                    p_starts = period_starts(p_start, p_end, tz, query.granularity)
                    assert [datetime.fromisoformat(p["start"]) for p in previous["series"]] == p_starts
                    p_periods = reference_kpi(
                        kpi=kpi, departments=slugs, start=p_start, end=p_end, zone=tz,
                        granularity=query.granularity, group_by=query.group_by, agents=query.agents,
                        channels=query.channels, agent_scope=agent_scope, topics=query.topics, checks=query.checks,
                        regions=query.customer_regions,
                    ).get(key, {"periods": {}})["periods"]
                    for point, moment in zip(previous["series"], p_starts, strict=True):
                        want_value, want_sample = p_periods.get(moment, empty_value(kpi))
                        _assert_close(point["value"], want_value, kpi)
                        assert point["sample_size"] == want_sample
                if result["value"] is None or p_value is None:
                    assert result["change"] is None
                else:
                    _assert_close(result["change"], result["value"] - previous["value"])


@pytest.fixture
def two_departments(db):
    return [
        DepartmentFactory(slug="hcm", timezone="Asia/Ho_Chi_Minh"),
        DepartmentFactory(slug="nyc", timezone="America/New_York"),
    ]


def _reset():
    cube_models = [m for models in BUCKET_MODELS.values() for m in models]
    for model in (Interaction, SurveyResponse, Cashout, RecordChange, CustomerFirstContact, *cube_models):
        model.objects.all().delete()


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(batches=operations, query_list=st.lists(queries(), min_size=3, max_size=6))
def test_kpi_series_get_equals_plain_python_recomputation(two_departments, batches, query_list):
    _reset()
    _apply(batches, two_departments)
    assert not RecordChange.objects.exists()
    for query_args in query_list:
        _check(query_args, two_departments)


def test_kpi_series_get_hand_computed_day_series(department):
    tz = ZoneInfo("Asia/Ho_Chi_Minh")
    day = datetime(2026, 5, 4, tzinfo=tz)
    records_store([
        interaction_build(department=department, created_at=day + timedelta(hours=9), status="resolved",
                          contact_count=1, first_response_after=30, wait_seconds=10),
        interaction_build(department=department, created_at=day + timedelta(hours=10), status="resolved",
                          contact_count=2, first_response_after=90, wait_seconds=None),
        interaction_build(department=department, created_at=day + timedelta(days=1, hours=23, minutes=59),
                          status="abandoned", first_response_after=None, resolved_after=None, wait_seconds=50),
        # the next local day (00:00 +07:00): outside the range
        interaction_build(department=department, created_at=day + timedelta(days=2), status="missed"),
    ])
    query = KpiQuery(
        kpis=(KPIS["interactions"], KPIS["fcr_rate"], KPIS["first_response_time"], KPIS["average_wait_time"],
              KPIS["abandonment_rate"]),
        scopes=(DepartmentScope(department),), start=day.astimezone(UTC),
        end=(day + timedelta(days=2)).astimezone(UTC), zone="Asia/Ho_Chi_Minh",
    )
    assert set(query_plan(query=query).values()) == {"day"}
    by_kpi = {r["kpi"]: r for r in kpi_series_get(query=query)["results"]}
    assert by_kpi["interactions"]["value"] == 3
    assert [p["value"] for p in by_kpi["interactions"]["series"]] == [2, 1]
    assert by_kpi["fcr_rate"]["value"] == 50.0 and by_kpi["fcr_rate"]["sample_size"] == 2
    assert by_kpi["fcr_rate"]["series"][1] == {"start": "2026-05-05T00:00:00+07:00", "value": None,
                                               "sample_size": 0}
    assert by_kpi["first_response_time"]["value"] == 60.0
    assert by_kpi["average_wait_time"]["value"] == 30.0
    assert by_kpi["abandonment_rate"]["value"] == pytest.approx(100 / 3)


@pytest.mark.parametrize("granularity", ["day", "total"])  # one cube row per period as stored; rows summed
def test_a_count_of_zero_stored_as_null_reads_as_the_integer_zero(department, granularity):
    tz = ZoneInfo("Asia/Ho_Chi_Minh")
    day = datetime(2026, 5, 4, tzinfo=tz)
    records_store([interaction_build(department=department, created_at=day + timedelta(days=d, hours=9),
                                     status="resolved") for d in (0, 0, 1)])
    assert InteractionBucket.objects.filter(missed__isnull=True).exists()
    query = KpiQuery(kpis=(KPIS["missed_calls"], KPIS["abandonment_rate"], KPIS["interactions"]),
                     scopes=(DepartmentScope(department),), start=day.astimezone(UTC),
                     end=(day + timedelta(days=2)).astimezone(UTC), zone="Asia/Ho_Chi_Minh", granularity=granularity)
    assert set(query_plan(query=query).values()) == {"day"}
    by_kpi = {r["kpi"]: r for r in kpi_series_get(query=query)["results"]}
    missed = by_kpi["missed_calls"]
    assert missed["value"] == 0 and type(missed["value"]) is int
    assert by_kpi["abandonment_rate"]["value"] == 0.0 and by_kpi["abandonment_rate"]["sample_size"] == 3
    if granularity == "day":
        assert [p["value"] for p in missed["series"]] == [0, 0]
        assert [p["value"] for p in by_kpi["interactions"]["series"]] == [2, 1]


def test_a_percentile_over_departments_where_one_has_no_duration(department):
    """A sketch cube row whose bucket had records but none with the duration is NULL, read as stored
    (None): merged with another department's it counts as empty, and alone it gives no value."""
    other = DepartmentFactory(timezone=department.timezone)
    tz = ZoneInfo(department.timezone)
    day = datetime(2026, 5, 4, 9, tzinfo=tz)
    records_store([
        interaction_build(department=department, created_at=day, first_response_after=30),
        interaction_build(department=department, created_at=day + timedelta(hours=1), first_response_after=130),
        interaction_build(department=other, created_at=day, first_response_after=None),
    ])
    recompute_all()
    kpi = KPIS["first_response_time_p90"]
    start, end = day.replace(hour=0).astimezone(UTC), (day.replace(hour=0) + timedelta(days=1)).astimezone(UTC)
    both = KpiQuery(kpis=(kpi,), scopes=(DepartmentScope(department), DepartmentScope(other)), start=start, end=end,
                    zone=department.timezone)
    [result] = kpi_series_get(query=both)["results"]
    # The nearest-rank p90 of {30, 130}: 130, within the sketch's bound.
    assert abs(result["value"] - 130) <= 1.3 and result["sample_size"] == 2
    alone = KpiQuery(kpis=(kpi,), scopes=(DepartmentScope(other),), start=start, end=end, zone=department.timezone)
    [result] = kpi_series_get(query=alone)["results"]
    assert result["value"] is None and result["sample_size"] == 0


def test_a_percentile_no_cube_serves_reads_the_raw_records_once(department):
    """Agent × channel by day: no sketch cube keeps both, so the series is read from the raw records. The
    range's value is its days' sketches merged (they tile the range), not a second scan of the records."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    tz = ZoneInfo(department.timezone)
    day = datetime(2026, 5, 4, 9, tzinfo=tz)
    waits = {("a-1", "phone"): [10, 300, 1000], ("a-1", "chat"): [40], ("a-2", "phone"): [5, 7]}
    records_store([
        interaction_build(department=department, agent=agent, channel=channel,
                          created_at=day + timedelta(days=i % 2, minutes=i), first_response_after=seconds)
        for (agent, channel), values in waits.items() for i, seconds in enumerate(values)
    ])
    recompute_all()
    query = KpiQuery(kpis=(KPIS["first_response_time_p90"],), scopes=(DepartmentScope(department),),
                     start=day.replace(hour=0).astimezone(UTC), end=(day.replace(hour=0) + timedelta(days=2)).astimezone(UTC),
                     zone=department.timezone, group_by=("agent", "channel"))
    assert set(query_plan(query=query).values()) == {"quarter"}  # the exact layer: the raw records
    with CaptureQueriesContext(connection) as queries:
        results = kpi_series_get(query=query)["results"]
    assert sum("ingestion_interaction" in q["sql"] for q in queries.captured_queries) == 1
    for result in results:
        values = sorted(waits[(result["group"]["agent"], result["group"]["channel"])])
        exact = values[max(math.ceil(0.9 * len(values)), 1) - 1]
        assert abs(result["value"] - exact) <= max(0.01 * exact, 1.0) and result["sample_size"] == len(values)


@pytest.mark.parametrize(("group_by", "granularity", "reads"), [
    (("agent", "channel"), "month", 1),  # month × agent × channel: the series' rows are the range's too
    ((), "week", 2),  # the days by week, the range from the month cube (12 rows, not 365 days)
])
def test_a_percentile_range_is_read_on_its_own_only_from_a_coarser_cube(department, group_by, granularity, reads,
                                                                         monkeypatch):
    import metrics.selectors

    tz = ZoneInfo(department.timezone)
    first = datetime(2026, 1, 5, 9, tzinfo=tz)
    seconds = [5, 30, 130, 400, 2000, 9000]
    records_store([
        interaction_build(department=department, agent=f"a-{i % 2}", channel="phone",
                          created_at=first + timedelta(days=17 * i), first_response_after=value)
        for i, value in enumerate(seconds)
    ])
    recompute_all()
    query = KpiQuery(kpis=(KPIS["first_response_time_p90"],), scopes=(DepartmentScope(department),),
                     start=datetime(2026, 1, 1, tzinfo=tz).astimezone(UTC),
                     end=datetime(2026, 5, 1, tzinfo=tz).astimezone(UTC), zone=department.timezone,
                     granularity=granularity, group_by=group_by)
    calls = []
    read_many = metrics.selectors.measure_states_read_many
    monkeypatch.setattr(metrics.selectors, "measure_states_read_many",
                        lambda **kwargs: calls.append(kwargs["granularity"]) or read_many(**kwargs))
    results = kpi_series_get(query=query)["results"]
    assert len(calls) == reads  # the series' read, and the range's on its own
    for result in results:
        values = sorted(v for i, v in enumerate(seconds) if not group_by or f"a-{i % 2}" == result["group"]["agent"])
        exact = values[max(math.ceil(0.9 * len(values)), 1) - 1]
        assert abs(result["value"] - exact) <= max(0.01 * exact, 1.0) and result["sample_size"] == len(values)
