"""Ingestion benchmark: HTTP bulk upserts of interactions (batches of 1000) against PostgreSQL.

    .venv/bin/python bench/ingest.py [--records 200000] [--clients 3] [--workers 2] [--kind agent-events]
                                     [--fresh-connections]

`--kind agent-events` posts agent status events instead (500 agents of the department, each with an
event every 24 minutes; every event marks the quarters its status can decide, up to the presence
timeout ahead).

Creates (or reuses) the PostgreSQL database `cskpi_bench` on 127.0.0.1 (user postgres, trust auth),
migrates it, empties the record tables, creates a department and an ingest token, starts gunicorn
on a free loopback port and posts pre-built batches over keep-alive connections from several
client threads. Three passes, each printed as records/second:
  1. new      every record is new (insert path)
  2. repeat   the same batches again (every record unchanged)
  3. mixed    per batch 1/3 new, 1/3 changed (update path), 1/3 repeated, plus stale versions
Each pass also prints how many of the client connections each gunicorn worker held: gunicorn's workers
accept connections, not requests, and a pass whose keep-alive connections all went to one worker runs
its Python on one core (about half the records/s: the mixed pass's 2× swing between runs).
`--fresh-connections` opens a connection per batch instead, as a proxy in front of gunicorn does.
Then it profiles one batch in-process (parse / validate / upsert phases and the top functions).
Recompute work is queued to Redis (REDIS_URL, default db 1) as in production, not run in-request.
"""

import argparse
import cProfile
import http.client
import io
import json
import os
import pstats
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = os.environ.get("BENCH_INGEST_DB", "cskpi_bench")
DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
BATCH = 1000
BASE = datetime(2026, 3, 1, tzinfo=UTC)
CHANNELS = ["phone", "email", "chat", "facebook", "zalo", "web"]
STATUSES = ["open", "pending", "resolved", "abandoned", "missed"]


def database_ensure() -> None:
    # This folder is on the path: run as a script, or imported by a sibling benchmark.
    from common import database_create

    database_create(DB_NAME)


def django_setup(redis_url: str) -> None:
    os.environ["DATABASE_URL"] = DATABASE_URL
    os.environ["REDIS_URL"] = redis_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cskpi.settings")
    import django

    django.setup()


def fixtures_reset() -> str:
    from django.core.management import call_command
    from django.db import connection

    from cskpi.services import department_upsert, token_issue, user_grants_upsert
    from ingestion.models import AgentEvent, Interaction, RecordChange

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Interaction._meta.db_table}, {AgentEvent._meta.db_table}, "
                       f"{RecordChange._meta.db_table}")
    department_upsert(slug="bench-hn", name="Bench HN")
    user = user_grants_upsert(username="bench-ingest", grants=[("bench-hn", "ingest")])
    return token_issue(user=user, name="bench")


def interaction(n: int, rng: random.Random | None = None, version: int = 0) -> dict:
    """Record n; the same (n, version) always gives the same content."""
    created = BASE + timedelta(seconds=n * 7)
    status = STATUSES[(n + version) % len(STATUSES)]
    item = {
        "external_id": f"B-{n}", "source": "bench", "department": "bench-hn",
        "channel": CHANNELS[n % len(CHANNELS)], "agent": f"agent-{n % 40}", "customer": f"C-{n % 5000}",
        "topic": f"topic-{(n + version) % 12}",
        "created_at": created.isoformat(),
        "status": status, "wait_seconds": n * 37 % 300, "handle_seconds": 30 + n * 53 % 8700 / 10,
        "contact_count": 1 + (n % 3 == 0), "self_service": n % 10 == 0,
        "updated_at": (created + timedelta(hours=1 + version)).isoformat(),
    }
    if status not in ("abandoned", "missed"):
        item["first_response_at"] = (created + timedelta(seconds=20 + n % 100)).isoformat()
    if status == "resolved":
        item["resolved_at"] = (created + timedelta(minutes=5 + n % 50)).isoformat()
    return item


AGENT_STATUSES = ["available", "busy", "away", "offline"]


def agent_event(n: int, rng: random.Random | None = None, version: int = 0) -> dict:
    """Event n of 500 agents, one each every 24 minutes per agent; (n, version) gives the same content."""
    at = BASE + timedelta(seconds=(n // 500) * 1440 + (n % 500) * 2)
    return {"external_id": f"E-{n}", "source": "bench", "department": "bench-hn", "agent": f"agent-{n % 500}",
            "status": AGENT_STATUSES[(n + version) % len(AGENT_STATUSES)], "at": at.isoformat(),
            "updated_at": (at + timedelta(hours=1 + version)).isoformat()}


KINDS = {"interactions": interaction, "agent-events": agent_event}


def mixed_body(build, b: int, batches: int, rng: random.Random) -> bytes:
    """Mixed batch b after `batches` new batches were posted: 1/3 new, 1/3 changed (records of new batch b
    again as version 1), 1/3 the same, and 10 stale (older than version 1), shuffled."""
    third = BATCH // 3
    items = [build(batches * BATCH + b * third + i, rng) for i in range(third)]  # new
    items += [build(b * BATCH + i, rng, version=1) for i in range(third)]  # changed
    items += [build(b * BATCH + third + i, rng) for i in range(BATCH - 2 * third - 10)]  # same
    items += [build(b * BATCH + i, rng) for i in range(10)]  # stale (older than version 1)
    rng.shuffle(items)
    return json.dumps(items).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gunicorn_start(port: int, workers: int, threads: int, redis_url: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": DATABASE_URL, "REDIS_URL": redis_url, "LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "cskpi.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--worker-class", "gthread", "--threads", str(threads),
         "--keep-alive", "60", "--log-level", "warning"],
        cwd=ROOT, env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/v1/health")
            conn.getresponse().read()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("gunicorn did not start")


def connection_owners(master_pid: int, port: int, client_ports: list[int]) -> list[int]:
    """How many of these client connections each gunicorn worker holds (workers in pid order), read from
    /proc: the server-side socket of a client port is the one whose peer is that port, and the worker is
    the child of `master_pid` holding that socket's inode."""
    owners = {}
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(path) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                local, remote, inode = fields[1], fields[2], fields[9]
                if int(local.rsplit(":", 1)[1], 16) == port and int(remote.rsplit(":", 1)[1], 16) in client_ports:
                    owners[f"socket:[{inode}]"] = None
    with open(f"/proc/{master_pid}/task/{master_pid}/children") as f:
        workers = sorted(int(pid) for pid in f.read().split())
    held = []
    for pid in workers:
        fd_dir = f"/proc/{pid}/fd"
        links = {os.readlink(f"{fd_dir}/{fd}") for fd in os.listdir(fd_dir) if os.path.islink(f"{fd_dir}/{fd}")}
        held.append(len(links & owners.keys()))
    return held


def post_all(port: int, token: str, bodies: list[bytes], clients: int, path: str = "/api/v1/interactions",
             server_pid: int | None = None, fresh: bool = False) -> tuple[float, list[float], dict, str]:
    """Post every body once, spread over `clients` keep-alive connections (`fresh`: a new connection per
    batch, as a proxy in front of gunicorn opens by default); -> (seconds, latencies, counts, placement).

    placement: how many client connections each gunicorn worker held ("2+1"), read before they close.
    gunicorn's workers accept connections, not requests: a worker holding every keep-alive connection
    runs all of the Python with one core while the other worker idles (about half the records/s)."""
    queue = list(enumerate(bodies))
    lock = threading.Lock()
    latencies: list[float] = []
    totals = {"created": 0, "updated": 0, "unchanged": 0, "stale": 0}
    errors: list[str] = []
    connections: list[http.client.HTTPConnection] = []
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        with lock:
            connections.append(conn)
        while True:
            with lock:
                if not queue or errors:
                    break
                _, body = queue.pop()
            started = time.perf_counter()
            if fresh:
                conn.close()
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            elapsed = time.perf_counter() - started
            with lock:
                if response.status != 200:
                    errors.append(f"{response.status}: {payload[:300]!r}")
                    break
                latencies.append(elapsed)
                result = json.loads(payload)
                for key in totals:
                    totals[key] += result[key]

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    placement = "fresh" if fresh else ""
    if server_pid is not None and not fresh:
        ports = [c.sock.getsockname()[1] for c in connections if c.sock is not None]
        placement = "+".join(map(str, connection_owners(server_pid, port, ports)))
    for conn in connections:
        conn.close()
    if errors:
        raise SystemExit(f"request failed: {errors[0]}")
    return seconds, latencies, totals, placement


def report(name: str, records: int, seconds: float, latencies: list[float], totals: dict, placement: str) -> None:
    latencies = sorted(latencies)
    p95 = latencies[int(len(latencies) * 0.95) - 1] if len(latencies) > 1 else latencies[0]
    print(f"{name:<8} {records:>8} records in {seconds:6.2f} s = {records / seconds:>8,.0f} records/s   "
          f"batch p50 {statistics.median(latencies) * 1000:5.0f} ms  p95 {p95 * 1000:5.0f} ms   "
          f"connections per worker {placement:<5} {totals}")


def profile_one_batch(token: str) -> None:
    """Where the server-side time goes for one HTTP batch of 1000 new records (in-process)."""
    from django.db import connection
    from django.test import Client

    import ingestion.apis
    import ingestion.parsers
    import ingestion.services as services

    timings: dict[str, float] = {}

    def timed(owner, name: str, label: str):
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                timings[label] = timings.get(label, 0.0) + time.perf_counter() - started

        setattr(owner, name, wrapper)
        return original

    patched = [
        (ingestion.parsers.FastJSONParser, "parse", "JSON parse"),
        (ingestion.apis, "record_batch_ingest", "_ingest"),
        (services, "record_batch_validate", "validate (fast validator, 1000 items)"),
        (services, "content_hash", "content hash"),
        (services, "_upsert", "_in_transaction"),
        (services, "_select_for_update", "SQL: SELECT ... FOR UPDATE"),
        (services, "_insert", "SQL: INSERT ... ON CONFLICT DO NOTHING"),
        (services, "_update", "SQL: UPDATE ... FROM unnest"),
        (services, "record_changes_mark", "SQL: change-log marks"),
    ]
    originals = [(owner, name, timed(owner, name, label)) for owner, name, label in patched]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="127.0.0.1")
    bodies = [json.dumps([interaction(20_000_000 + k * BATCH + i) for i in range(BATCH)]).encode()
              for k in range(6)]
    runs = []
    try:
        for body in bodies[:5]:
            timings.clear()
            started = time.perf_counter()
            response = client.post("/api/v1/interactions", body, content_type="application/json")
            total = time.perf_counter() - started
            assert response.status_code == 200, response.content[:300]
            runs.append((total, dict(timings)))
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)
    total, phases = sorted(runs, key=lambda r: r[0])[len(runs) // 2]  # the median request
    sql = sum(v for k, v in phases.items() if k.startswith("SQL"))
    upsert = phases["_ingest"] - phases["validate (fast validator, 1000 items)"]
    rows = [
        ("JSON parse", phases["JSON parse"]),
        ("validate (fast validator, 1000 items)", phases["validate (fast validator, 1000 items)"]),
        ("content hash", phases["content hash"]),
        *[(k, v) for k, v in phases.items() if k.startswith("SQL")],
        ("fold + build arrays (Python)", phases["_in_transaction"] - sql),
        ("COMMIT + after-commit kick", upsert - phases["_in_transaction"] - phases["content hash"]),
        ("auth, DRF, response JSON, rest", total - phases["_ingest"] - phases["JSON parse"]),
    ]
    print(f"\nwhere the time goes: one HTTP batch of 1000 new interactions, in-process "
          f"(median of 5): {total * 1000:.0f} ms")
    for label, seconds in rows:
        print(f"  {label:<42} {seconds * 1000:6.1f} ms  {seconds / total * 100:4.0f}%")

    profiler = cProfile.Profile()
    profiler.enable()
    client.post("/api/v1/interactions", bodies[5], content_type="application/json")
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
    lines = out.getvalue().splitlines()
    first = next(i for i, line in enumerate(lines) if "ncalls" in line)
    print("\ntop functions by own time (cProfile, one more batch):")
    print("\n".join(lines[first:first + 13]))
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="gunicorn gthread threads per worker")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/1"))
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--fresh-connections", action="store_true",
                        help="a new connection per batch (a proxy in front opens one per request by default), "
                             "instead of one keep-alive connection per client thread")
    parser.add_argument("--kind", choices=sorted(KINDS), default="interactions")
    args = parser.parse_args()
    build, path = KINDS[args.kind], f"/api/v1/{args.kind}"

    database_ensure()
    django_setup(args.redis_url)
    token = fixtures_reset()
    rng = random.Random(7)
    batches = args.records // BATCH
    print(f"building {batches} batches of {BATCH} {args.kind} ...", flush=True)
    new = [json.dumps([build(b * BATCH + i, rng) for i in range(BATCH)]).encode() for b in range(batches)]

    port = free_port()
    server = gunicorn_start(port, args.workers, args.threads, args.redis_url)
    try:
        print(f"gunicorn: {args.workers} workers x {args.threads} threads on 127.0.0.1:{port}; "
              f"{args.clients} client threads; {os.cpu_count()} CPUs\n")
        post_all(port, token, [json.dumps([build(-1 - i, rng) for i in range(BATCH)]).encode()],
                 1, path)  # warm-up
        timed = {"server_pid": server.pid, "fresh": args.fresh_connections}
        report("new", batches * BATCH, *post_all(port, token, new, args.clients, path, **timed))
        report("repeat", batches * BATCH, *post_all(port, token, new, args.clients, path, **timed))

        mixed = [mixed_body(build, b, batches, rng) for b in range(batches)]
        report("mixed", batches * BATCH, *post_all(port, token, mixed, args.clients, path, **timed))
    finally:
        server.terminate()
        server.wait(timeout=30)
    if not args.no_profile and args.kind == "interactions":
        profile_one_batch(token)


if __name__ == "__main__":
    main()
