"""Finding 1 and 2 of the hardening issue: a stored value cannot stop the recompute or the rebuild,
a bucket that fails is parked alone with its key, and reads answer finite JSON.

Poison is stored the way an older release stored it (the validator now refuses it), bypassing
ingestion: 1e308 seconds twice in one quarter-hour overflowed the sum (DataError), parked the
bucket and its neighbours, and made reads 500/503.
"""

import json
import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import DataError

from ingestion.models import RecordChange as DirtyBucket  # the marks waiting for (or parked by) the recompute
from metrics import services
from metrics.measures import SUMMED_VALUE_BOUND
from metrics.services import dirty_buckets_recompute
from tests.metrics.records import interaction_build, records_store

pytestmark = pytest.mark.django_db(transaction=True)

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DAY = datetime(2026, 5, 4, tzinfo=TZ)


def _metrics(client, **params):
    response = client.get("/api/v1/metrics", {"kpi": "average_wait_time,interactions", "start": "2026-05-04",
                                               "end": "2026-05-06", **params})
    assert response.status_code == 200, response.content
    body = json.loads(response.content)  # strict: the text must be valid JSON (no NaN/Infinity)
    for result in body["results"]:
        numbers = [result["value"], *(p["value"] for p in result.get("series", []))]
        assert all(n is None or math.isfinite(n) for n in numbers)
    return {r["kpi"]: r for r in body["results"]}


@pytest.fixture
def poisoned(department):
    """Two 1e308-second waits in one quarter, a normal record in the same quarter and one the next day."""
    records_store([
        interaction_build(department=department, created_at=DAY + timedelta(hours=9), wait_seconds=1e308),
        interaction_build(department=department, created_at=DAY + timedelta(hours=9, minutes=5), wait_seconds=1e308),
        interaction_build(department=department, created_at=DAY + timedelta(hours=9, minutes=10), wait_seconds=40),
        interaction_build(department=department, created_at=DAY + timedelta(days=1, hours=9), wait_seconds=20),
    ])


def test_poison_values_neither_park_buckets_nor_break_reads(poisoned, staff_client):
    assert not DirtyBucket.objects.exists()  # nothing parked, nothing left waiting
    total = _metrics(staff_client, granularity="total")
    # Each poison value counts as the bound (10 years), never as an overflow.
    expected = (2 * SUMMED_VALUE_BOUND + 40 + 20) / 4
    assert total["average_wait_time"]["value"] == pytest.approx(expected)
    assert total["interactions"]["value"] == 4
    by_day = _metrics(staff_client, granularity="day")
    assert [p["value"] for p in by_day["average_wait_time"]["series"]] == pytest.approx(
        [(2 * SUMMED_VALUE_BOUND + 40) / 3, 20.0])
    status = staff_client.get("/api/v1/status").json()
    assert (status["pending_buckets"], status["failed_buckets"]) == (0, 0)


def test_rebuild_aggregates_survives_poison(poisoned, staff_client):
    call_command("rebuild_aggregates", stdout=open("/dev/null", "w"), stderr=open("/dev/null", "w"))
    assert _metrics(staff_client, granularity="total")["interactions"]["value"] == 4
    assert not DirtyBucket.objects.exists()


def test_a_bucket_that_fails_is_parked_alone_with_its_key(department, staff_client, monkeypatch, settings):
    """Any failure (here injected for one quarter) parks that bucket only; its neighbours are computed."""
    settings.CSKPI_RECOMPUTE_MAX_ATTEMPTS = 1
    bad = (DAY + timedelta(hours=9)).astimezone(ZoneInfo("UTC"))
    real = services.cube_buckets_rebuild

    def failing(*, intervals, **kwargs):
        if any(start <= bad < end for start, end in intervals):
            raise DataError("value out of range: overflow")
        return real(intervals=intervals, **kwargs)

    monkeypatch.setattr(services, "cube_buckets_rebuild", failing)
    records_store([
        interaction_build(department=department, created_at=DAY + timedelta(hours=9)),  # the bad bucket
        interaction_build(department=department, created_at=DAY + timedelta(hours=10)),
        interaction_build(department=department, created_at=DAY + timedelta(days=1, hours=9)),
    ], then=None)
    dirty_buckets_recompute(time_budget=30)  # (the kick after commit may have run it already)
    parked = list(DirtyBucket.objects.values_list("quarter_start", "failed_at"))
    assert len(parked) == 1 and parked[0][0] == bad and parked[0][1] is not None
    status = staff_client.get("/api/v1/status").json()
    assert status["failed_buckets"] == 1
    assert f"bucket {bad.isoformat()} of department cskh-hn" in status["last_error"]
    # The neighbours (10:00 of the same day, and the next day) are in the cubes. A day is built from its
    # raw records whole, so the recompute of 10:00 counted the record at 09:00 too; the parked quarter
    # stays failed (its hour and half-hour rows were never built).
    series = _metrics(staff_client, granularity="day")["interactions"]["series"]
    assert [p["value"] for p in series] == [2, 1]
    hours = _metrics(staff_client, granularity="day", timezone="UTC")["interactions"]["series"]
    assert sum(p["value"] for p in hours) == 2
