"""What the benchmarks share: a benchmark database, Django on it, and timing.

Each benchmark script runs as `python bench/<name>.py`, so this folder is on its import path."""

import argparse
import os
import statistics
import sys
import time
from datetime import UTC
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def database_create(name: str, *, regenerate: bool = False) -> None:
    """The PostgreSQL database `name` on 127.0.0.1 (user postgres), created if missing, dropped first
    when `regenerate`."""
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and regenerate:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def django_setup(name: str, *, statement_timeout_ms: int = 600_000, redis_url: str | None = None) -> None:
    """Django on the benchmark database `name`, with a statement timeout long enough for generating
    and rebuilding; without Redis (recomputes run in-process, nothing is queued) unless `redis_url`
    is given (tasks are then queued for a worker the benchmark starts)."""
    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{name}"
    if redis_url:
        os.environ["REDIS_URL"] = redis_url
    else:
        os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cskpi.settings")
    os.environ.setdefault("DATABASE_STATEMENT_TIMEOUT_MS", str(statement_timeout_ms))
    os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def celery_worker_start(log_path: str, *pool: str):
    """A real Celery worker of the project (subprocess, this process's environment: its database and
    REDIS_URL), logging to `log_path` (at BENCH_WORKER_LOGLEVEL, WARNING unless set: INFO shows each
    task and pool process); `pool` are the pool options (e.g. "--concurrency", "2")."""
    import subprocess

    log = open(log_path, "w")  # noqa: SIM115 - the worker writes to it until it stops
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "celery"), "-A", "cskpi", "worker", *pool, "--loglevel", os.environ.get("BENCH_WORKER_LOGLEVEL", "WARNING"),
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT,
    )


def timed(fn, runs: int, warmup: int = 3) -> tuple[list[float], object]:
    """(milliseconds of each of `runs` calls after `warmup` calls, the last result)."""
    result = None
    for _ in range(warmup):
        result = fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples, result


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def migrate() -> None:
    """Migrate the benchmark database, then rebuild the cubes of every department the migrations
    marked (a migration that adds a cube marks the buckets it must fill; rebuilding from the raw
    records gives the same rows sooner than recomputing a year of scattered marks): a reused
    database is measured with complete cubes."""
    from django.core.management import call_command

    from cskpi.models import Department
    from ingestion.models import RecordChange
    from metrics.services import department_cubes_rebuild

    call_command("migrate", verbosity=0)
    marked = list(RecordChange.objects.values_list("department_id", flat=True).distinct().order_by())
    if marked:
        started = time.perf_counter()
        for department in Department.objects.filter(id__in=marked):
            department_cubes_rebuild(department=department, chunk_days=31)
        RecordChange.objects.all().delete()
        print(f"rebuilt the cubes of {len(marked)} departments the migrations marked in "
              f"{time.perf_counter() - started:.1f} s", flush=True)


def engine_reads_main(shapes, served_by_make) -> None:
    """The main of a script timing engine reads (`engine_reads_print`) on the database BENCH_QUERY_DB
    (default cskpi_bench_q, the 5M one): `served_by_make()`, called once Django is set up, gives the
    function naming the cubes that served a query."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    database = os.environ.get("BENCH_QUERY_DB", "cskpi_bench_q")
    django_setup(database)
    engine_reads_print(shapes, runs=args.runs, database=database, served_by=served_by_make())


def engine_reads_print(shapes, *, runs: int, database: str, served_by) -> None:
    """Time KPI reads through `kpi_series_get` (the engine, no HTTP) on the query benchmark's bench-03 and
    print a table: per shape (name, KPI, zone, local (start, end), granularity, group_by), the cubes that
    served it (`served_by(query, boundaries)`), the median of `runs` and the sum of the series' values (of
    the range's values for granularity total), which every path to the same answer must give equal."""
    from zoneinfo import ZoneInfo

    from cskpi.models import Department
    from metrics.catalog import KPIS
    from metrics.periods import boundaries_get
    from metrics.selectors import DepartmentScope, KpiQuery, kpi_series_get

    department = Department.objects.get(slug="bench-03")
    print(f"database {database}, department bench-03, median of {runs}")
    print("| query | cube | median | sum of values |")
    print("|---|---|---|---|")
    for name, kpi, zone, (start, end), granularity, group_by in shapes:
        tz = ZoneInfo(zone)
        query = KpiQuery(kpis=(KPIS[kpi],), scopes=(DepartmentScope(department),),
                         start=start.replace(tzinfo=tz).astimezone(UTC), end=end.replace(tzinfo=tz).astimezone(UTC),
                         zone=zone, granularity=granularity, group_by=group_by)
        boundaries = boundaries_get(start=query.start, end=query.end, zone=tz, granularity=granularity)
        times, answer = timed(lambda query=query: kpi_series_get(query=query), runs, warmup=0)
        total = sum(point["value"] or 0 for result in answer["results"] for point in result["series"]) \
            if granularity != "total" else sum(result["value"] or 0 for result in answer["results"])
        print(f"| {name} | {served_by(query, boundaries)} | {statistics.median(times):,.1f} ms | {total:,.0f} |")
