"""Cost of the largest /metrics answers: the worst queries CSKPI_MAX_RESULT_CELLS allows, and a
profile of one it now refuses (1 KPI by day for 730 days by agent over 640 agents: 467,200 cells).

    .venv/bin/python bench/result_size.py [--regenerate] [--runs 5] [--profile]

PostgreSQL database cskpi_bench_cells on 127.0.0.1 (BENCH_CELLS_DB overrides): one department
(Asia/Ho_Chi_Minh), 640 agents, one interaction per agent per day for 730 days (467,200 records,
generated in SQL), cubes built by `rebuild_aggregates`' code. Each query goes through the Django
request stack (test client: auth, access, validation, engine, JSON). Prints per query: cells, median
time, the Python heap peak of one request (tracemalloc), and the peak RSS of a fresh process (a
worker) before and after serving it twice.
"""

import argparse
import cProfile
import io
import os
import pstats
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

from common import django_setup, migrate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DB = os.environ.get("BENCH_CELLS_DB", "cskpi_bench_cells")
AGENTS, DAYS, START = 640, 730, "2024-01-01"


def data_ensure(regenerate: bool) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB]).fetchone()
        if exists and regenerate:
            conn.execute(f'DROP DATABASE "{DB}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB}"')
    django_setup(DB)
    from django.db import connection

    from cskpi.models import Department
    from ingestion.models import Interaction
    from metrics.services import department_cubes_rebuild

    migrate()
    department, _ = Department.objects.get_or_create(slug="big", defaults={"name": "Big", "timezone": "Asia/Ho_Chi_Minh"})
    if Interaction.objects.filter(department=department).exists():
        return
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("""
            INSERT INTO ingestion_interaction (department_id, source, external_id, content_hash, received_at,
                channel, agent, created_at, first_response_at, resolved_at, status, wait_seconds, handle_seconds,
                contact_count, self_service, first_response_seconds, resolution_seconds)
            SELECT %s, 'bench', 'i-' || a || '-' || d, md5(a || '-' || d), now(), 'phone', 'agent-' || a,
                   t, t + interval '60 seconds', t + interval '600 seconds', 'resolved', 20, 300, 1 + (a + d) %% 2,
                   false, 60, 600
            FROM generate_series(0, %s - 1) a, generate_series(0, %s - 1) d,
                 LATERAL (SELECT ((%s::date + d) + time '09:00' + (a %% 480) * interval '1 minute')
                                 AT TIME ZONE 'Asia/Ho_Chi_Minh' AS t) x
        """, [department.id, AGENTS, DAYS, START])
    department_cubes_rebuild(department=department, chunk_days=60)
    print(f"generated {AGENTS * DAYS:,} interactions and their cubes in {time.perf_counter() - started:.0f} s")


QUERIES = [
    # (label, parameters): the worst shapes allowed by the defaults (40,000 cells, 100,000 day-cube rows).
    ("1 KPI by day, 62 days, by agent (640)", {"kpi": "fcr_rate", "granularity": "day", "start": "2024-01-01",
                                               "end": "2024-03-03", "group_by": "agent"}),
    ("4 KPIs by day, 15 days, by agent (640)", {"kpi": "interactions,fcr_rate,average_handle_time,abandonment_rate",
                                                "granularity": "day", "start": "2024-01-01", "end": "2024-01-16",
                                                "group_by": "agent"}),
    ("1 KPI by hour, 62 hours, by agent (640)", {"kpi": "fcr_rate", "granularity": "hour", "start": "2024-01-01",
                                                 "end": "2024-01-03T14:00:00+07:00", "group_by": "agent"}),
    # Few cells, many rows: a month series by agent is summed from the day cube (CSKPI_MAX_READ_ROWS):
    # 152 days x 640 agents = 97,280 rows.
    ("10 KPIs by month, 5 months, by agent (640)", {
        "kpi": "interactions,tickets_handled,first_response_time,resolution_time,fcr_rate,abandonment_rate,"
               "average_wait_time,average_handle_time,self_service_rate,missed_calls",
        "granularity": "month", "start": "2024-01-01", "end": "2024-06-01", "group_by": "agent"}),
]
REFUSED = ("1 KPI by day, 730 days, by agent (640)", {"kpi": "fcr_rate", "granularity": "day",
                                                      "start": "2024-01-01", "end": "2025-12-31",
                                                      "group_by": "agent"})


def rss_mb() -> float:
    """Peak RSS of this process (VmHWM: unlike ru_maxrss it does not inherit the parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def client_get():
    from django.conf import settings
    from rest_framework.test import APIClient

    from cskpi.services import token_issue, user_grants_upsert

    settings.DEBUG = False
    user = user_grants_upsert(username="bench-cells", staff=True, grants=[], agent="")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_issue(user=user)}")
    return lambda params: client.get("/api/v1/metrics", {"department": "big", **params})


def measure(get, label, params, runs) -> None:
    response = get(params)  # warm up (and check)
    assert response.status_code == 200, response.content[:500]
    body = response.json()
    cells = sum(max(len(r.get("series", [])), 1) for r in body["results"])
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        get(params)
        samples.append(time.perf_counter() - started)
    tracemalloc.start()
    get(params)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    index = next(i for i, (name, _) in enumerate(QUERIES) if name == label)
    rss = subprocess.run([sys.executable, __file__, "--rss-of", str(index)], capture_output=True, text=True,
                         check=True).stdout.split()
    print(f"{label:46} {cells:>7,} cells {len(response.content) / 1e6:4.1f} MB JSON  "
          f"median {statistics.median(samples) * 1000:5.0f} ms  Python heap peak {peak / 1e6:5.1f} MB  "
          f"worker RSS {rss[0]} -> {rss[1]} MB")


def rss_of(index: int) -> None:
    """In a fresh process (a worker): RSS after a small query, then the peak after this one twice."""
    get = client_get()
    get({"kpi": "interactions", "start": "2024-01-01", "end": "2024-01-02"})
    before = rss_mb()
    for _ in range(2):
        get(QUERIES[index][1])
    print(f"{before:.0f} {rss_mb():.0f}")


def profile(get) -> None:
    """Where the time of the refused 730-day query goes (cap lifted for the measurement)."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from rest_framework.renderers import JSONRenderer

    from cskpi.access import access_get
    from cskpi.models import Department  # noqa: F401
    from cskpi.renderers import FiniteJSONRenderer
    from metrics.selectors import kpi_series_get
    from metrics.serializers import KpiQueryInputSerializer

    settings.CSKPI_MAX_RESULT_CELLS = settings.CSKPI_MAX_READ_ROWS = 10**9
    label, params = REFUSED
    get(params)
    started = time.perf_counter()
    response = get(params)
    total = time.perf_counter() - started
    access = access_get(user=get_user_model().objects.get(username="bench-cells"))
    serializer = KpiQueryInputSerializer(data={"department": "big", **params}, context={"access": access})
    serializer.is_valid(raise_exception=True)
    query = serializer.validated_data["query"]
    sql_time = [0.0]

    def timer(execute, sql, params_, many, context):
        t = time.perf_counter()
        try:
            return execute(sql, params_, many, context)
        finally:
            sql_time[0] += time.perf_counter() - t

    started = time.perf_counter()
    with connection.execute_wrapper(timer):
        answer = kpi_series_get(query=query)
    engine = time.perf_counter() - started
    started = time.perf_counter()
    FiniteJSONRenderer().render(answer)
    orjson_time = time.perf_counter() - started
    started = time.perf_counter()
    JSONRenderer().render(answer)
    drf_time = time.perf_counter() - started
    print(f"\nprofile: {label}, {len(response.content) / 1e6:.1f} MB JSON, whole request {total * 1000:.0f} ms")
    # The cube rows stream through psycopg directly (metrics.reader.compiled_rows), past Django's
    # execute wrappers: the database's share shows in the profile below as psycopg's `wait`/`stream`.
    print(f"  engine (kpi_series_get) {engine * 1000:.0f} ms (SQL through Django's cursor: {sql_time[0] * 1000:.0f} ms)")
    print(f"  JSON: orjson renderer {orjson_time * 1000:.0f} ms (DRF's json renderer: {drf_time * 1000:.0f} ms)")
    print(f"  rest of the request (auth, access, validation, pre-count, response) "
          f"{(total - engine - orjson_time) * 1000:.0f} ms")
    profiler = cProfile.Profile()
    profiler.enable()
    kpi_series_get(query=query)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
    print("  engine, top functions by own time:")
    print("\n".join("    " + line for line in out.getvalue().splitlines()[6:22] if line.strip()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="profile the refused 730-day query")
    parser.add_argument("--rss-of", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_of is not None:
        django_setup(DB)
        return rss_of(args.rss_of)
    data_ensure(args.regenerate)
    from django.conf import settings

    get = client_get()
    print(f"CSKPI_MAX_RESULT_CELLS = {settings.CSKPI_MAX_RESULT_CELLS:,}, CSKPI_MAX_READ_ROWS = "
          f"{settings.CSKPI_MAX_READ_ROWS:,}; baseline RSS {rss_mb():.0f} MB; load average {os.getloadavg()[0]:.1f}")
    for label, params in QUERIES:
        measure(get, label, params, args.runs)
    refused = get(REFUSED[1])
    print(f"{REFUSED[0]:48} -> {refused.status_code} {refused.json()['code']}")
    if args.profile:
        profile(get)


if __name__ == "__main__":
    main()
