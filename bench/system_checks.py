"""System checks: what the interval KPI (a gap to each run's predecessor) costs, on PostgreSQL.

    .venv/bin/python bench/system_checks.py [--checks 200000] [--probes 20]
    .venv/bin/python bench/system_checks.py --small          # 5,000 checks: proves the script works

Database cskpi_bench_checks (created if missing, emptied each run), recompute in-process (no Redis).
1. Generates the checks of one department (Asia/Ho_Chi_Minh): `--probes` checks, each run about every
   `--every` seconds (60) with jitter, 2 % failed (generate_series).
2. Rebuilds the department's aggregates from raw (`department_cubes_rebuild`: the exact layer's build
   probes the series index once per check) and prints the time.
3. Compares system_check_interval by check and day with an independent SQL computation (LAG over the
   raw table, in the department's zone): every value must match.
4. Writes 1,000 late checks, each between two stored runs, through the upsert (successor marks under
   the series lock), then recomputes: prints the ingest time, the marks and the recompute time.
5. Times the query (a month by day, grouped by check) through kpi_series_get: median of 20.
"""

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import database_create  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BENCH_DB = "cskpi_bench_checks"
BENCH_URL = f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}"
ZONE = "Asia/Ho_Chi_Minh"
START = datetime(2026, 3, 1, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checks", type=int, default=200_000)
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--every", type=float, default=60.0, help="seconds between two runs of one probe")
    parser.add_argument("--small", action="store_true", help="5,000 checks")
    args = parser.parse_args()
    total = 5_000 if args.small else args.checks
    probes = args.probes

    database_create(BENCH_DB)
    os.environ.update(DATABASE_URL=BENCH_URL, DJANGO_SETTINGS_MODULE="cskpi.settings", LOG_LEVEL="WARNING")
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from cskpi.services import department_upsert
    from ingestion.fields import SYSTEM_CHECK
    from ingestion.models import RecordChange, SystemCheck
    from ingestion.services import record_batch_upsert, record_batch_validate
    from metrics.catalog import KPIS
    from metrics.models import BUCKET_MODELS
    from metrics.selectors import DepartmentScope, KpiQuery, kpi_series_get
    from metrics.services import department_cubes_rebuild, dirty_buckets_recompute

    call_command("migrate", verbosity=0)
    for model in (SystemCheck, RecordChange, *BUCKET_MODELS[SYSTEM_CHECK.record_type]):
        model.objects.all().delete()
    department = department_upsert(slug="ops", name="Ops", timezone=ZONE)
    per_probe = total // probes
    every = args.every
    days = per_probe * every / 86400
    print(f"{per_probe * probes} checks, {probes} probes, one run per probe every {every:.0f} s, {days:.1f} days")

    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO ingestion_systemcheck (department_id, source, external_id, updated_at, content_hash,
                   received_at, check_name, at, outcome, duration_ms, detail)
               SELECT %s, 'bench', 'k-' || p || '-' || n, NULL, md5(p || '-' || n), now(), 'probe-' || p,
                      %s + make_interval(secs => n * %s + random() * %s * 0.5),
                      CASE WHEN random() < 0.02 THEN 'failed' ELSE 'ok' END, (random() * 500)::int, NULL
               FROM generate_series(1, %s) AS p, generate_series(0, %s - 1) AS n""",
            [department.id, START, every, every, probes, per_probe],
        )
        cursor.execute("ANALYZE ingestion_systemcheck")
    print(f"generated in {time.monotonic() - started:.1f} s")

    started = time.monotonic()
    department_cubes_rebuild(department=department, chunk_days=7)
    rebuild = time.monotonic() - started
    print(f"rebuild from raw: {rebuild:.2f} s ({SystemCheck.objects.count() / rebuild:,.0f} checks/s)")

    end = START + timedelta(days=int(days) + 2)
    day0 = datetime(2026, 3, 1, tzinfo=UTC).astimezone(UTC)

    def interval_by_check_and_day() -> dict:
        query = KpiQuery(kpis=(KPIS["system_check_interval"],), scopes=(DepartmentScope(department),),
                         start=day0 - timedelta(hours=7), end=end - timedelta(hours=7), zone=ZONE, granularity="day",
                         group_by=("check",))
        return {(r["group"]["check"], p["start"][:10]): (p["value"], p["sample_size"])
                for r in kpi_series_get(query=query)["results"] for p in r["series"] if p["sample_size"]}

    def lag_reference() -> dict:
        with connection.cursor() as cursor:
            cursor.execute(
                """SELECT check_name, to_char(date_trunc('day', at AT TIME ZONE %s), 'YYYY-MM-DD'),
                          avg(gap), count(gap)
                   FROM (SELECT check_name, at,
                                EXTRACT(EPOCH FROM at - lag(at) OVER (PARTITION BY check_name ORDER BY at, id)) AS gap
                         FROM ingestion_systemcheck WHERE department_id = %s) s
                   WHERE gap IS NOT NULL GROUP BY 1, 2""",
                [ZONE, department.id],
            )
            return {(c, d): (float(avg), n) for c, d, avg, n in cursor.fetchall()}

    def compare(label: str) -> None:
        got, want = interval_by_check_and_day(), lag_reference()
        assert set(got) == set(want), f"{label}: groups differ"
        for key, (value, n) in want.items():
            assert got[key][1] == n and abs(got[key][0] - value) <= 1e-6 * max(1.0, value), (label, key, got[key], n)
        print(f"{label}: {len(want)} check × day values equal the LAG computation over the raw table")

    compare("after the rebuild")

    # Late checks, each halfway between two stored runs of its probe.
    pairs = list(SystemCheck.objects.filter(department=department).order_by("?").values_list("check_name", "at")[:1000])
    items = [{"external_id": f"late-{i}", "source": "bench", "department": "ops", "check": name,
              "at": (at + timedelta(seconds=every / 3)).isoformat(), "outcome": "ok"} for i, (name, at) in
             enumerate(pairs)]
    RecordChange.objects.all().delete()
    with transaction.atomic():  # the in-process recompute runs on commit: count the marks before it
        started = time.monotonic()
        rows = record_batch_validate(spec=SYSTEM_CHECK, items=items)
        record_batch_upsert(spec=SYSTEM_CHECK, rows=rows)
        ingest = time.monotonic() - started
        marks = RecordChange.objects.count()
        started = time.monotonic()
    dirty_buckets_recompute(time_budget=600)  # nothing left if the commit's recompute did it all
    recompute = time.monotonic() - started
    assert not RecordChange.objects.exists()
    print(f"1,000 late checks: upsert {ingest * 1000:.0f} ms, {marks} quarters marked (own and successors'), "
          f"recompute of them {recompute * 1000:.0f} ms")
    compare("after the late checks")

    timings = []
    for _ in range(20):
        started = time.monotonic()
        interval_by_check_and_day()
        timings.append((time.monotonic() - started) * 1000)
    print(f"query (interval by check × day over {int(days) + 2} days): median {statistics.median(timings):.1f} ms, "
          f"max {max(timings):.1f} ms")


if __name__ == "__main__":
    main()
