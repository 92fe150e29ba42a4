"""Benchmark data for bench/query.py and bench/peers.py: 5M interactions over a year, 20 departments,
500 agents, 6 channels.

Each interaction has a customer (drawn from RECORDS / 5 ids), and its first response is measured against
a 5-minute SLA (business seconds = calendar seconds: a 24/7 calendar), so the distinct-set and the
business-SLA measure kinds have data; the 25 agents of department bench-03 have status events (60 a day
each for the year: time in state). Generated in PostgreSQL with generate_series (no ORM), then the cubes
are built by the same code as `manage.py rebuild_aggregates`, which ends a full rebuild by rewriting the
cube tables in key order (`manage.py cluster_aggregates`; a database built before that step: run that
command once). Reused when already there (and of this data version); `--regenerate` starts over.
"""

import os
import sys
import time
from pathlib import Path

from common import database_create, django_setup, migrate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BENCH_DB = os.environ.get("BENCH_QUERY_DB", "cskpi_bench_q")
BENCH_URL = f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}"

RECORDS = int(os.environ.get("BENCH_RECORDS", 5_000_000))
DEPARTMENTS = 20
AGENTS_PER_DEPARTMENT = 25
CHANNELS = ["phone", "email", "chat", "facebook", "zalo", "web"]
ZONE = "Asia/Ho_Chi_Minh"
YEAR_START = "2025-01-01 00:00:00+07"
CHUNK = 500_000
DATA_VERSION = "v2: customers, SLA, bench-03 agent events"  # a reused database of another version is made again
EVENTS_DEPARTMENT = 3  # bench-03: the department every single-department shape reads
EVENTS_PER_DAY = 60
SLA_SECONDS = 300


_INSERT = """
INSERT INTO ingestion_interaction (department_id, source, external_id, content_hash, received_at, channel, agent,
    created_at, first_response_at, resolved_at, status, wait_seconds, handle_seconds, contact_count, self_service,
    first_response_seconds, resolution_seconds, customer, first_response_business_seconds, first_response_sla)
SELECT dept, 'bench', 'i-' || g, md5(g::text), now(), chan, agent, created_at,
       created_at + frt * interval '1 second',
       CASE WHEN status = 'resolved' THEN created_at + res * interval '1 second' END,
       status, wait, handle, cc, ss, frt, CASE WHEN status = 'resolved' THEN res END,
       customer, frt, CASE WHEN frt IS NULL THEN 'breached' WHEN frt <= %(sla)s THEN 'met' ELSE 'breached' END
FROM (
    SELECT g,
           'c-' || floor(random() * %(customers)s)::bigint AS customer,
           (%(departments)s::bigint[])[1 + g %% %(n_departments)s] AS dept,
           (%(channels)s::text[])[1 + floor(random() * %(n_channels)s)::int] AS chan,
           'a-' || (g %% %(n_departments)s) || '-' || floor(random() * %(n_agents)s)::int AS agent,
           TIMESTAMPTZ %(year_start)s + (g::float8 / %(records)s) * interval '365 days'
               + floor(random() * 1800) * interval '1 second' AS created_at,
           CASE WHEN r < 0.70 THEN 'resolved' WHEN r < 0.80 THEN 'abandoned' WHEN r < 0.85 THEN 'missed'
                WHEN r < 0.95 THEN 'open' ELSE 'pending' END AS status,
           CASE WHEN random() < 0.9 THEN floor(random() * 600) END AS frt,
           floor(60 + random() * 86400) AS res,
           CASE WHEN random() < 0.8 THEN floor(random() * 300) END AS wait,
           CASE WHEN random() < 0.8 THEN floor(30 + random() * 900) END AS handle,
           CASE WHEN random() < 0.75 THEN 1 ELSE 2 END AS cc,
           random() < 0.1 AS ss
    FROM (SELECT g, random() AS r FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) g) s
) t
"""

# Status events of one department's agents (the agents its interactions name): per agent and day,
# EVENTS_PER_DAY events spread over the day with a few minutes of jitter, mostly available/busy.
_EVENTS = """
INSERT INTO ingestion_agentevent (department_id, source, external_id, content_hash, received_at, agent, status, at)
SELECT %(department)s, 'bench', 'e-' || a || '-' || d || '-' || k, md5(a || '-' || d || '-' || k), now(),
       'a-' || %(index)s || '-' || a,
       CASE WHEN r < 0.45 THEN 'available' WHEN r < 0.85 THEN 'busy' WHEN r < 0.95 THEN 'away' ELSE 'offline' END,
       TIMESTAMPTZ %(year_start)s + d * interval '1 day'
           + (k * 86400.0 / %(per_day)s + floor(random() * 300)) * interval '1 second'
FROM (SELECT a, d, k, random() AS r
      FROM generate_series(0, %(agents)s - 1) a, generate_series(0, 364) d,
           generate_series(0, %(per_day)s - 1) k) s
"""


def bench_data_ensure(*, regenerate: bool = False) -> dict:
    """Create (or reuse) the data and the cubes; return sizes and timings."""
    database_create(BENCH_DB, regenerate=regenerate)
    django_setup(BENCH_DB)
    from django.db import connection
    from django.db.models import Count

    from cskpi.models import Department
    from cskpi.services import department_upsert
    from ingestion.models import AgentEvent, Interaction
    from metrics.models import BUCKET_MODELS, InteractionBucket
    from metrics.services import cube_tables_cluster, department_cubes_rebuild

    migrate()
    info: dict = {}
    departments = [department_upsert(slug=f"bench-{i:02d}", name=f"Bench {i}", timezone=ZONE)
                   for i in range(DEPARTMENTS)]
    have = Interaction.objects.count()
    if have != RECORDS or not Department.objects.filter(slug="data-version", name=DATA_VERSION).exists():
        Interaction.objects.all().delete()
        AgentEvent.objects.all().delete()
        for models in BUCKET_MODELS.values():
            for model in models:
                model.objects.all().delete()
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SELECT setseed(0.42)")
            for lo in range(0, RECORDS, CHUNK):
                cursor.execute(_INSERT, {
                    "departments": [d.id for d in departments], "n_departments": DEPARTMENTS,
                    "channels": CHANNELS, "n_channels": len(CHANNELS), "n_agents": AGENTS_PER_DEPARTMENT,
                    "year_start": YEAR_START, "records": RECORDS, "lo": lo, "hi": min(lo + CHUNK, RECORDS) - 1,
                    "customers": max(1, RECORDS // 5), "sla": SLA_SECONDS,
                })
                print(f"  raw interactions: {min(lo + CHUNK, RECORDS):,}/{RECORDS:,}", flush=True)
            cursor.execute(_EVENTS, {"department": departments[EVENTS_DEPARTMENT].id, "index": EVENTS_DEPARTMENT,
                                     "agents": AGENTS_PER_DEPARTMENT, "per_day": EVENTS_PER_DAY,
                                     "year_start": YEAR_START})
            cursor.execute("ANALYZE ingestion_interaction")
            cursor.execute("ANALYZE ingestion_agentevent")
        department_upsert(slug="data-version", name=DATA_VERSION, timezone=ZONE)
        info["generate_seconds"] = time.perf_counter() - started
    if not InteractionBucket.objects.exists():
        started = time.perf_counter()
        for i, department in enumerate(departments):
            department_cubes_rebuild(department=department, chunk_days=31)
            print(f"  cubes rebuilt: {i + 1}/{DEPARTMENTS} departments", flush=True)
        info["rebuild_seconds"] = time.perf_counter() - started
        # As `rebuild_aggregates` ends a full rebuild: the cube tables in key order, analyzed.
        started = time.perf_counter()
        cube_tables_cluster()
        info["cluster_seconds"] = time.perf_counter() - started
    info["raw_rows"] = Interaction.objects.count()
    info["cube_rows"] = dict(InteractionBucket.objects.values_list("cube").annotate(n=Count("cube")))
    return info


if __name__ == "__main__":
    print(bench_data_ensure(regenerate="--regenerate" in sys.argv))
