"""Distinct-customer benchmark: /api/v1/metrics against COUNT(DISTINCT) over the raw rows on the fly.

    .venv/bin/python bench/customers.py [--records 5000000] [--departments 1] [--regenerate] [--runs 30]

PostgreSQL database cskpi_bench_cust on 127.0.0.1 (user postgres): N interactions over a year with
N/5 customer ids drawn uniformly (so ~N/5 distinct customers, each ~5 interactions), 63 regions,
6 channels, in one department by default (the heaviest case for one department's query). The cubes
are built by the same code as `manage.py rebuild_aggregates`; data and cubes are reused when the
sizes match. Prints the storage of the distinct-set tables per million interactions, then median
and p95 latency of:
  (c) customers, one department, by day for a year (365 points and the year's distinct total);
  (n) new_customers, one department, by month for a year (12 points and the year's total);
through the API (Django test client: routing, auth, parsing, SQL, JSON) beside the same answer
computed on the fly in PostgreSQL (COUNT(DISTINCT customer) per day; first interaction per customer
over the department's whole history for new customers). The answers are asserted equal.
"""

import argparse
import os
import statistics
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from common import database_create, django_setup, migrate, p95, timed  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BENCH_DB = os.environ.get("BENCH_CUSTOMERS_DB", "cskpi_bench_cust")
ZONE = "Asia/Ho_Chi_Minh"
YEAR_START = "2025-01-01 00:00:00+07"
CHANNELS = ["phone", "email", "chat", "facebook", "zalo", "web"]
REGIONS = 63  # Vietnam's provinces
CHUNK = 500_000

_INSERT = """
INSERT INTO ingestion_interaction (department_id, source, external_id, content_hash, received_at, channel, agent,
    customer, customer_region, created_at, status, contact_count, self_service)
SELECT (%(departments)s::bigint[])[1 + g %% %(n_departments)s], 'bench', 'i-' || g, md5(g::text), now(),
       (%(channels)s::text[])[1 + floor(random() * %(n_channels)s)::int],
       'a-' || floor(random() * 25)::int,
       'cu-' || floor(random() * %(customers)s)::bigint,
       CASE WHEN random() < 0.95 THEN 'r-' || floor(random() * %(regions)s)::int END,
       TIMESTAMPTZ %(year_start)s + (g::float8 / %(records)s) * interval '365 days'
           + floor(random() * 1800) * interval '1 second',
       'open', 1, false
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) g
"""

# On the fly: the same numbers from the raw rows.
RAW_CUSTOMERS = """
SELECT date_trunc('day', created_at AT TIME ZONE %(zone)s) AS day, count(DISTINCT customer)
FROM ingestion_interaction
WHERE department_id = %(department)s AND created_at >= %(start)s AND created_at < %(end)s AND customer IS NOT NULL
GROUP BY GROUPING SETS ((1), ()) ORDER BY 1 NULLS LAST
"""
RAW_NEW_CUSTOMERS = """
WITH firsts AS (
    SELECT customer, min(created_at) AS first_at FROM ingestion_interaction
    WHERE department_id = %(department)s AND customer IS NOT NULL GROUP BY customer
)
SELECT date_trunc('month', first_at AT TIME ZONE %(zone)s) AS month, count(*)
FROM firsts WHERE first_at >= %(start)s AND first_at < %(end)s
GROUP BY GROUPING SETS ((1), ()) ORDER BY 1 NULLS LAST
"""
SET_TABLES = ("metrics_customerkey", "metrics_customerfirstcontact")
# The interaction cube table's columns holding sets (metrics.models: one table per record type since 0027).
SET_COLUMNS = ("customers", "first_contact_customers")


def bench_data_ensure(*, records: int, n_departments: int, regenerate: bool) -> dict:
    database_create(BENCH_DB, regenerate=regenerate)
    django_setup(BENCH_DB)
    from django.db import connection

    from cskpi.services import department_upsert
    from ingestion.models import Interaction, RecordChange
    from metrics.models import BUCKET_MODELS, CustomerFirstContact
    from metrics.services import department_cubes_rebuild

    migrate()
    departments = [department_upsert(slug=f"cust-{i:02d}", name=f"Customers {i}", timezone=ZONE)
                   for i in range(n_departments)]
    info: dict = {}
    if Interaction.objects.count() != records:
        Interaction.objects.all().delete()
        for model in (*BUCKET_MODELS["interaction"], CustomerFirstContact, RecordChange):
            model.objects.all().delete()
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SELECT setseed(0.42)")
            for lo in range(0, records, CHUNK):
                cursor.execute(_INSERT, {
                    "departments": [d.id for d in departments], "n_departments": n_departments,
                    "channels": CHANNELS, "n_channels": len(CHANNELS), "customers": max(records // 5, 1),
                    "regions": REGIONS, "year_start": YEAR_START, "records": records, "lo": lo,
                    "hi": min(lo + CHUNK, records) - 1,
                })
                print(f"  raw interactions: {min(lo + CHUNK, records):,}/{records:,}", flush=True)
            cursor.execute("ANALYZE ingestion_interaction")
        info["generate_seconds"] = time.perf_counter() - started
    if not BUCKET_MODELS["interaction"][0].objects.exists():
        started = time.perf_counter()
        for i, department in enumerate(departments):
            department_cubes_rebuild(department=department, chunk_days=31)
            print(f"  cubes rebuilt: {i + 1}/{n_departments} departments", flush=True)
        RecordChange.objects.all().delete()  # nothing moved: a fresh rebuild walks history in order
        with connection.cursor() as cursor:
            for table in ("metrics_interactionbucket", *SET_TABLES):
                cursor.execute(f"ANALYZE {table}")
        info["rebuild_seconds"] = time.perf_counter() - started
    info["raw_rows"] = Interaction.objects.count()
    return info


def storage_print(raw: int) -> None:
    from django.db import connection

    per_million = 1_000_000 / raw
    with connection.cursor() as cursor:
        print(f"\n  {'table / cube':<52} {'rows':>11} {'MB (with indexes)':>18} {'MB per 1M interactions':>23}")
        for table in SET_TABLES:
            cursor.execute(f"SELECT count(*), pg_total_relation_size('{table}') FROM {table}")
            rows, size = cursor.fetchone()
            print(f"  {table:<52} {rows:>11,} {size / 2**20:>18.1f} {size / 2**20 * per_million:>23.1f}")
        for column in SET_COLUMNS:
            cursor.execute(f"SELECT cube, count({column}), sum(pg_column_size({column})) FROM metrics_interactionbucket "
                           f"GROUP BY 1 HAVING count({column}) > 0 ORDER BY 2")
            for cube, rows, size in cursor.fetchall():
                print(f"    {column + ': ' + cube:<50} {rows:>11,} {size / 2**20:>18.1f} {size / 2**20 * per_million:>23.1f}"
                      "  (the column's bytes)")
        cursor.execute("SELECT count(*), sum(pg_column_size(t.*)) FROM metrics_interactionbucket t "
                       "WHERE cube = 'day_region_segment'")
        rows, size = cursor.fetchone()
        print(f"  {'counts cube day_region_segment (new)':<52} {rows:>11,} {(size or 0) / 2**20:>18.1f} "
              f"{(size or 0) / 2**20 * per_million:>23.1f}  (heap only)")
        cursor.execute("SELECT pg_total_relation_size('ingestion_interaction')")
        print(f"  raw interactions with indexes: {cursor.fetchone()[0] / 2**20:,.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=5_000_000)
    parser.add_argument("--departments", type=int, default=1)
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--raw-runs", type=int, default=5)
    args = parser.parse_args()

    info = bench_data_ensure(records=args.records, n_departments=args.departments, regenerate=args.regenerate)

    from django.db import connection
    from rest_framework.test import APIClient

    from cskpi.models import Department
    from cskpi.services import token_issue, user_grants_upsert

    raw = info["raw_rows"]
    print(f"\nraw interactions: {raw:,}; customers drawn from {raw // 5:,} ids")
    for key in ("generate_seconds", "rebuild_seconds"):
        if key in info:
            print(f"{key}: {info[key]:.1f}")
    storage_print(raw)

    department = Department.objects.get(slug="cust-00")
    user = user_grants_upsert(username="bench-manager", grants=[(department.slug, "manager")])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_issue(user=user)}")
    tz = ZoneInfo(ZONE)
    sql_params = {"zone": ZONE, "department": department.id, "start": datetime(2025, 1, 1, tzinfo=tz),
                  "end": datetime(2026, 1, 1, tzinfo=tz)}
    cases = (
        ("(c) customers, one department, by day, a year", {"kpi": "customers", "granularity": "day"},
         RAW_CUSTOMERS),
        ("(n) new_customers, one department, by month, a year", {"kpi": "new_customers", "granularity": "month"},
         RAW_NEW_CUSTOMERS),
    )
    print(f"\n{'query':<58} {'median ms':>10} {'p95 ms':>8}   COUNT(DISTINCT) ÷ API median")
    for name, params, raw_sql in cases:
        query_params = {**params, "start": "2025-01-01", "end": "2026-01-01", "department": department.slug}
        api, response = timed(lambda qp=query_params: client.get("/api/v1/metrics", qp), args.runs, warmup=2)
        assert response.status_code == 200, response.json()

        def on_the_fly(sql=raw_sql):
            with connection.cursor() as cursor:
                cursor.execute(sql, sql_params)
                return cursor.fetchall()

        fly, rows = timed(on_the_fly, args.raw_runs, warmup=1)
        _same_answer(name, response.json()["results"][0], rows)
        ratio = statistics.median(fly) / statistics.median(api)
        print(f"{name:<58}")
        print(f"  {'API /api/v1/metrics':<56} {statistics.median(api):>10.2f} {p95(api):>8.2f}   {ratio:8.1f}×")
        print(f"  {'on the fly: COUNT(DISTINCT) over raw rows':<56} {statistics.median(fly):>10.2f} {p95(fly):>8.2f}")


def _same_answer(name: str, result: dict, rows: list[tuple]) -> None:
    """The API's series and total equal the on-the-fly rows (periods without customers: 0)."""
    *periods, (_, total) = rows
    by_start = {start.date(): n for start, n in periods}
    api_points = {datetime.fromisoformat(p["start"]).date(): p["value"] for p in result["series"]}
    assert set(by_start) <= set(api_points), name
    for day, value in api_points.items():
        assert value == by_start.get(day, 0), (name, day, value, by_start.get(day, 0))
    assert result["value"] == total, (name, result["value"], total)


if __name__ == "__main__":
    main()
