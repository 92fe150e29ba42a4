"""The customer registry's KPIs against a plain-Python reference over the final record set.

The reference evaluates the definitions directly: a customer is active at t when started_at < t and
(no ended_at or ended_at ≥ t); it knows nothing of buckets, stocks, openings or pair rows. Records go
in through ingestion's validator and upsert (late and out-of-order versions, customers moving region,
segment, department and time, ended_at set, cleared and moved), some recomputes lag behind a batch.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingestion.fields import RECORD_SPECS
from ingestion.models import Customer, RecordChange
from ingestion.services import record_batch_upsert, record_batch_validate
from metrics.catalog import KPIS
from metrics.models import BUCKET_MODELS
from metrics.selectors import DepartmentScope, KpiQuery, kpi_series_get
from tests.factories import DepartmentFactory
from tests.metrics.records import recompute_all
from tests.metrics.reference import midnight, next_boundary, period_start, period_starts

pytestmark = pytest.mark.django_db

SPEC = RECORD_SPECS["customers"]
REGISTRY_KPIS = [key for key, kpi in KPIS.items() if kpi.stock]
ZONES = ["UTC", "Asia/Ho_Chi_Minh", "Asia/Kolkata", "America/New_York"]
# Two windows, each across a New York DST change (2026-03-08, 2026-11-01) and month ends.
WINDOWS = [datetime(2026, 2, 20, tzinfo=UTC), datetime(2026, 10, 20, tzinfo=UTC)]
WINDOW_DAYS = 60
REGIONS = ["Hà Nội", "HCM", None]
SEGMENTS = ["gold", "basic", None]
MRRS = [None, "0", "10.5", "250000", "0.000001", "99999.999999"]


# --- the reference -----------------------------------------------------------------------------
def _active(customer, t: datetime) -> bool:
    return customer.started_at < t and (customer.ended_at is None or customer.ended_at >= t)


def _mrr(customers) -> Decimal:
    return sum((c.mrr or Decimal(0) for c in customers), Decimal(0))


def reference(customers, start: datetime, end: datetime) -> dict[str, tuple]:
    """{kpi: (value, sample_size)} over [start, end), from the definitions."""
    at_start = [c for c in customers if _active(c, start)]
    at_end = [c for c in customers if _active(c, end)]
    started = [c for c in customers if start <= c.started_at < end]
    churned = [c for c in customers if c.ended_at is not None and start <= c.ended_at < end]
    lost = [c for c in at_start if c.ended_at is not None and c.ended_at < end]
    kept = [c for c in at_end if c.started_at < start]  # active at the end, less those who started in the range
    n = len(at_start)
    mrr_start = _mrr(at_start)
    return {
        "customer_base": (len(at_end), len(at_end)),
        "customers_started": (len(started), len(started)),
        "customers_churned": (len(churned), len(churned)),
        "retention_rate": (len(kept) / n * 100, n) if n else (None, 0),
        "churn_rate": (len(lost) / n * 100, n) if n else (None, 0),
        "mrr": (float(_mrr(at_end)), len(at_end)),
        "revenue_churn_rate": (float(_mrr(lost)) / float(mrr_start) * 100, n) if n and mrr_start else (None, 0),
    }


def _group(customer, dimension: str, slugs: dict):
    return {"customer_region": customer.customer_region or None, "segment": customer.segment or None,
            "department": slugs.get(customer.department_id)}[dimension]


# --- the records -------------------------------------------------------------------------------
def _moment(window: int, minute: int, second: int, snap: str | None) -> datetime:
    moment = WINDOWS[window] + timedelta(minutes=minute, seconds=second)
    if snap == "hcm-midnight":  # ends and starts exactly on boundaries of the periods
        return midnight(moment.astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).date(), ZoneInfo("Asia/Ho_Chi_Minh"))
    if snap == "ny-midnight":
        return midnight(moment.astimezone(ZoneInfo("America/New_York")).date(), ZoneInfo("America/New_York"))
    if snap == "quarter":
        return moment.replace(minute=moment.minute // 15 * 15, second=0)
    return moment


moments = st.builds(_moment, st.integers(0, 1), st.integers(0, WINDOW_DAYS * 24 * 60 - 1), st.integers(0, 59),
                    st.sampled_from([None, None, "hcm-midnight", "ny-midnight", "quarter"]))
lengths = st.one_of(st.none(), st.just(0), st.integers(1, 20 * 24 * 3600), st.integers(1, 90).map(lambda q: q * 900))


def _iso(moment: datetime) -> str:
    return moment.isoformat()


@st.composite
def versions(draw, key: str):
    """One version of customer `key`: its department, times, region, segment, mrr and updated_at."""
    started = draw(moments)
    length = draw(lengths)
    item = {"external_id": key, "department": draw(st.sampled_from(["hcm", "nyc"])), "started_at": _iso(started),
            "updated_at": _iso(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=draw(st.integers(0, 50))))}
    if length is not None:
        item["ended_at"] = _iso(started + timedelta(seconds=length))
    for name, values in (("region", REGIONS), ("segment", SEGMENTS), ("mrr", MRRS)):
        value = draw(st.sampled_from(values))
        if value is not None:
            item[name] = value
    if draw(st.booleans()):
        item["currency"] = "VND"
    return item


# Batches of versions over a few keys: a key seen again is an update (newer or older updated_at, so
# late versions are ignored), the same content again is a duplicate.
batches = st.lists(
    st.tuples(st.lists(st.sampled_from([f"C-{i}" for i in range(12)]).flatmap(versions), min_size=1, max_size=10),
              st.booleans()),
    min_size=1, max_size=4,
)


@st.composite
def queries(draw):
    granularity = draw(st.sampled_from(["hour", "day", "week", "month", "total"]))
    zone = ZoneInfo(draw(st.sampled_from(ZONES)))
    window = draw(st.integers(0, 1))
    a = WINDOWS[window] + timedelta(minutes=draw(st.integers(-3 * 24 * 60, WINDOW_DAYS * 24 * 60)))
    start = period_start(a, zone, granularity if granularity != "total" else "hour", a)
    if granularity == "total":
        start = datetime.fromtimestamp(int(a.timestamp()) // 900 * 900, tz=UTC)
    end = start
    for _ in range(draw(st.integers(1, {"hour": 72, "day": 12, "week": 4, "month": 2, "total": 3000}[granularity]))):
        end = next_boundary(end, zone, granularity)
    if draw(st.booleans()):  # a partial range: first and last periods clipped
        start = start + timedelta(minutes=15 * draw(st.integers(0, 300)))
        end = max(end - timedelta(minutes=15 * draw(st.integers(0, 300))), start + timedelta(minutes=15))
    return {
        "granularity": granularity, "zone": zone, "start": start, "end": end,
        "group_by": tuple(draw(st.lists(st.sampled_from(["customer_region", "segment", "department"]), unique=True,
                                        max_size=2))),
        "departments": draw(st.sampled_from([(0,), (1,), (0, 1)])),
        "compare": draw(st.sampled_from([None, "previous_period", "previous_week"])),
        "kpis": tuple(draw(st.lists(st.sampled_from(REGISTRY_KPIS), min_size=1, max_size=7, unique=True))),
    }


def _ingest(batches_drawn) -> None:
    for items, recompute_now in batches_drawn:
        rows = record_batch_validate(spec=SPEC, items=items)
        record_batch_upsert(spec=SPEC, rows=rows)
        if recompute_now:
            recompute_all()
    recompute_all()


def _close(actual, expected):
    if expected is None:
        assert actual is None
    elif isinstance(expected, int):
        assert actual == expected and isinstance(actual, int)
    else:
        assert actual == pytest.approx(expected, rel=1e-9, abs=1e-9)


def _check(query_args, departments):
    tz = query_args["zone"]
    chosen = [departments[i] for i in query_args["departments"]]
    slugs = {d.id: d.slug for d in chosen}
    query = KpiQuery(
        kpis=tuple(KPIS[k] for k in query_args["kpis"]), scopes=tuple(DepartmentScope(d) for d in chosen),
        start=query_args["start"], end=query_args["end"], zone=str(tz), granularity=query_args["granularity"],
        group_by=query_args["group_by"], compare=query_args["compare"],
    )
    response = kpi_series_get(query=query)
    customers = list(Customer.objects.filter(department_id__in=list(slugs)))
    by_group: dict[tuple, list] = {}
    for c in customers:
        by_group.setdefault(tuple(_group(c, d, slugs) for d in query.group_by), []).append(c)
    # The groups: those with a customer who started before the range's end (they have a level then).
    expected_groups = {k for k, cs in by_group.items() if any(c.started_at < query.end for c in cs)}
    starts = period_starts(query.start, query.end, tz, query.granularity)
    ends = [*starts[1:], query.end]
    for kpi in query_args["kpis"]:
        results = {tuple(r["group"][g] for g in query.group_by): r for r in response["results"] if r["kpi"] == kpi}
        assert set(results) == (expected_groups if query.group_by else {()}), (kpi, query_args)
        for key, result in results.items():
            members = by_group.get(key, [])
            value, sample = reference(members, query.start, query.end)[kpi]
            _close(result["value"], value)
            assert result["sample_size"] == sample
            if query.granularity != "total":
                assert [datetime.fromisoformat(p["start"]) for p in result["series"]] == starts
                for point, p_start, p_end in zip(result["series"], starts, ends, strict=True):
                    p_value, p_sample = reference(members, p_start, p_end)[kpi]
                    _close(point["value"], p_value)
                    assert point["sample_size"] == p_sample, (kpi, p_start)
            if query.compare:
                previous = result["previous"]
                p_start, p_end = (datetime.fromisoformat(previous[k]) for k in ("start", "end"))
                p_value, p_sample = reference(members, p_start, p_end)[kpi]
                _close(previous["value"], p_value)
                assert previous["sample_size"] == p_sample
    _identities(response, query)


def _identities(response, query) -> None:
    """base at a period's end = base at its start + started − churned; retention + churn = 100."""
    results: dict[tuple, dict] = {}
    for r in response["results"]:
        results.setdefault(tuple(sorted(r["group"].items(), key=lambda kv: kv[0])), {})[r["kpi"]] = r
    for kpis in results.values():
        if {"customer_base", "customers_started", "customers_churned"} <= kpis.keys() and "series" in kpis[
                "customer_base"]:
            base = [p["value"] for p in kpis["customer_base"]["series"]]
            started = [p["value"] for p in kpis["customers_started"]["series"]]
            churned = [p["value"] for p in kpis["customers_churned"]["series"]]
            for i in range(1, len(base)):
                assert base[i] == base[i - 1] + started[i] - churned[i]
        if {"retention_rate", "churn_rate"} <= kpis.keys():
            retention, churn = kpis["retention_rate"], kpis["churn_rate"]
            assert (retention["value"] is None) == (churn["value"] is None)
            if retention["value"] is not None:
                assert retention["value"] + churn["value"] == pytest.approx(100)
                assert retention["sample_size"] == churn["sample_size"]


@pytest.fixture
def two_departments(db):
    return [DepartmentFactory(slug="hcm", timezone="Asia/Ho_Chi_Minh"),
            DepartmentFactory(slug="nyc", timezone="America/New_York")]


def _reset():
    for model in (Customer, RecordChange, *BUCKET_MODELS["customer"]):
        model.objects.all().delete()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(drawn=batches, query_list=st.lists(queries(), min_size=3, max_size=6))
def test_registry_kpis_equal_the_definitions_over_the_final_records(two_departments, drawn, query_list):
    _reset()
    _ingest(drawn)
    assert not RecordChange.objects.exists()
    for query_args in query_list:
        _check(query_args, two_departments)
