"""Customer registry benchmark: the registry KPIs by month for a year through /api/v1/metrics.

    .venv/bin/python bench/customer_registry.py [--customers 1000000 | --small] [--runs 50] [--regenerate]

PostgreSQL database cskpi_bench_customers on 127.0.0.1 (user postgres; BENCH_CUSTOMERS_DB overrides):
N customers (default 1,000,000; --small: 10,000) of one department (Asia/Ho_Chi_Minh) who started
uniformly over 2025, 30 % of them ended 1-300 days later, 10 regions, 3 segments, an MRR each.
Generated with generate_series, cubes built by the rebuild (`manage.py rebuild_aggregates`'s code);
reused when the database already holds N customers. Prints the stock table's rows and bytes per cube,
then median and p95 of each query through the API (Django test client: routing, bearer auth, access,
parsing, SQL, JSON), and the same month series computed on the fly from the raw rows, which the
script asserts is equal.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import django_setup, migrate, p95, timed  # noqa: E402

BENCH_DB = os.environ.get("BENCH_CUSTOMERS_DB", "cskpi_bench_customers")
ZONE = "Asia/Ho_Chi_Minh"
YEAR = {"start": "2025-01-01", "end": "2026-01-01"}
REGISTRY_KPIS = "customer_base,customers_started,customers_churned,retention_rate,churn_rate,mrr,revenue_churn_rate"
CHUNK = 250_000

_INSERT = """
INSERT INTO ingestion_customer (department_id, source, external_id, content_hash, received_at, customer_region,
    segment, started_at, ended_at, mrr, currency)
SELECT %(department)s, 'bench', 'c-' || g, md5(g::text), now(), 'region-' || (g %% 10),
       (ARRAY['basic', 'plus', 'premium'])[1 + g %% 3], started_at,
       CASE WHEN random() < 0.3 THEN started_at + (1 + random() * 299) * interval '1 day' END,
       round((50000 + random() * 950000)::numeric, 2), 'VND'
FROM (SELECT g, TIMESTAMPTZ '2025-01-01 00:00:00+07' + random() * interval '365 days' AS started_at
      FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) g) s
"""
# The month series on the fly: per month [t0, t1), from the definitions (active at t: started_at < t and
# (no ended_at or ended_at >= t)).
RAW = """
WITH months AS (
    SELECT m AS t0, m + interval '1 month' AS t1
    FROM generate_series(TIMESTAMP '2025-01-01', TIMESTAMP '2025-12-01', interval '1 month') m
), bounds AS (
    SELECT t0 AT TIME ZONE %(zone)s AS t0, t1 AT TIME ZONE %(zone)s AS t1 FROM months
)
SELECT b.t0,
       count(*) FILTER (WHERE c.started_at < b.t1 AND (c.ended_at IS NULL OR c.ended_at >= b.t1)),
       count(*) FILTER (WHERE c.started_at >= b.t0 AND c.started_at < b.t1),
       count(*) FILTER (WHERE c.ended_at >= b.t0 AND c.ended_at < b.t1),
       count(*) FILTER (WHERE c.started_at < b.t0 AND (c.ended_at IS NULL OR c.ended_at >= b.t0)),
       count(*) FILTER (WHERE c.started_at < b.t0 AND c.ended_at >= b.t0 AND c.ended_at < b.t1),
       sum(c.mrr) FILTER (WHERE c.started_at < b.t1 AND (c.ended_at IS NULL OR c.ended_at >= b.t1))
FROM bounds b CROSS JOIN ingestion_customer c
WHERE c.department_id = %(department)s
GROUP BY b.t0 ORDER BY b.t0
"""


def data_ensure(*, customers: int, regenerate: bool) -> dict:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone()
        if exists and regenerate:
            conn.execute(f'DROP DATABASE "{BENCH_DB}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    django_setup(BENCH_DB)
    from django.db import connection

    from cskpi.services import department_upsert
    from ingestion.models import Customer
    from metrics.models import BUCKET_MODELS
    from metrics.services import department_cubes_rebuild

    migrate()
    department = department_upsert(slug="bench-customers", name="Bench customers", timezone=ZONE)
    info: dict = {"department": department}
    if Customer.objects.filter(department=department).count() != customers:
        Customer.objects.all().delete()
        for model in BUCKET_MODELS["customer"]:
            model.objects.all().delete()
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SELECT setseed(0.42)")
            for lo in range(0, customers, CHUNK):
                cursor.execute(_INSERT, {"department": department.id, "lo": lo, "hi": min(lo + CHUNK, customers) - 1})
                print(f"  raw customers: {min(lo + CHUNK, customers):,}/{customers:,}", flush=True)
            cursor.execute("ANALYZE ingestion_customer")
        info["generate_seconds"] = time.perf_counter() - started
        started = time.perf_counter()
        department_cubes_rebuild(department=department, chunk_days=31)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE metrics_customerstockbucket")
        info["rebuild_seconds"] = time.perf_counter() - started
    return info


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--small", action="store_true", help="10,000 customers: proves the script works")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--regenerate", action="store_true")
    args = parser.parse_args()
    customers = 10_000 if args.small else args.customers

    info = data_ensure(customers=customers, regenerate=args.regenerate)
    from django.db import connection
    from rest_framework.test import APIClient

    from cskpi.services import token_issue, user_grants_upsert

    department = info["department"]
    for key in ("generate_seconds", "rebuild_seconds"):
        if key in info:
            print(f"{key}: {info[key]:.1f}")
    with connection.cursor() as cursor:
        cursor.execute("SELECT cube, count(*), count(since), sum(pg_column_size(b.*)) "
                       "FROM metrics_customerstockbucket b GROUP BY cube ORDER BY 2")
        rows = cursor.fetchall()
        cursor.execute("SELECT pg_total_relation_size('ingestion_customer'), "
                       "pg_total_relation_size('metrics_customerstockbucket')")
        raw_bytes, stock_bytes = cursor.fetchone()
    print(f"\ncustomers: {customers:,}; raw table with indexes {raw_bytes / 2**20:,.1f} MB, stock table with "
          f"indexes {stock_bytes / 2**20:,.1f} MB")
    print(f"  {'cube':<28} {'rows':>10} {'pair rows':>10} {'row bytes':>12}")
    for cube, n, pairs, size in rows:
        print(f"  {cube:<28} {n:>10,} {pairs:>10,} {size:>12,}")

    user = user_grants_upsert(username="bench-manager", grants=[(department.slug, "manager")])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_issue(user=user)}")

    def api(params: dict):
        def call():
            response = client.get("/api/v1/metrics", {**YEAR, "department": department.slug, **params})
            assert response.status_code == 200, response.content
            return response.json()
        return call

    cases = {
        "(r) 7 registry KPIs, by month, a year": {"kpi": REGISTRY_KPIS, "granularity": "month"},
        "(r') the same by segment": {"kpi": REGISTRY_KPIS, "granularity": "month", "group_by": "segment"},
        "(r'') customer_base and churn_rate, by day, a year": {"kpi": "customer_base,churn_rate",
                                                                "granularity": "day"},
    }
    print(f"\n{'query':<52} {'API median':>11} {'p95':>8}")
    answers = {}
    for name, params in cases.items():
        samples, answers[name] = timed(api(params), args.runs)
        print(f"{name:<52} {statistics.median(samples):>9.1f} ms {p95(samples):>6.1f} ms", flush=True)

    def raw():
        with connection.cursor() as cursor:
            cursor.execute(RAW, {"zone": ZONE, "department": department.id})
            return cursor.fetchall()

    samples, raw_rows = timed(raw, max(3, args.runs // 10), warmup=1)
    print(f"{'on the fly from the raw rows (SQL, the month series)':<52} {statistics.median(samples):>9.1f} ms")
    by_kpi = {r["kpi"]: [p["value"] for p in r["series"]] for r in answers["(r) 7 registry KPIs, by month, a year"]
              ["results"]}
    for i, (_, base, started, churned, opening, lost, mrr) in enumerate(raw_rows):
        assert by_kpi["customer_base"][i] == base, (i, by_kpi["customer_base"][i], base)
        assert by_kpi["customers_started"][i] == started and by_kpi["customers_churned"][i] == churned, i
        churn = None if opening == 0 else lost / opening * 100
        assert (by_kpi["churn_rate"][i] is None) == (churn is None), i
        if churn is not None:
            assert abs(by_kpi["churn_rate"][i] - churn) < 1e-9, (i, by_kpi["churn_rate"][i], churn)
        assert abs(by_kpi["mrr"][i] - float(mrr or 0)) <= 1e-6 * max(1.0, float(mrr or 0)), i
    print("the API's month series equals the one computed from the raw rows")


if __name__ == "__main__":
    main()
