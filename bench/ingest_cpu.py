"""CPU per ingest batch: what a 1000-record batch costs the server process and its PostgreSQL backend.

    .venv/bin/python bench/ingest_cpu.py [--batches 30] [--root CHECKOUT]

Throughput on this 2-core VM moves ±30 % run to run (bench/ingest.py, docs/ingestion.md); CPU time moves
far less, and with both cores saturated it is what bounds records/s. One client in-process (Django's
test client, no HTTP server), PostgreSQL database `cskpi_bench_cpu` emptied first, the recompute
queued to Redis (db 1) and not run: `--batches` new batches of 1000 interactions (bench/ingest.py's
records), then as many mixed ones (1/3 new, 1/3 changed, 1/3 the same, 10 stale: its mixed pass). Per
pass: wall ms per batch, CPU ms per batch of this process (`time.process_time`) and of its PostgreSQL
backend (`/proc/<pid>/stat`: same machine), and WAL bytes per batch. The database is BENCH_CPU_DB
(default `cskpi_bench_cpu`): give each checkout its own, their schemas differ.

`--root`: measure another checkout's code (run this file with that checkout's `.venv/bin/python`;
`bench/compare_revisions.sh REV ingest-cpu` does both, alternated). Only its Django project is used:
the records and batches are this file's.
"""

import argparse
import importlib.util
import json
import os
import random
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DB_NAME = os.environ.get("BENCH_CPU_DB", "cskpi_bench_cpu")  # one per checkout measured: schemas differ


def _records_module():
    """bench/ingest.py of this checkout, for its record and batch builders only (no Django)."""
    spec = importlib.util.spec_from_file_location("_ingest_records", HERE / "ingest.py")
    module = importlib.util.module_from_spec(spec)
    saved = list(sys.path)
    spec.loader.exec_module(module)
    sys.path[:] = saved  # it puts this checkout first on the path: the code measured is --root's
    return module


def _setup(root: Path) -> str:
    """Django of `root` on an emptied database; -> an ingest token for department bench-hn. Not
    bench/ingest.py's fixtures_reset: that one names this checkout's models (agent events), which an
    older checkout measured with `--root` may not have."""
    sys.path.insert(0, str(root))
    sys.path.insert(0, str(HERE))
    from common import database_create

    database_create(DB_NAME)
    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
    os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cskpi.settings")
    os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
    os.chdir(root)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from cskpi.services import department_upsert, token_issue, user_grants_upsert
    from ingestion.models import Interaction, RecordChange

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Interaction._meta.db_table}, {RecordChange._meta.db_table}")
    department_upsert(slug="bench-hn", name="Bench HN")
    user = user_grants_upsert(username="bench-ingest", grants=[("bench-hn", "ingest")])
    return token_issue(user=user, name="bench")


def _backend() -> tuple[float, int]:
    """(CPU seconds of this connection's PostgreSQL backend, WAL position in bytes)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid(), pg_current_wal_lsn() - '0/0'::pg_lsn")
        pid, wal = cursor.fetchone()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), int(wal)


def _pass(client, name: str, bodies: list[bytes]) -> None:
    cpu0, wal0 = _backend()
    own0, started = time.process_time(), time.perf_counter()
    for body in bodies:
        response = client.post("/api/v1/interactions", body, content_type="application/json")
        assert response.status_code == 200, response.content[:300]
    wall, own = time.perf_counter() - started, time.process_time() - own0
    cpu1, wal1 = _backend()
    n = len(bodies)
    server, postgres = own / n * 1000, (cpu1 - cpu0) / n * 1000
    print(f"{name:<6} wall {wall / n * 1000:6.1f} ms   CPU: server {server:5.1f} ms + PostgreSQL {postgres:5.1f} ms "
          f"= {server + postgres:5.1f} ms   WAL {(wal1 - wal0) / n / 1024:5.0f} KiB   per batch of 1000", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--root", type=Path, default=HERE.parent, help="the checkout whose code is measured")
    args = parser.parse_args()
    records = _records_module()
    token = _setup(args.root.resolve())
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="127.0.0.1")
    rng, n, build = random.Random(7), args.batches, records.interaction
    warm = json.dumps([build(-1 - i, rng) for i in range(records.BATCH)]).encode()
    new = [json.dumps([build(b * records.BATCH + i, rng) for i in range(records.BATCH)]).encode() for b in range(n)]
    mixed = [records.mixed_body(build, b, n, rng) for b in range(n)]
    _pass(client, "warm", [warm])
    _pass(client, "new", new)
    _pass(client, "mixed", mixed)


if __name__ == "__main__":
    main()
