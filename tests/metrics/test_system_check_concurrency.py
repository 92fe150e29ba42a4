"""Concurrent writers into one series of system checks on PostgreSQL, with recomputes running meanwhile:
the interval KPI ends exact. Each writer's successor marks are read under the series' advisory lock
(ingestion.services._successor_marks), so a writer that commits second sees the first one's checks; a
recompute that ran between the two commits is corrected by the second one's marks."""

import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from ingestion.models import RecordChange, SystemCheck
from metrics.catalog import KPIS
from metrics.selectors import DepartmentScope, KpiQuery, kpi_series_get
from tests.factories import DepartmentFactory
from tests.metrics.records import recompute_all, system_checks_upsert

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WRITERS = 4
ROUNDS = 6
T0 = datetime(2026, 5, 4, 8, tzinfo=UTC)


def test_concurrent_writers_into_one_series_leave_exact_intervals(db):
    department = DepartmentFactory(slug="ops", timezone="UTC")
    barrier = threading.Barrier(WRITERS)
    failures: list = []
    done = threading.Event()

    def writer(n: int) -> None:
        rng = random.Random(n)
        try:
            for round_ in range(ROUNDS):
                barrier.wait(timeout=30)
                # Interleaved in time with the other writers' runs, so each insert lands between theirs.
                minutes = [rng.randrange(0, 8 * 60) for _ in range(5)]
                system_checks_upsert([
                    {"external_id": f"w{n}-r{round_}-{i}", "department": "ops", "check": "payout-gateway",
                     "at": (T0 + timedelta(minutes=m, seconds=n)).isoformat(), "outcome": "ok"}
                    for i, m in enumerate(minutes)
                ])
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append((n, repr(exc)))
        finally:
            connection.close()

    def recomputer() -> None:
        try:
            while not done.is_set():
                recompute_all()
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(("recompute", repr(exc)))
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    threads.append(threading.Thread(target=recomputer))
    for thread in threads:
        thread.start()
    for thread in threads[:-1]:
        thread.join(timeout=180)
    done.set()
    threads[-1].join(timeout=180)
    assert failures == []
    recompute_all()
    assert not RecordChange.objects.exists()

    ats = sorted(SystemCheck.objects.values_list("at", flat=True))
    assert len(ats) == WRITERS * ROUNDS * 5
    query = KpiQuery(kpis=(KPIS["system_check_interval"],), scopes=(DepartmentScope(department),), start=T0,
                     end=T0 + timedelta(hours=8), zone="UTC", granularity="hour")
    (result,) = kpi_series_get(query=query)["results"]
    gaps: dict[int, list[float]] = {}
    for previous, at in zip(ats, ats[1:], strict=False):
        gaps.setdefault(at.hour, []).append((at - previous).total_seconds())
    assert result["sample_size"] == len(ats) - 1
    for point in result["series"]:
        hour = datetime.fromisoformat(point["start"]).hour
        expected = gaps.get(hour, [])
        assert point["sample_size"] == len(expected)
        assert point["value"] == (pytest.approx(sum(expected) / len(expected)) if expected else None)


def test_a_writer_that_read_its_successors_commits_after_a_later_writer_and_a_recompute(db, monkeypatch):
    """The race the series lock closes, forced: `early` inserts 10:20 and reads its successors (11:00),
    then waits; `late` inserts 10:40 and commits; a recompute runs; `early` commits. Without the lock
    `late` never sees 10:20, marks only 11:00, and 10:40 keeps the gap from 10:00 it was recomputed
    with. With it, `late` waits for `early` to commit before reading its successors."""
    from ingestion import services

    department = DepartmentFactory(slug="ops", timezone="UTC")
    day = datetime(2026, 5, 4, tzinfo=UTC)

    def post(key: str, hour: int, minute: int) -> None:
        system_checks_upsert([{"external_id": key, "department": "ops", "check": "bank-api", "outcome": "ok",
                               "at": (day + timedelta(hours=hour, minutes=minute)).isoformat()}])

    post("a", 10, 0)
    post("b", 11, 0)
    recompute_all()
    early_read, late_done = threading.Event(), threading.Event()
    original = services._successor_marks

    def paused(table, places):
        marks = original(table, places)
        if threading.current_thread().name == "early":
            early_read.set()
            late_done.wait(timeout=3)  # with the lock, `late` cannot finish before `early` commits
        return marks

    monkeypatch.setattr(services, "_successor_marks", paused)

    def run(key: str, minute: int) -> None:
        try:
            post(key, 10, minute)
        finally:
            connection.close()

    early = threading.Thread(target=run, args=("early", 20), name="early")
    late = threading.Thread(target=run, args=("late", 40), name="late")
    early.start()
    assert early_read.wait(timeout=30)
    late.start()
    late.join(timeout=30)
    recompute_all()
    late_done.set()
    early.join(timeout=30)
    recompute_all()
    query = KpiQuery(kpis=(KPIS["system_check_interval"],), scopes=(DepartmentScope(department),),
                     start=day + timedelta(hours=10), end=day + timedelta(hours=12), zone="UTC", granularity="hour")
    (result,) = kpi_series_get(query=query)["results"]
    # 10:00, 10:20, 10:40, 11:00: every gap is 1200 s.
    assert [(p["value"], p["sample_size"]) for p in result["series"]] == [(1200.0, 2), (1200.0, 1)]
