"""Benchmark data for bench/query.py: 5M interactions over a year, 20 departments, 500 agents, 6 channels.

Generated in PostgreSQL with generate_series (no ORM), then the cubes are built by the same code as
`manage.py rebuild_aggregates`. Reused when already there; `--regenerate` starts over.
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


_INSERT = """
INSERT INTO ingestion_interaction (department_id, source, external_id, content_hash, received_at, channel, agent,
    created_at, first_response_at, resolved_at, status, wait_seconds, handle_seconds, contact_count, self_service,
    first_response_seconds, resolution_seconds)
SELECT dept, 'bench', 'i-' || g, md5(g::text), now(), chan, agent, created_at,
       created_at + frt * interval '1 second',
       CASE WHEN status = 'resolved' THEN created_at + res * interval '1 second' END,
       status, wait, handle, cc, ss, frt, CASE WHEN status = 'resolved' THEN res END
FROM (
    SELECT g,
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


def bench_data_ensure(*, regenerate: bool = False) -> dict:
    """Create (or reuse) the data and the cubes; return sizes and timings."""
    database_create(BENCH_DB, regenerate=regenerate)
    django_setup(BENCH_DB)
    from django.db import connection
    from django.db.models import Count

    from cskpi.models import Department
    from cskpi.services import department_upsert
    from ingestion.models import Interaction
    from metrics.models import InteractionBucket
    from metrics.services import department_cubes_rebuild

    migrate()
    info: dict = {}
    departments = [department_upsert(slug=f"bench-{i:02d}", name=f"Bench {i}", timezone=ZONE)
                   for i in range(DEPARTMENTS)]
    have = Interaction.objects.count()
    if have != RECORDS:
        Interaction.objects.all().delete()
        InteractionBucket.objects.all().delete()
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SELECT setseed(0.42)")
            for lo in range(0, RECORDS, CHUNK):
                cursor.execute(_INSERT, {
                    "departments": [d.id for d in departments], "n_departments": DEPARTMENTS,
                    "channels": CHANNELS, "n_channels": len(CHANNELS), "n_agents": AGENTS_PER_DEPARTMENT,
                    "year_start": YEAR_START, "records": RECORDS, "lo": lo, "hi": min(lo + CHUNK, RECORDS) - 1,
                })
                print(f"  raw interactions: {min(lo + CHUNK, RECORDS):,}/{RECORDS:,}", flush=True)
            cursor.execute("ANALYZE ingestion_interaction")
        info["generate_seconds"] = time.perf_counter() - started
    if not InteractionBucket.objects.exists():
        started = time.perf_counter()
        for i, department in enumerate(Department.objects.filter(slug__startswith="bench-")):
            department_cubes_rebuild(department=department, chunk_days=31)
            print(f"  cubes rebuilt: {i + 1}/{DEPARTMENTS} departments", flush=True)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE metrics_interactionbucket")
        info["rebuild_seconds"] = time.perf_counter() - started
    info["raw_rows"] = Interaction.objects.count()
    info["cube_rows"] = dict(InteractionBucket.objects.values_list("cube").annotate(n=Count("id")))
    return info


if __name__ == "__main__":
    print(bench_data_ensure(regenerate="--regenerate" in sys.argv))
