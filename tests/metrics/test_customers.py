"""Distinct customers (customers, new_customers, returning_customers) and the customer region
dimension, against a plain-Python len(set(...)) over the raw records.

The property test drives the records through the histories that move a customer's first contact:
late and out-of-order versions, duplicates, records moving between periods and departments,
customers changing region or id, and backfills of older history that turn new customers into
returning ones in later periods. Queries cover every granularity, zones with half-hour offsets and
DST (Asia/Kolkata, America/New_York), groupings and filters, agent scopes and comparisons.
"""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingestion.models import Interaction, RecordChange
from metrics.catalog import KPIS
from metrics.customers import customer_ids_get
from metrics.models import BUCKET_MODELS, CustomerFirstContact, CustomerKey
from metrics.selectors import DepartmentScope, KpiQuery, kpi_series_get
from tests.factories import DepartmentFactory
from tests.metrics.records import interaction_build, recompute_all, records_store
from tests.metrics.reference import first_contacts, next_boundary, period_start
from tests.metrics.test_kpi_series_get import WINDOW_MINUTES, WINDOWS, ZONES, _check

pytestmark = pytest.mark.django_db

CUSTOMERS = ["c-1", "c-2", "c-3", "c-4", "c-5", None]
REGIONS = ["north", "south", None]
CHANNELS = ["phone", "chat"]
AGENTS = ["a-1", "a-2", None]
CUSTOMER_KPIS = ["customers", "new_customers", "returning_customers"]
# Older history a backfill reaches into: up to 60 days before each window.
BACKFILL_MINUTES = 60 * 24 * 60


def _moment(window: int, minute: int) -> datetime:
    return WINDOWS[window] + timedelta(minutes=minute, seconds=minute % 7)


moments = st.builds(_moment, st.integers(0, 1), st.integers(0, WINDOW_MINUTES - 1))
older = st.builds(_moment, st.integers(0, 1), st.integers(-BACKFILL_MINUTES, -1))
new_record = st.tuples(st.just("new"), st.integers(0, 1), st.fixed_dictionaries({
    "created_at": st.one_of(moments, moments, older), "channel": st.sampled_from(CHANNELS),
    "agent": st.sampled_from(AGENTS), "customer": st.sampled_from(CUSTOMERS),
    "customer_region": st.sampled_from(REGIONS), "topic": st.sampled_from(["card", None]),
}))
# A newer version of a stored record: moved in time (maybe to older history), to the other department,
# to another customer or region, or delivered again unchanged (None everywhere).
change = st.tuples(st.just("change"), st.integers(0, 10_000), st.fixed_dictionaries({
    "created_at": st.one_of(st.none(), moments, older), "department": st.one_of(st.none(), st.integers(0, 1)),
    # None: unchanged; "-": the field cleared (the customer or region removed).
    "customer": st.one_of(st.none(), st.sampled_from([*CUSTOMERS[:-1], "-"])),
    "customer_region": st.one_of(st.none(), st.sampled_from([*REGIONS[:-1], "-"])),
}))
# An out-of-order (older) version: the stored row wins, its buckets may still be marked.
stale = st.tuples(st.just("stale"), st.integers(0, 10_000), st.integers(0, 1), st.one_of(moments, older))
operations = st.lists(
    st.tuples(st.lists(st.one_of(new_record, new_record, change, stale), min_size=1, max_size=8), st.booleans()),
    min_size=1, max_size=5,
)


@st.composite
def queries(draw):
    granularity = draw(st.sampled_from(["hour", "day", "week", "month", "total"]))
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(draw(st.sampled_from(ZONES)))
    a = _moment(draw(st.integers(0, 1)), draw(st.integers(-2000, WINDOW_MINUTES)))
    start = period_start(a, zone, granularity if granularity != "total" else "hour", a)
    if granularity == "total":
        start = datetime.fromtimestamp(int(a.timestamp()) // 900 * 900, tz=UTC)
    end = start
    for _ in range(draw(st.integers(1, {"hour": 60, "day": 5, "week": 2, "month": 2, "total": 400}[granularity]))):
        end = next_boundary(end, zone, granularity)
    if draw(st.booleans()):  # a partial range: first and last periods clipped
        start = start + timedelta(minutes=15 * draw(st.integers(0, 200)))
        end = max(end - timedelta(minutes=15 * draw(st.integers(0, 200))), start + timedelta(minutes=15))
    kpis = draw(st.lists(st.sampled_from(CUSTOMER_KPIS), min_size=1, max_size=3, unique=True))
    if draw(st.booleans()):
        kpis.append("interactions")
    return {
        "granularity": granularity, "zone": zone, "start": start, "end": end,
        "group_by": tuple(draw(st.lists(st.sampled_from(["channel", "agent", "customer_region", "department",
                                                         "topic", "weekday"]), unique=True, max_size=2))),
        "agents": tuple(draw(st.one_of(st.just([]), st.just([]), st.lists(st.sampled_from(["a-1", "a-2"]),
                                                                          min_size=1, max_size=1)))),
        "channels": tuple(draw(st.one_of(st.just([]), st.just([]), st.lists(st.sampled_from(CHANNELS), min_size=1,
                                                                            max_size=1)))),
        "topics": (),
        "regions": tuple(draw(st.one_of(st.just([]), st.just([]), st.lists(st.sampled_from(["north", "south"]),
                                                                            min_size=1, max_size=2, unique=True)))),
        "departments": draw(st.sampled_from([(0,), (1,), (0, 1)])),
        "agent_scope": draw(st.sampled_from([None, None, "a-1"])),
        "compare": draw(st.sampled_from([None, "previous_period", "previous_year"])),
        "kpis": tuple(kpis),
    }


def _apply(batches, departments):
    stored: list[Interaction] = []
    for batch, recompute_now in batches:
        changed, old_places = [], []
        for op in batch:
            if op[0] == "new":
                _, dept, fields = op
                record = interaction_build(department=departments[dept], **fields)
                stored.append(record)
                changed.append(record)
            elif stored:
                record = stored[op[1] % len(stored)]
                if record.pk is None:
                    continue
                if op[0] == "stale":
                    old_places.append((record, departments[op[2]].id, op[3]))
                    continue
                fields = op[2]
                old_places.append((record, record.department_id, record.created_at))
                if fields["created_at"] is not None:
                    shift = fields["created_at"] - record.created_at
                    for name in ("first_response_at", "resolved_at"):
                        if getattr(record, name) is not None:
                            setattr(record, name, getattr(record, name) + shift)
                    record.created_at = fields["created_at"]
                if fields["department"] is not None:
                    record.department = departments[fields["department"]]
                for name in ("customer", "customer_region"):
                    if fields[name] is not None:
                        setattr(record, name, fields[name] if fields[name] != "-" else None)
                changed.append(record)
        records_store(changed, old_places=old_places, then="recompute" if recompute_now else None)
    recompute_all()


def _first_contacts_stored(departments) -> dict:
    return {(f.department_id, f.customer.customer): f.first_at
            for f in CustomerFirstContact.objects.select_related("customer")}


@pytest.fixture
def two_departments(db):
    return [DepartmentFactory(slug="hcm", timezone="Asia/Ho_Chi_Minh"),
            DepartmentFactory(slug="nyc", timezone="America/New_York")]


def _reset():
    for model in (Interaction, RecordChange, CustomerFirstContact,
                  *(m for models in BUCKET_MODELS.values() for m in models)):
        model.objects.all().delete()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(batches=operations, query_list=st.lists(queries(), min_size=3, max_size=6))
def test_customer_kpis_equal_plain_python_sets(two_departments, batches, query_list):
    _reset()
    _apply(batches, two_departments)
    assert not RecordChange.objects.exists()
    # The first contact per (department, customer) is exactly the earliest interaction stored.
    want = {}
    for department in two_departments:
        for customer, firsts in first_contacts([department.id]).items():
            want[(department.id, customer)] = firsts[0][1]
    assert _first_contacts_stored(two_departments) == want
    for query_args in query_list:
        _check(query_args, two_departments)


# --- hand-computed cases --------------------------------------------------------------------

T0 = datetime(2026, 5, 4, 3, tzinfo=UTC)  # 10:00 in Ho Chi Minh City


def _series(department, kpi, *, start, end, granularity="day", group_by=(), **filters):
    query = KpiQuery(kpis=(KPIS[kpi],), scopes=(DepartmentScope(department),), start=start, end=end,
                     zone=department.timezone, granularity=granularity, group_by=group_by, **filters)
    return {tuple(r["group"].values()): (r["value"], [p["value"] for p in r.get("series", [])])
            for r in kpi_series_get(query=query)["results"]}


def test_a_first_contact_moved_within_its_day_leaves_no_stale_hour(department):
    """A backfill earlier the same day moves the first contact to another hour: the day is rebuilt whole
    from the raw records, the hour cube only where the change is; the hour it left is recomputed too."""
    records_store([interaction_build(department=department, created_at=T0, customer="c-1")])  # 03:00 UTC
    records_store([interaction_build(department=department, created_at=T0 - timedelta(hours=2), customer="c-1")])
    day_start = datetime(2026, 5, 4, tzinfo=UTC)
    hours = _series(department, "new_customers", start=day_start, end=day_start + timedelta(hours=6),
                    granularity="hour")
    # Queried in the department's zone by hour: the hour cube (UTC hours) of the first contacts.
    assert hours == {(): (1, [0, 1, 0, 0, 0, 0])}


def test_backfill_moves_a_customer_from_new_to_returning(department):
    records_store([interaction_build(department=department, created_at=T0 + timedelta(days=d), customer="c-1")
                   for d in (0, 1, 31)])
    start, end = datetime(2026, 4, 30, 17, tzinfo=UTC), datetime(2026, 6, 30, 17, tzinfo=UTC)
    assert _series(department, "new_customers", start=start, end=end, granularity="month") == {(): (1, [1, 0])}
    assert _series(department, "returning_customers", start=start, end=end, granularity="month") == {
        (): (0, [0, 1])}
    # An older interaction arrives: c-1 is no longer new in May (its first contact moved to March).
    records_store([interaction_build(department=department, created_at=T0 - timedelta(days=60), customer="c-1")])
    assert _series(department, "new_customers", start=start, end=end, granularity="month") == {(): (0, [0, 0])}
    assert _series(department, "returning_customers", start=start, end=end, granularity="month") == {
        (): (1, [1, 1])}
    march = _series(department, "new_customers", start=datetime(2026, 2, 28, 17, tzinfo=UTC),
                    end=datetime(2026, 3, 31, 17, tzinfo=UTC), granularity="total")
    assert march == {(): (1, [])}
    # The old interaction is corrected into June: May's first contact is back.
    old = Interaction.objects.get(created_at=T0 - timedelta(days=60))
    moved_from = old.created_at
    old.created_at = T0 + timedelta(days=40)
    records_store([old], old_places=[(old, department.id, moved_from)])
    assert _series(department, "new_customers", start=start, end=end, granularity="month") == {(): (1, [1, 0])}
    assert CustomerFirstContact.objects.get().first_at == T0


def test_new_in_every_group_used_and_counted_once(department):
    records_store([
        interaction_build(department=department, created_at=T0, customer="c-1", channel="phone",
                          customer_region="north"),
        interaction_build(department=department, created_at=T0 + timedelta(hours=1), customer="c-1",
                          channel="chat", customer_region="south"),
        interaction_build(department=department, created_at=T0 + timedelta(hours=2), customer="c-2", channel="chat"),
        interaction_build(department=department, created_at=T0 - timedelta(days=3), customer="c-2",
                          channel="email"),
        interaction_build(department=department, created_at=T0 + timedelta(hours=3), customer=None, channel="chat"),
    ])
    start, end = datetime(2026, 5, 3, 17, tzinfo=UTC), datetime(2026, 5, 4, 17, tzinfo=UTC)
    assert _series(department, "customers", start=start, end=end) == {(): (2, [2])}
    assert _series(department, "customers", start=start, end=end, group_by=("channel",)) == {
        ("chat",): (2, [2]), ("phone",): (1, [1])}
    # c-1 is new to the department: new in both channels it used; c-2 came before (by email).
    assert _series(department, "new_customers", start=start, end=end, group_by=("channel",)) == {
        ("chat",): (1, [1]), ("phone",): (1, [1])}
    assert _series(department, "returning_customers", start=start, end=end, group_by=("channel",)) == {
        ("chat",): (1, [1]), ("phone",): (0, [0])}
    assert _series(department, "customers", start=start, end=end, group_by=("customer_region",)) == {
        ("north",): (1, [1]), ("south",): (1, [1]), (None,): (1, [1])}
    assert _series(department, "interactions", start=start, end=end, customer_regions=("south", "north")) == {
        (): (2, [2])}


def test_customer_ids_are_dense_idempotent_and_shared():
    first = customer_ids_get(customers=["b", "a", "a", None])
    assert sorted(first.values()) == list(range(min(first.values()), min(first.values()) + 2))
    assert customer_ids_get(customers=["a", "c"]) == {"a": first["a"], "c": max(first.values()) + 1}
    assert CustomerKey.objects.count() == 3


# --- access and the API ---------------------------------------------------------------------


@pytest.fixture
def traffic(department):
    records_store([
        interaction_build(department=department, created_at=T0, agent="a-1", customer="c-1", customer_region="north"),
        interaction_build(department=department, created_at=T0 + timedelta(hours=1), agent="a-1", customer="c-2"),
        interaction_build(department=department, created_at=T0 + timedelta(hours=2), agent="a-2", customer="c-1",
                          customer_region="north"),
        interaction_build(department=department, created_at=T0 + timedelta(hours=3), agent="a-2", customer="c-3",
                          customer_region="south"),
        interaction_build(department=department, created_at=T0 - timedelta(days=2), agent="a-2", customer="c-2"),
    ])


def _totals(client, kpi, **params):
    response = client.get("/api/v1/metrics", {"kpi": kpi, "start": "2026-05-04", "end": "2026-05-05",
                                               "granularity": "total", **params})
    assert response.status_code == 200, response.json()
    return {tuple(r["group"].values()): r["value"] for r in response.json()["results"]}


def test_agent_counts_customers_of_its_own_interactions(traffic, make_client):
    agent = make_client(grants=[("cskh-hn", "agent")], agent="a-1")
    assert _totals(agent, "customers") == {(): 2}
    assert _totals(agent, "new_customers") == {(): 1}  # c-1 (c-2 came to a-2 two days before)
    assert _totals(agent, "returning_customers") == {(): 1}
    assert _totals(agent, "customers", group_by="customer_region") == {("north",): 1, (None,): 1}


def test_viewer_sees_customers_by_region_and_channel_but_not_by_agent(traffic, make_client):
    viewer = make_client(grants=[("cskh-hn", "viewer")])
    assert _totals(viewer, "customers") == {(): 3}
    assert _totals(viewer, "customers", group_by="customer_region") == {("north",): 1, ("south",): 1, (None,): 1}
    assert _totals(viewer, "new_customers", customer_region="north,south") == {(): 2}
    response = viewer.get("/api/v1/metrics", {"kpi": "customers", "group_by": "agent", "start": "2026-05-04",
                                              "end": "2026-05-05"})
    assert response.status_code == 403 and response.json()["errors"][0]["field"] == "group_by"


def test_customers_by_region_as_csv(traffic, staff_client):
    response = staff_client.get("/api/v1/metrics", {"kpi": "customers", "group_by": "customer_region",
                                                    "start": "2026-05-04", "end": "2026-05-05", "format": "csv"})
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["customer_region"], r["value"]) for r in rows] == [("", "1"), ("north", "1"), ("south", "1")]


def test_customer_kpis_cannot_be_grouped_by_region_across_record_types(traffic, staff_client):
    response = staff_client.get("/api/v1/metrics", {"kpi": "survey_response_rate", "group_by": "customer_region",
                                                    "start": "2026-05-04", "end": "2026-05-05"})
    assert response.status_code == 400 and response.json()["errors"][0]["code"] == "dimension_not_shared"
