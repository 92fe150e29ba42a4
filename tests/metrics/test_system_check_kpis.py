"""The system-check KPIs (count, failure rate, interval) through the real upsert, against a plain-Python
recomputation from the raw records (tests.metrics.reference).

The interval of a check depends on the check before it, so a write changes the value of a record it
did not touch: a check inserted late between two others, or moved by an update (its `at`, its check or
its department changed), changes the gap of the check after it. The upsert marks that check's quarter
(ingestion.services._successor_marks); these tests deliver random versions shuffled, duplicated, out of
order and moved, with the recompute lagging behind some batches, and compare every answer with the
reference computed from what is stored.
"""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingestion.fields import SYSTEM_CHECK
from ingestion.models import RecordChange, SystemCheck
from metrics.catalog import KPIS
from metrics.models import BUCKET_MODELS
from metrics.selectors import DepartmentScope, KpiQuery, kpi_series_get, query_plan
from tests.factories import DepartmentFactory
from tests.metrics.records import recompute_all, system_checks_upsert
from tests.metrics.reference import next_boundary, period_start
from tests.metrics.test_kpi_series_get import _check

pytestmark = pytest.mark.django_db

KPI_KEYS = ("system_checks", "system_check_failure_rate", "system_check_interval")
CHECKS = ("payout-gateway", "bank-api")
ZONES = ["UTC", "Asia/Ho_Chi_Minh", "Asia/Kolkata", "America/New_York"]
# Two days across the New York spring-forward (2026-03-08), so day and hour periods there are uneven.
ORIGIN = datetime(2026, 3, 7, 12, tzinfo=UTC)
SPAN_MINUTES = 2 * 24 * 60


def _at(minute: int, second: int) -> datetime:
    return ORIGIN + timedelta(minutes=minute, seconds=second)


# Minutes on a coarse grid half the time, so checks at the same instant (gap 0) and in the same quarter
# happen often; fractional seconds now and then (the gap is exact to the microsecond).
ats = st.one_of(
    st.builds(_at, st.integers(0, SPAN_MINUTES // 30).map(lambda m: m * 30), st.just(0)),
    st.builds(_at, st.integers(0, SPAN_MINUTES - 1), st.integers(0, 59)),
    st.builds(lambda m, us: _at(m, 0) + timedelta(microseconds=us), st.integers(0, SPAN_MINUTES - 1),
              st.integers(1, 999_999)),
)
version = st.fixed_dictionaries({
    "department": st.integers(0, 1), "check": st.sampled_from(CHECKS), "at": ats,
    "outcome": st.sampled_from(["ok", "failed"]),
})
# A record: its versions in the order the sender made them (the first, then moves and changes).
record_versions = st.lists(version, min_size=1, max_size=3)


@st.composite
def deliveries(draw):
    """(records' versions, batches): every version delivered at least once, some twice, shuffled, in
    batches each followed or not by a recompute."""
    records = draw(st.lists(record_versions, min_size=1, max_size=14))
    sent = [(key, n) for key, versions in enumerate(records) for n in range(len(versions))]
    sent += draw(st.lists(st.sampled_from(sent), max_size=6))  # duplicates (retries)
    order = draw(st.permutations(sent))
    cuts = sorted(draw(st.lists(st.integers(1, max(len(order) - 1, 1)), max_size=4, unique=True)))
    batches, start = [], 0
    for cut in [*cuts, len(order)]:
        if cut > start:
            batches.append((order[start:cut], draw(st.booleans())))
            start = cut
    return records, batches


@st.composite
def queries(draw):
    granularity = draw(st.sampled_from(["hour", "day", "week", "month", "total"]))
    zone = ZoneInfo(draw(st.sampled_from(ZONES)))
    a = _at(draw(st.integers(-600, SPAN_MINUTES)), 0)
    if granularity == "total":
        start = datetime.fromtimestamp(int(a.timestamp()) // 900 * 900, tz=UTC)
    else:
        start = period_start(a, zone, granularity, a)
    end = start
    for _ in range(draw(st.integers(1, {"hour": 60, "day": 4, "week": 2, "month": 1, "total": 300}[granularity]))):
        end = next_boundary(end, zone, granularity)
    return {
        "granularity": granularity, "zone": zone, "start": start, "end": end,
        "group_by": tuple(draw(st.lists(st.sampled_from(["check", "check", "department", "weekday", "hour_of_day"]),
                                        unique=True, max_size=2))),
        "agents": (), "channels": (), "topics": (),
        "checks": tuple(draw(st.one_of(st.just([]), st.lists(st.sampled_from(CHECKS), min_size=1, max_size=1)))),
        "departments": draw(st.sampled_from([(0,), (1,), (0, 1)])),
        # An agent's grant: system checks belong to no agent, so it sees none of them.
        "agent_scope": draw(st.sampled_from([None, None, None, "a-1"])),
        "compare": draw(st.sampled_from([None, "previous_period"])),
        "kpis": tuple(draw(st.lists(st.sampled_from(KPI_KEYS), min_size=1, max_size=3, unique=True))),
    }


def _item(key: int, n: int, fields: dict, departments) -> dict:
    return {
        "external_id": f"chk-{key}", "source": "monitor", "department": departments[fields["department"]].slug,
        "check": fields["check"], "at": fields["at"].isoformat(), "outcome": fields["outcome"],
        "duration_ms": 100 + n, "updated_at": (ORIGIN + timedelta(seconds=n)).isoformat(),
    }


@pytest.fixture
def two_departments(db):
    return [
        DepartmentFactory(slug="hcm", timezone="Asia/Ho_Chi_Minh"),
        DepartmentFactory(slug="nyc", timezone="America/New_York"),
    ]


def _reset():
    for model in (SystemCheck, RecordChange, *BUCKET_MODELS[SYSTEM_CHECK.record_type]):
        model.objects.all().delete()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(delivered=deliveries(), query_list=st.lists(queries(), min_size=3, max_size=6))
def test_system_check_kpis_equal_plain_python_recomputation(two_departments, delivered, query_list):
    _reset()
    records, batches = delivered
    for batch, recompute_now in batches:
        system_checks_upsert([_item(key, n, records[key][n], two_departments) for key, n in batch])
        if recompute_now:
            recompute_all()
    recompute_all()
    assert not RecordChange.objects.exists()
    # What is stored is each record's last version, however the versions arrived.
    stored = {c.external_id: c for c in SystemCheck.objects.all()}
    for key, versions in enumerate(records):
        last, record = versions[-1], stored[f"chk-{key}"]
        assert (record.department_id, record.check_name, record.at, record.outcome) == (
            two_departments[last["department"]].id, last["check"], last["at"], last["outcome"])
    for query_args in query_list:
        _check(query_args, two_departments)


def _series(department, start, end, granularity="hour", zone="UTC", group_by=(), checks=()):
    query = KpiQuery(kpis=tuple(KPIS[k] for k in KPI_KEYS), scopes=(DepartmentScope(department),), start=start,
                     end=end, zone=zone, granularity=granularity, group_by=group_by, checks=checks)
    return {(r["kpi"], tuple(r["group"].values())): r for r in kpi_series_get(query=query)["results"]}


def _post(department, external_id, check, at, outcome="ok", **extra):
    item = {"external_id": external_id, "department": department.slug, "check": check, "at": at.isoformat(),
            "outcome": outcome, **extra}
    return system_checks_upsert([item])


T = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


def test_a_late_check_between_two_changes_the_later_ones_gap(department):
    for i, minute in enumerate((0, 20, 40)):
        _post(department, f"c{i}", "payout-gateway", T + timedelta(minutes=minute))
    recompute_all()
    before = _series(department, T, T + timedelta(hours=1))
    interval = before[("system_check_interval", ())]
    assert (interval["value"], interval["sample_size"]) == (1200.0, 2)
    # Late: a check at 10:30 arrives after 10:40's bucket was computed; 10:40's gap becomes 600 s.
    _post(department, "late", "payout-gateway", T + timedelta(minutes=30))
    marked = set(RecordChange.objects.values_list("quarter_start", flat=True))
    assert marked == {T + timedelta(minutes=30)}  # 10:30 and 10:40 share the quarter 10:30
    _post(department, "later", "payout-gateway", T + timedelta(minutes=10))
    marked = set(RecordChange.objects.values_list("quarter_start", flat=True))
    assert marked == {T + timedelta(minutes=30), T, T + timedelta(minutes=15)}  # 10:10 and its successor 10:20
    recompute_all()
    after = _series(department, T, T + timedelta(hours=1), granularity="total")
    interval = after[("system_check_interval", ())]
    assert (interval["value"], interval["sample_size"]) == (600.0, 4)
    assert after[("system_checks", ())]["value"] == 5


def test_a_moved_check_re_marks_its_old_and_new_successors(department):
    at = {"a": 0, "b": 20, "c": 40, "d": 60, "e": 80}
    for name, minute in at.items():
        _post(department, name, "bank-api", T + timedelta(minutes=minute), updated_at="2026-05-04T09:00:00Z")
    recompute_all()
    # b moves from 10:20 to 11:10 (between d and e): c's predecessor becomes a, e's becomes b.
    _post(department, "b", "bank-api", T + timedelta(minutes=70), updated_at="2026-05-04T09:01:00Z")
    marked = set(RecordChange.objects.values_list("quarter_start", flat=True))
    assert marked == {T + timedelta(minutes=15), T + timedelta(minutes=30), T + timedelta(minutes=60),
                      T + timedelta(minutes=75)}  # b's old and new quarters, c's and e's
    recompute_all()
    # An older version arriving now is stale, and the same version again unchanged: nothing is marked.
    assert _post(department, "b", "bank-api", T, updated_at="2026-05-04T08:00:00Z")["stale"] == 1
    assert _post(department, "b", "bank-api", T + timedelta(minutes=70),
                 updated_at="2026-05-04T09:01:00Z")["unchanged"] == 1
    assert not RecordChange.objects.exists()
    result = _series(department, T, T + timedelta(hours=2), granularity="hour")
    interval = result[("system_check_interval", ())]
    # Sorted: a 10:00, c 10:40, d 11:00, b 11:10, e 11:20 -> gaps 2400, 1200, 600, 600.
    assert (interval["value"], interval["sample_size"]) == (1200.0, 4)
    assert [(p["value"], p["sample_size"]) for p in interval["series"]] == [(2400.0, 1), (800.0, 3)]


def test_checks_are_separate_series_and_group_by_check(department, other_department):
    _post(department, "p1", "payout-gateway", T, outcome="failed")
    _post(department, "p2", "payout-gateway", T + timedelta(minutes=5))
    _post(department, "b1", "bank-api", T + timedelta(minutes=1))
    _post(department, "b2", "bank-api", T + timedelta(minutes=2), outcome="failed")
    _post(department, "b3", "bank-api", T + timedelta(minutes=2))  # the same instant: a gap of 0
    _post(other_department, "x1", "payout-gateway", T + timedelta(minutes=3))  # another department's series
    recompute_all()
    day = datetime(2026, 5, 4, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh")).astimezone(UTC)
    result = _series(department, day, day + timedelta(days=1), granularity="day", zone="Asia/Ho_Chi_Minh",
                     group_by=("check",))
    assert set(query_plan(query=KpiQuery(kpis=(KPIS["system_check_interval"],), scopes=(DepartmentScope(department),),
                                         start=day, end=day + timedelta(days=1), zone="Asia/Ho_Chi_Minh",
                                         group_by=("check",))).values()) == {"day_check"}
    assert result[("system_check_interval", ("payout-gateway",))]["value"] == 300.0
    bank = result[("system_check_interval", ("bank-api",))]
    assert (bank["value"], bank["sample_size"]) == (30.0, 2)  # (60 + 0) / 2
    assert result[("system_check_failure_rate", ("bank-api",))]["value"] == pytest.approx(100 / 3)
    assert result[("system_checks", ("payout-gateway",))]["value"] == 2
    filtered = _series(department, day, day + timedelta(days=1), granularity="total", zone="Asia/Ho_Chi_Minh",
                       checks=("bank-api",))
    assert filtered[("system_checks", ())]["value"] == 3
