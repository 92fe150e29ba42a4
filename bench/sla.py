"""Business hours and SLA benchmark: what a calendar and a policy cost ingestion, queries and a change.

    .venv/bin/python bench/sla.py [--small] [--reuse] [--ingest-records 100000] [--year-records 1000000]
                                  [--runs 30]

PostgreSQL database `cskpi_bench_sla` (BENCH_SLA_DB) on 127.0.0.1, user postgres; emptied and
migrated at the start (`--reuse` keeps a database that already holds the year). Redis db 3
(BENCH_SLA_REDIS_URL) for the worker of figure 3. Two departments in Asia/Ho_Chi_Minh: `sla-on` with a calendar (split shifts
Monday to Friday, a Saturday night shift, public holidays of VN) and an SLA policy in force, `sla-off`
with neither. Three figures:

1. ingest: batches of 1000 new interactions validated and upserted in-process (the API's service
   calls, without HTTP), alternating between the two departments batch by batch so both see the
   same machine; records/s of each side by side and their ratio. The recompute kick is
   disconnected for this pass (in production it is queued to a worker, not run in the request).
2. query: `sla_first_response_rate`, `first_response_time_business` and `fcr_rate` (for
   comparison) for `sla-on`, a year by day, through `kpi_series_get`; median and p95 of --runs.
3. change: the calendar of `sla-on` is replaced (then replaced back: the two runs alternate
   between two calendars), the time until its year of records is measured again and the cubes are
   recomputed (each after a VACUUM ANALYZE of the records and cubes: the tables as autovacuum
   leaves them between two changes), twice:
   - deployed: by a real Celery worker started as `make run` starts it (prefork, concurrency 2),
     from the PUT's commit until no record waits to be measured and no bucket to be recomputed
     (the remeasure task commits week by week; the other worker process recomputes those weeks);
   - one process: `pending_remeasures_run` then `dirty_buckets_recompute` in this process, one
     after the other, each timed (what the change costs on one core).

`--small` runs 20,000 ingest records and 20,000 records for the year (a check that it works).
"""

import argparse
import json
import os
import random
import signal
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import celery_worker_start, database_create, django_setup  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = os.environ.get("BENCH_SLA_DB", "cskpi_bench_sla")
REDIS_URL = os.environ.get("BENCH_SLA_REDIS_URL", "redis://127.0.0.1:6379/3")
BATCH = 1000
YEAR_START = datetime(2025, 1, 1, tzinfo=UTC)
CHANNELS = ["phone", "email", "chat", "facebook", "zalo", "web"]
STATUSES = ["open", "pending", "resolved", "resolved", "resolved", "abandoned", "missed"]
WORKDAY = [["08:00", "12:00"], ["13:00", "17:30"]]
CALENDAR = {"versions": [{"effective_from": "2024-01-01",
                          "weekly": {**{d: WORKDAY for d in ("mon", "tue", "wed", "thu", "fri")},
                                     "sat": [["22:00", "06:00"]]},
                          "holidays": ["2025-12-24"], "holiday_country": "VN"}]}
CHANGED = {"versions": [{"effective_from": "2024-01-01",
                         "weekly": {d: [["07:00", "19:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat")},
                         "holiday_country": "VN"}]}
POLICY = {"first_response_seconds": 3600, "resolution_seconds": 28800,
          "channels": {"phone": {"first_response_seconds": 60}}, "cashout_response_seconds": 900}


def fixtures_reset():
    from django.core.management import call_command
    from django.db import connection

    from cskpi.models import DepartmentCalendar, SlaPolicy
    from cskpi.services import department_calendar_put, department_sla_put, department_upsert
    from ingestion.models import Cashout, Interaction, RecordChange, ServiceLevelRemeasure
    from metrics.models import BUCKET_MODELS

    call_command("migrate", verbosity=0)
    tables = [Interaction, Cashout, RecordChange, ServiceLevelRemeasure, DepartmentCalendar, SlaPolicy,
              *(m for models in BUCKET_MODELS.values() for m in models)]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(t._meta.db_table for t in tables)}")
    on = department_upsert(slug="sla-on", name="SLA on", timezone="Asia/Ho_Chi_Minh")
    off = department_upsert(slug="sla-off", name="SLA off", timezone="Asia/Ho_Chi_Minh")
    department_calendar_put(department=on, body=CALENDAR)
    department_sla_put(department=on, body=POLICY)
    ServiceLevelRemeasure.objects.all().delete()  # nothing to measure again yet
    return on, off


def interaction(n: int, department: str, start: datetime, spacing: float, rng: random.Random) -> dict:
    created = start + timedelta(seconds=n * spacing + rng.random() * spacing)
    status = rng.choice(STATUSES)
    first = None if status in ("abandoned", "missed") or rng.random() < 0.1 else created + timedelta(
        seconds=rng.randint(5, 7200))
    return {
        "external_id": f"{department}-{start:%Y%m%d}-{n}", "source": "bench", "department": department,
        "channel": rng.choice(CHANNELS), "agent": f"a-{rng.randint(1, 40)}", "status": status,
        "created_at": created.isoformat(), "first_response_at": first and first.isoformat(),
        "resolved_at": (created + timedelta(seconds=rng.randint(60, 3 * 86400))).isoformat()
        if status == "resolved" else None,
        "wait_seconds": rng.randint(0, 300), "handle_seconds": rng.randint(30, 900),
    }


def batch_ingest(items: list[dict]) -> None:
    from ingestion.fields import RECORD_SPECS
    from ingestion.services import record_batch_upsert, record_batch_validate

    spec = RECORD_SPECS["interactions"]
    record_batch_upsert(spec=spec, rows=record_batch_validate(spec=spec, items=items))


def ingest_pass(records: int) -> dict:
    """Alternate batches of new records between the two departments; records/s of each."""
    from ingestion.signals import record_changes_marked
    from metrics.receivers import recompute_kick_on_commit

    rng = random.Random(7)
    start = datetime(2026, 3, 2, tzinfo=UTC)
    batches = {slug: [[interaction(n, slug, start, 30, rng) for n in range(i, i + BATCH)]
                      for i in range(0, records // 2, BATCH)] for slug in ("sla-on", "sla-off")}
    record_changes_marked.disconnect(recompute_kick_on_commit, dispatch_uid="metrics-recompute-kick")
    spent = {"sla-on": [], "sla-off": []}
    try:
        # Warm-up, not timed: a worker compiles a department's calendar once (public holidays included).
        for slug in ("sla-on", "sla-off"):
            batch_ingest([interaction(n, slug, start - timedelta(days=30), 30, rng) for n in range(BATCH)])
        for pair in zip(batches["sla-on"], batches["sla-off"], strict=True):
            for slug, items in sorted(zip(("sla-on", "sla-off"), pair, strict=True), key=lambda _: rng.random()):
                began = time.perf_counter()
                batch_ingest(items)
                spent[slug].append(time.perf_counter() - began)
    finally:
        record_changes_marked.connect(recompute_kick_on_commit, dispatch_uid="metrics-recompute-kick")
    return {slug: {"records_per_s": len(times) * BATCH / sum(times),
                   "batch_p50_ms": statistics.median(times) * 1000} for slug, times in spent.items()}


def year_load(records: int) -> float:
    """A year of records for `sla-on`, measured on the way in, and its cubes."""
    from cskpi.models import Department
    from ingestion.models import RecordChange
    from ingestion.signals import record_changes_marked
    from metrics.receivers import recompute_kick_on_commit
    from metrics.services import department_cubes_rebuild

    rng = random.Random(11)
    spacing = 365 * 86400 / records
    began = time.perf_counter()
    record_changes_marked.disconnect(recompute_kick_on_commit, dispatch_uid="metrics-recompute-kick")
    try:
        for i in range(0, records, BATCH):
            batch_ingest([interaction(n, "sla-on", YEAR_START, spacing, rng) for n in range(i, min(i + BATCH, records))])
    finally:
        record_changes_marked.connect(recompute_kick_on_commit, dispatch_uid="metrics-recompute-kick")
    RecordChange.objects.all().delete()
    department_cubes_rebuild(department=Department.objects.get(slug="sla-on"), chunk_days=31)
    return time.perf_counter() - began


def query_runs(runs: int) -> dict:
    from cskpi.models import Department
    from metrics.catalog import KPIS
    from metrics.selectors import DepartmentScope, KpiQuery, kpi_series_get

    department = Department.objects.get(slug="sla-on")
    figures = {}
    for kpi in ("sla_first_response_rate", "first_response_time_business", "fcr_rate"):
        query = KpiQuery(kpis=(KPIS[kpi],), scopes=(DepartmentScope(department),),
                         start=datetime(2025, 1, 1, tzinfo=UTC) - timedelta(hours=7),
                         end=datetime(2026, 1, 1, tzinfo=UTC) - timedelta(hours=7),
                         zone="Asia/Ho_Chi_Minh", granularity="day")
        kpi_series_get(query=query)  # warm
        times = []
        for _ in range(runs):
            began = time.perf_counter()
            answer = kpi_series_get(query=query)
            times.append((time.perf_counter() - began) * 1000)
        result = answer["results"][0]
        figures[kpi] = {"median_ms": statistics.median(times),
                        "p95_ms": sorted(times)[max(int(len(times) * 0.95) - 1, 0)],
                        "value": result["value"], "sample_size": result["sample_size"]}
    return figures


def _next_calendar(department) -> dict:
    """The calendar the department does not have (a database kept by --reuse holds either)."""
    current = json.dumps(department.calendar.versions) if hasattr(department, "calendar") else ""
    return CALENDAR if '"07:00"' in current else CHANGED  # only CHANGED opens at 07:00


def worker_change_run() -> dict:
    """Replace the calendar with a Celery worker running (as deployed) and wait until it is done."""
    import redis

    from cskpi.models import Department
    from cskpi.services import department_calendar_put
    from ingestion.models import RecordChange, ServiceLevelRemeasure

    redis.Redis.from_url(REDIS_URL).flushdb()  # tasks queued while no worker ran are stale
    worker = celery_worker_start("/tmp/cskpi-sla-worker.log", "--concurrency", "2")  # as bin/serve starts it
    try:
        time.sleep(5)  # the pool up
        department = Department.objects.get(slug="sla-on")
        began = time.perf_counter()
        department_calendar_put(department=department, body=_next_calendar(department))  # queues the remeasure
        while True:
            time.sleep(0.2)
            if worker.poll() is not None:
                raise RuntimeError("the worker exited; see /tmp/cskpi-sla-worker.log")
            if RecordChange.objects.filter(failed_at__isnull=False).exists():
                raise RuntimeError("a recompute failed; see /tmp/cskpi-sla-worker.log")
            if not ServiceLevelRemeasure.objects.exists() and not RecordChange.objects.exists():
                break
        done = time.perf_counter()
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    return {"total_s": done - began}


def change_run() -> dict:
    """Replace the calendar and run the measuring, then the recompute, in this process, each timed."""
    from cskpi.models import Department
    from cskpi.services import department_calendar_put
    from ingestion.models import Interaction, RecordChange, ServiceLevelRemeasure
    from ingestion.service_levels import pending_remeasures_run
    from ingestion.signals import record_changes_marked
    from metrics.receivers import recompute_kick_on_commit
    from metrics.services import dirty_buckets_recompute

    department = Department.objects.get(slug="sla-on")
    before = dict(Interaction.objects.filter(department=department).values_list("id", "first_response_sla"))
    body = _next_calendar(department)
    began = time.perf_counter()
    # The two phases one after the other (a worker interleaves them), so each can be timed.
    record_changes_marked.disconnect(recompute_kick_on_commit, dispatch_uid="metrics-recompute-kick")
    try:
        department_calendar_put(department=department, body=body)
        pending_remeasures_run(time_budget=3600)
    finally:
        record_changes_marked.connect(recompute_kick_on_commit, dispatch_uid="metrics-recompute-kick")
    measured = time.perf_counter()
    marks = RecordChange.objects.count()
    while dirty_buckets_recompute(time_budget=3600, batch=20_000).exhausted:
        pass
    done = time.perf_counter()
    assert not ServiceLevelRemeasure.objects.exists() and not RecordChange.objects.exists()
    after = dict(Interaction.objects.filter(department=department).values_list("id", "first_response_sla"))
    return {"records": len(after), "changed": sum(1 for k, v in after.items() if before.get(k) != v),
            "total_s": done - began, "measure_s": measured - began, "recompute_s": done - measured,
            "marks": marks}



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="20,000 ingest records, 20,000 for the year")
    parser.add_argument("--ingest-records", type=int, default=100_000)
    parser.add_argument("--year-records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--reuse", action="store_true",
                        help="keep the database's year of records (skip ingest and load) when it holds one")
    args = parser.parse_args()
    if args.small:
        args.ingest_records, args.year_records, args.runs = 20_000, 20_000, 10
    database_create(DB_NAME)
    django_setup(DB_NAME, redis_url=REDIS_URL)
    if args.reuse and _year_loaded(args.year_records):
        print(f"reusing the database's year of {args.year_records:,} interactions (--reuse)")
    else:
        _ingest_and_load(args)
    for kpi, figures in query_runs(args.runs).items():
        print(f"query {kpi}, a year by day: median {figures['median_ms']:.1f} ms, p95 {figures['p95_ms']:.1f} ms "
              f"(value {figures['value']}, n {figures['sample_size']:,})")

    _vacuum()
    deployed = worker_change_run()
    print(f"calendar change, deployed (Celery worker, 2 processes): {args.year_records:,} records measured again "
          f"and their cubes recomputed in {deployed['total_s']:.1f} s (target: 1M in < 60 s)")
    _vacuum()
    change = change_run()
    print(f"calendar change, one process: {change['records']:,} records measured again "
          f"({change['changed']:,} changed state) and their cubes recomputed in {change['total_s']:.1f} s: "
          f"measuring {change['measure_s']:.1f} s ({change['marks']:,} quarter marks), "
          f"then the recompute {change['recompute_s']:.1f} s")


def _vacuum() -> None:
    """VACUUM ANALYZE the records and their cubes before a change is timed: the tables as autovacuum
    leaves them between two changes. Right after a bulk load (or the previous change's million updated
    rows) autovacuum would otherwise run during the timing, and the first pass over fresh rows sets
    every page's hint bits: 60 s instead of ~40 s for the same change."""
    from django.db import connection

    from ingestion.models import Interaction
    from metrics.models import BUCKET_MODELS

    with connection.cursor() as cursor:
        for model in (Interaction, *BUCKET_MODELS["interaction"]):
            cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")


def _year_loaded(records: int) -> bool:
    from ingestion.models import Interaction

    return Interaction.objects.filter(department__slug="sla-on").count() == records


def _ingest_and_load(args) -> None:
    fixtures_reset()
    ingest = ingest_pass(args.ingest_records)
    on, off = ingest["sla-on"], ingest["sla-off"]
    print(f"ingest ({args.ingest_records:,} new interactions, batches of {BATCH}, alternating, in-process):")
    print(f"  calendar + policy in force: {on['records_per_s']:,.0f} records/s (batch p50 {on['batch_p50_ms']:.1f} ms)")
    print(f"  neither:                    {off['records_per_s']:,.0f} records/s (batch p50 {off['batch_p50_ms']:.1f} ms)")
    print(f"  ratio: {on['records_per_s'] / off['records_per_s']:.3f} of records/s, "
          f"{off['batch_p50_ms'] / on['batch_p50_ms']:.3f} of batch medians (target >= 0.85)")

    fixtures_reset()
    loaded = year_load(args.year_records)
    print(f"year: {args.year_records:,} interactions of sla-on ingested and cubes built in {loaded:.1f} s")


if __name__ == "__main__":
    main()
