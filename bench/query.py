"""Query benchmark: /api/v1/metrics against the same answers computed on the fly from raw rows.

    .venv/bin/python bench/query.py [--regenerate] [--runs 50]

PostgreSQL database cskpi_bench_q on 127.0.0.1 (user postgres): 5M interactions over a year, 20
departments (Asia/Ho_Chi_Minh), 500 agents, 6 channels (bench/query_data.py; reused when present).
Prints the cube sizes and rollup ratios, then median and p95 latency of each query through the API
(Django test client: routing, bearer auth, access, parsing, SQL, JSON), with --gunicorn also over
HTTP against one gunicorn sync worker on loopback, of the engine alone (kpi_series_get), and of the
on-the-fly SQL GROUP BY over raw rows, with the ratios (the script asserts the answers are equal).
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import p95, timed  # noqa: E402
from query_data import bench_data_ensure  # noqa: E402

YEAR = {"start": "2025-01-01", "end": "2026-01-01"}
KPIS_B = "interactions,fcr_rate,average_handle_time,abandonment_rate"

# The on-the-fly twins: the same numbers straight from the raw rows.
RAW_A = """
SELECT date_trunc('day', created_at AT TIME ZONE 'Asia/Ho_Chi_Minh') AS day,
       count(*) FILTER (WHERE status = 'resolved' AND contact_count = 1),
       count(*) FILTER (WHERE status = 'resolved')
FROM ingestion_interaction
WHERE department_id = %s AND created_at >= %s AND created_at < %s
GROUP BY 1 ORDER BY 1
"""
RAW_B = """
SELECT {period} agent, count(*),
       count(*) FILTER (WHERE status = 'resolved' AND contact_count = 1),
       count(*) FILTER (WHERE status = 'resolved'),
       sum(handle_seconds), count(handle_seconds),
       count(*) FILTER (WHERE status = 'abandoned')
FROM ingestion_interaction
WHERE department_id = %s AND created_at >= %s AND created_at < %s
GROUP BY {group} ORDER BY {group}
"""
# nearest-rank percentile (the ⌈q·n⌉-th smallest) per local day, exactly, from the raw rows
RAW_P = """
SELECT date_trunc('day', created_at AT TIME ZONE 'Asia/Ho_Chi_Minh') AS day,
       percentile_disc(0.9) WITHIN GROUP (ORDER BY first_response_seconds), count(*)
FROM ingestion_interaction
WHERE department_id = %s AND created_at >= %s AND created_at < %s AND first_response_seconds IS NOT NULL
GROUP BY 1 ORDER BY 1
"""
# What each cube holds, and how much of it the quantile sketches take.
CUBE_BYTES = """
SELECT cube, count(*), sum(pg_column_size(b.*)),
       (SELECT sum(pg_column_size(s.*)) FROM metrics_interactionsketchbucket s WHERE s.cube = b.cube)
FROM metrics_interactionbucket b GROUP BY cube ORDER BY 2
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--raw-runs", type=int, default=10)
    parser.add_argument("--gunicorn", action="store_true",
                        help="Also time the API over HTTP against gunicorn on 127.0.0.1 (1 sync worker).")
    args = parser.parse_args()

    info = bench_data_ensure(regenerate=args.regenerate)

    from datetime import datetime
    from zoneinfo import ZoneInfo

    from django.db import connection
    from rest_framework.test import APIClient

    from cskpi.models import Department
    from cskpi.services import token_issue, user_grants_upsert
    from metrics.serializers import KpiQueryInputSerializer

    raw = info["raw_rows"]
    print(f"\nraw interactions: {raw:,}")
    for key in ("generate_seconds", "rebuild_seconds"):
        if key in info:
            print(f"{key}: {info[key]:.1f}")
    with connection.cursor() as cursor:
        cursor.execute(CUBE_BYTES)
        cubes = cursor.fetchall()
        cursor.execute("SELECT pg_total_relation_size('ingestion_interaction'), "
                       "pg_total_relation_size('metrics_interactionbucket'), "
                       "pg_total_relation_size('metrics_interactionsketchbucket')")
        raw_bytes, cube_bytes, sketch_bytes_total = cursor.fetchone()
    total_cube = 0
    print(f"  {'cube':<28} {'rows':>10} {'rollup':>8} {'count bytes':>12} {'sketch bytes':>13} {'sketch bytes/row':>17}")
    for cube, rows, row_bytes, sketch_bytes in cubes:
        total_cube += rows
        print(f"  {cube:<28} {rows:>10,} {rows / raw:>8.4f} {row_bytes:>12,} {sketch_bytes:>13,} "
              f"{sketch_bytes / rows:>17.1f}")
    print(f"  all cubes: {total_cube:,} rows ({total_cube / raw:.3f} × raw); with indexes: counts "
          f"{cube_bytes / 2**20:,.0f} MB, sketches {sketch_bytes_total / 2**20:,.0f} MB; raw interactions "
          f"with indexes {raw_bytes / 2**20:,.0f} MB")

    department = Department.objects.get(slug="bench-03")
    user = user_grants_upsert(username="bench-manager", grants=[(department.slug, "manager")])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_issue(user=user)}")
    tz = ZoneInfo("Asia/Ho_Chi_Minh")
    start, end = datetime(2025, 1, 1, tzinfo=tz), datetime(2026, 1, 1, tzinfo=tz)

    cases = {
        "(a) fcr_rate, one department, by day, a year": {"kpi": "fcr_rate", "granularity": "day"},
        "(b) 4 KPIs by agent, one department, a year, total": {"kpi": KPIS_B, "group_by": "agent",
                                                                "granularity": "total"},
        "(b') 4 KPIs by agent, one department, a year, by month": {"kpi": KPIS_B, "group_by": "agent",
                                                                    "granularity": "month"},
        "(p) first_response_time_p90, one department, by day, a year": {"kpi": "first_response_time_p90",
                                                                         "granularity": "day"},
    }

    def raw_a():
        with connection.cursor() as cursor:
            cursor.execute(RAW_A, [department.id, start, end])
            return cursor.fetchall()

    def raw_b(period: bool):
        sql = RAW_B.format(period="date_trunc('month', created_at AT TIME ZONE 'Asia/Ho_Chi_Minh'), " if period
                           else "", group="1, 2" if period else "1")
        with connection.cursor() as cursor:
            cursor.execute(sql, [department.id, start, end])
            return cursor.fetchall()

    def raw_p():
        with connection.cursor() as cursor:
            cursor.execute(RAW_P, [department.id, start, end])
            return cursor.fetchall()

    raws = [raw_a, lambda: raw_b(False), lambda: raw_b(True), raw_p]
    token = client._credentials["HTTP_AUTHORIZATION"]
    server = _gunicorn_start() if args.gunicorn else None
    print(f"\n{'query':<58} {'median ms':>10} {'p95 ms':>8}   ratio (on the fly ÷ API median)")
    print("  (on the fly for (p): PostgreSQL percentile_disc over the raw rows)")
    for (name, params), raw_fn in zip(cases.items(), raws, strict=True):
        query_params = {**params, **YEAR, "department": department.slug}
        api, response = timed(lambda qp=query_params: client.get("/api/v1/metrics", qp), args.runs)
        assert response.status_code == 200, response.json()
        body = response.json()

        from django.test import RequestFactory
        from rest_framework.request import Request

        from cskpi.access import access_get
        from metrics.selectors import kpi_series_get

        serializer = KpiQueryInputSerializer(
            data=Request(RequestFactory().get("/", query_params)).query_params,
            context={"access": access_get(user=user)},
        )
        serializer.is_valid(raise_exception=True)
        query = serializer.validated_data["query"]
        engine, _ = timed(lambda q=query: kpi_series_get(query=q), args.runs)
        fly, fly_rows = timed(raw_fn, args.raw_runs, warmup=1)
        _check(name, body, fly_rows)
        http = timed(lambda qp=query_params: _http_get(qp, token), args.runs)[0] if server else None
        ratio = statistics.median(fly) / statistics.median(api)
        print(f"{name:<58}")
        print(f"  {'API /api/v1/metrics':<56} {statistics.median(api):>10.2f} {p95(api):>8.2f}   {ratio:8.0f}×")
        print(f"  {'engine only (kpi_series_get)':<56} {statistics.median(engine):>10.2f} {p95(engine):>8.2f}"
              f"   {statistics.median(fly) / statistics.median(engine):8.0f}×")
        if http:
            print(f"  {'API over HTTP (gunicorn, loopback)':<56} {statistics.median(http):>10.2f} {p95(http):>8.2f}"
                  f"   {statistics.median(fly) / statistics.median(http):8.0f}×")
        print(f"  {'on the fly: SQL GROUP BY over raw rows':<56} {statistics.median(fly):>10.2f} {p95(fly):>8.2f}")


PORT = 8791


def _gunicorn_start():
    import atexit
    import os
    import socket
    import subprocess

    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "cskpi.wsgi:application", "--bind", f"127.0.0.1:{PORT}",
         "--workers", "1", "--log-level", "warning"],
        cwd=Path(__file__).resolve().parents[1], env=os.environ.copy(),
    )
    atexit.register(lambda: (process.terminate(), process.wait()))
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", PORT), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not start")


def _http_get(params: dict, authorization: str) -> bytes:
    import http.client
    from urllib.parse import urlencode

    conn = http.client.HTTPConnection("127.0.0.1", PORT)
    conn.request("GET", f"/api/v1/metrics?{urlencode(params)}", headers={"Authorization": authorization})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 200, body
    return body


def _check(name: str, body: dict, rows: list) -> None:
    """The API's numbers equal the on-the-fly ones (the benchmark compares equal answers)."""
    results = body["results"]
    if name.startswith("(a)"):
        series = results[0]["series"]
        assert len(series) == 365 and len(rows) == 365
        for point, (_day, fcr, resolved) in zip(series, rows, strict=True):
            assert point["sample_size"] == resolved
            assert abs(point["value"] - fcr / resolved * 100) < 1e-9
    elif name.startswith("(b)"):
        by_agent = {(r["kpi"], r["group"]["agent"]): r for r in results}
        for agent, n, fcr, resolved, handle_sum, handle_n, abandoned in rows:
            assert by_agent[("interactions", agent)]["value"] == n
            assert abs(by_agent[("fcr_rate", agent)]["value"] - fcr / resolved * 100) < 1e-9
            assert abs(by_agent[("average_handle_time", agent)]["value"] - handle_sum / handle_n) < 1e-6
            assert abs(by_agent[("abandonment_rate", agent)]["value"] - abandoned / n * 100) < 1e-9
    elif name.startswith("(p)"):
        series = results[0]["series"]
        assert len(series) == 365 and len(rows) == 365
        for point, (_day, exact, n) in zip(series, rows, strict=True):
            # the sketch's bound: within max(1 %, 1 s) of percentile_disc's exact nearest-rank value
            assert point["sample_size"] == n and abs(point["value"] - exact) <= max(0.01 * exact, 1.0)


if __name__ == "__main__":
    main()
