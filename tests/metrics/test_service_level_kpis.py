"""The business-hours and SLA KPIs against the plain-Python reference, end to end.

Random calendars (versions, split and overnight shifts, holidays, public holidays) and policies are
set through the services the API calls; records go in through the upsert the API calls, under a
controlled clock; a calendar may change afterwards (the records are measured again); the clock then
moves on and the overdue sweep runs. Every SLA KPI of random queries (periods, zones, groups,
filters, comparisons) must equal the reference (tests/metrics/reference.py, which measures each raw
record with tests/cskpi/business_hours_reference.py) — before the sweep at the old instant, after it
at the new one: a record whose deadline passed became a breach without any new event.
"""

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cskpi.calendars import calendar_parse
from cskpi.errors import InvalidInput
from cskpi.models import DepartmentCalendar, SlaPolicy
from cskpi.services import department_calendar_put, department_sla_put
from ingestion.fields import RECORD_SPECS
from ingestion.models import Cashout, Interaction, RecordChange, ServiceLevelRemeasure
from ingestion.service_levels import overdue_records_mark, pending_remeasures_run
from ingestion.services import record_batch_upsert, record_batch_validate
from metrics.catalog import KPIS
from metrics.selectors import DepartmentScope, KpiQuery, kpi_series_get
from tests.cskpi.test_business_hours import calendars
from tests.metrics.records import recompute_all
from tests.metrics.reference import SlaClock
from tests.metrics.test_kpi_series_get import (
    CHANNELS,
    WINDOW_MINUTES,
    WINDOWS,
    _check,
    _reset,
    queries,
    two_departments,  # noqa: F401 - the fixture
)

pytestmark = pytest.mark.django_db

SERVICE_LEVEL_KPIS = ["first_response_time_business", "resolution_time_business", "sla_first_response_rate",
                      "sla_resolution_rate", "sla_first_response_breaches", "sla_resolution_breaches",
                      "cashout_on_time_response_rate"]


def _valid(versions) -> bool:
    try:
        calendar_parse({"versions": versions})
        return True
    except InvalidInput:
        return False


def _repaired(versions):
    """A drawn calendar, or, when an overnight shift overlaps the next day, the same without those."""
    if _valid(versions):
        return versions
    for version in versions:
        version["weekly"] = {day: [i for i in intervals if i[0] < i[1]] for day, intervals in version["weekly"].items()}
    return versions if _valid(versions) else None


targets = st.one_of(st.integers(0, 7200), st.integers(0, 7200), st.integers(0, 3 * 86400), st.none())
policy_bodies = st.fixed_dictionaries({
    "first_response_seconds": targets, "resolution_seconds": targets, "cashout_response_seconds": targets,
    "cashout_clock": st.sampled_from(["business", "calendar"]),
    "channels": st.one_of(st.just({}), st.fixed_dictionaries({"phone": st.fixed_dictionaries(
        {}, optional={"first_response_seconds": targets, "resolution_seconds": targets})})),
})
policies = st.one_of(st.none(), policy_bodies)
valid_calendars = st.one_of(st.none(), calendars().map(_repaired))

moments = st.builds(lambda w, m, s: WINDOWS[w] + timedelta(minutes=m, seconds=s),
                    st.integers(0, 1), st.integers(-600, WINDOW_MINUTES - 1), st.integers(0, 59))
# Records within a few days of a base moment (and the clock near them): deadlines pass while the test runs.
record_offsets = st.integers(0, 3 * 86400)
delays = st.one_of(st.none(), st.integers(0, 7200), st.integers(0, 3 * 86400), st.floats(0, 86400).map(
    lambda x: round(x, 3)))

interactions = st.fixed_dictionaries({
    "kind": st.just("interactions"), "department": st.sampled_from([0, 0, 1]), "after_base": record_offsets,
    "channel": st.sampled_from(CHANNELS), "agent": st.sampled_from(["a-1", "a-2", None]),
    "status": st.sampled_from(["open", "pending", "resolved", "abandoned", "missed"]),
    "first": delays, "resolved": delays,
})
cashouts = st.fixed_dictionaries({
    "kind": st.just("cashouts"), "department": st.sampled_from([0, 0, 1]), "after_base": record_offsets,
    "channel": st.sampled_from([*CHANNELS, None]), "status": st.sampled_from(["pending", "processing", "succeeded",
                                                                             "failed"]),
    "first": delays, "resolved": delays,
})


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _item(draw: dict, base: datetime, departments, number: int) -> dict:
    created = base + timedelta(seconds=draw["after_base"])
    first = None if draw["first"] is None else created + timedelta(seconds=draw["first"])
    later = created + timedelta(seconds=draw["resolved"] if draw["resolved"] is not None else 3600)
    base = {"external_id": f"r-{number}", "department": departments[draw["department"]].slug}
    if draw["kind"] == "interactions":
        status = draw["status"]
        if status in ("abandoned", "missed"):
            first = None
        return {**base, "channel": draw["channel"], "agent": draw["agent"], "status": status,
                "created_at": _iso(created), "first_response_at": first and _iso(first),
                "resolved_at": _iso(later) if status == "resolved" else None}
    settled = draw["status"] in ("succeeded", "failed")
    return {**base, "channel": draw["channel"], "status": draw["status"], "amount": "100", "currency": "VND",
            "requested_at": _iso(created), "first_response_at": first and _iso(first),
            "completed_at": _iso(later) if settled else None}


@contextmanager
def _clock(moment: datetime):
    with mock.patch("ingestion.service_levels.now", return_value=moment):
        yield


def _ingest(items: list[dict]) -> None:
    for kind in ("interactions", "cashouts"):
        batch = [i for i in items if i["_kind"] == kind]
        if batch:
            spec = RECORD_SPECS[kind]
            rows = record_batch_validate(spec=spec, items=[{k: v for k, v in i.items() if k != "_kind"}
                                                           for i in batch])
            record_batch_upsert(spec=spec, rows=rows)


def _settings_apply(departments, calendar_list, policy_list) -> None:
    for department, versions, policy in zip(departments, calendar_list, policy_list, strict=True):
        if versions is not None:
            department_calendar_put(department=department, body={"versions": versions})
        if policy is not None:
            department_sla_put(department=department, body=policy)


def _service_level_queries():
    return queries().flatmap(lambda q: st.lists(st.sampled_from(SERVICE_LEVEL_KPIS), min_size=1, max_size=3,
                                                unique=True).map(lambda kpis: {**q, "kpis": tuple(kpis)}))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(
    first_calendars=st.tuples(valid_calendars, valid_calendars),
    first_policies=st.tuples(policy_bodies, policies),
    base=moments, records=st.lists(st.one_of(interactions, interactions, cashouts), min_size=1, max_size=14),
    clock_offset=st.integers(-3600, 3 * 86400), change=st.one_of(st.none(), st.tuples(valid_calendars, policies)),
    clock_later=st.integers(0, 4 * 86400),
    query_list=st.lists(_service_level_queries(), min_size=2, max_size=4),
)
def test_service_level_kpis_equal_the_reference(two_departments, first_calendars, first_policies,  # noqa: F811
                                                base, records, clock_offset, change, clock_later, query_list):
    _reset()
    DepartmentCalendar.objects.all().delete()
    SlaPolicy.objects.all().delete()
    ServiceLevelRemeasure.objects.all().delete()
    _settings_apply(two_departments, first_calendars, first_policies)
    clock_at = base + timedelta(seconds=clock_offset)  # near the records: some are not yet due
    with _clock(clock_at):
        pending_remeasures_run(time_budget=60)
        _ingest([{**_item(r, base, two_departments, n), "_kind": r["kind"]} for n, r in enumerate(records)])
        if change is not None:  # a later change: the department's affected records are measured again
            _settings_apply(two_departments[:1], [change[0]], [change[1]])
            pending_remeasures_run(time_budget=60)
        assert not ServiceLevelRemeasure.objects.exists()
        recompute_all()
    SlaClock.now = clock_at
    _check(query_list[0], two_departments)

    later = clock_at + timedelta(seconds=clock_later)
    event("states: " + ",".join(sorted({s for s in Interaction.objects.values_list("first_response_sla", flat=True)
                                         if s} | {f"cashout-{s}" for s in Cashout.objects.values_list("response_sla",
                                                                                                      flat=True) if s})))
    with _clock(later):
        flipped = overdue_records_mark()  # the beat's sweep: no record changed, only the clock moved
    event(f"overdue flipped: {min(flipped, 2)}")
    recompute_all()
    assert not RecordChange.objects.exists()
    SlaClock.now = later
    for query_args in query_list[1:]:
        _check(query_args, two_departments)


def test_an_unanswered_record_becomes_a_breach_when_its_deadline_passes(department):
    """The overdue transition by hand: 1 h target, a chat at 09:00 on a 08:00-17:00 Monday."""
    department_calendar_put(department=department, body={"versions": [{
        "effective_from": "2026-01-01", "weekly": {"mon": [["08:00", "17:00"]]}}]})
    department_sla_put(department=department, body={"first_response_seconds": 3600})
    created = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Mon 09:00 +07
    with _clock(created + timedelta(minutes=5)):
        pending_remeasures_run(time_budget=60)
        _ingest([{"_kind": "interactions", "external_id": "i-1", "department": department.slug, "channel": "chat",
                  "status": "open", "created_at": _iso(created)}])
    recompute_all()
    record = Interaction.objects.get()
    assert (record.first_response_sla, record.first_response_due_at) == ("pending", created + timedelta(hours=1))

    def rate():
        query = KpiQuery(kpis=(KPIS["sla_first_response_rate"], KPIS["sla_first_response_breaches"]),
                         scopes=(DepartmentScope(department),), start=datetime(2026, 3, 1, tzinfo=UTC),
                         end=datetime(2026, 3, 3, tzinfo=UTC), zone="UTC", granularity="total")
        return [(r["value"], r["sample_size"]) for r in kpi_series_get(query=query)["results"]]

    assert rate() == [(None, 0), (0, 0)]  # not yet due: neither met nor breached
    with _clock(created + timedelta(hours=1)):
        assert overdue_records_mark() == 0  # at the deadline a response would still meet the target
    with _clock(created + timedelta(hours=1, microseconds=1)):
        assert overdue_records_mark() == 1
    recompute_all()
    assert rate() == [(0.0, 1), (1, 1)]
    assert Cashout.objects.count() == 0
