"""Freshness: p95 lag from an ingest commit to the change being visible in /api/v1/metrics.

    .venv/bin/python bench/freshness.py [--seconds 60] [--rate 1000] [--kill-every 5]

A real Celery worker (subprocess, Redis db 2) recomputes; this process ingests like the ingestion
service does (one transaction per batch: raw rows + dirty-bucket marks, the recompute kicked after
commit) at `rate` records/s spread over the 20 bench departments, and every batch carries one
probe record for the department `fresh-probe`. A poller reads the probe department's interaction
count through /api/v1/metrics every 50 ms; batch k is visible once the count reaches k.
Runs against the benchmark database (cskpi_bench_q, see bench/query_data.py; created and migrated
if missing, its data is not needed).

`--kill-every S`: the worker runs a prefork pool of one process, and every S seconds this process
SIGKILLs that pool process (Celery starts another), whatever it is doing — often mid-recompute,
claims taken. The lags then include taking over a dead worker's claims (its connection gone).
"""

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import celery_worker_start, database_create  # noqa: E402
from query_data import BENCH_DB, BENCH_URL  # noqa: E402

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/2")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--batches-per-second", type=int, default=10)
    parser.add_argument("--kill-every", type=float, default=0, help="SIGKILL the worker's pool process every S s")
    args = parser.parse_args()

    database_create(BENCH_DB)
    os.environ.update(DATABASE_URL=BENCH_URL, REDIS_URL=REDIS_URL, DJANGO_SETTINGS_MODULE="cskpi.settings",
                      DJANGO_ALLOWED_HOSTS="testserver,127.0.0.1,localhost")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone
    from rest_framework.test import APIClient

    from cskpi.services import department_upsert, token_issue, user_grants_upsert
    from ingestion.changes import record_changes_mark
    from ingestion.models import Interaction, RecordChange
    from metrics.services import KICK_FLAG

    call_command("migrate", verbosity=0)
    probe = department_upsert(slug="fresh-probe", name="Freshness probe", timezone="Asia/Ho_Chi_Minh")
    load = [department_upsert(slug=f"bench-{i:02d}", timezone="Asia/Ho_Chi_Minh") for i in range(20)]
    Interaction.objects.filter(source="fresh").delete()
    RecordChange.objects.all().delete()
    cache.delete(KICK_FLAG)
    user = user_grants_upsert(username="fresh-viewer", grants=[("fresh-probe", "viewer")])
    token = token_issue(user=user)

    pool = ["--pool", "prefork", "--concurrency", "1"] if args.kill_every else ["--pool", "solo"]
    worker = celery_worker_start("/tmp/cskpi-freshness-worker.log", *pool)
    time.sleep(3)

    day = timezone.now().astimezone(ZoneInfo(probe.timezone)).date()
    params = {"kpi": "interactions", "department": "fresh-probe", "granularity": "day",
              "start": (day - timedelta(days=1)).isoformat(), "end": (day + timedelta(days=2)).isoformat()}
    committed: list[float] = []
    visible: dict[int, float] = {}
    stop = threading.Event()

    def poll():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        try:
            while not stop.is_set():
                count = client.get("/api/v1/metrics", params).json()["results"][0]["value"]
                seen = time.perf_counter()
                for k in range(1, count + 1):
                    visible.setdefault(k, seen)
                time.sleep(0.05)
        finally:
            connection.close()

    kills = [0]

    def kill():
        """SIGKILL the pool process(es) of the worker every `kill_every` seconds."""
        while not stop.wait(args.kill_every):
            children = subprocess.run(["pgrep", "-P", str(worker.pid)], capture_output=True, text=True).stdout
            for pid in children.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                    kills[0] += 1
                except ProcessLookupError:
                    pass

    poller = threading.Thread(target=poll)
    poller.start()
    killer = threading.Thread(target=kill)
    if args.kill_every:
        killer.start()
    per_batch = args.rate // args.batches_per_second
    interval = 1 / args.batches_per_second
    rng = random.Random(7)
    started = time.perf_counter()
    n_batches = int(args.seconds * args.batches_per_second)
    try:
        for k in range(n_batches):
            due = started + k * interval
            if (pause := due - time.perf_counter()) > 0:
                time.sleep(pause)
            now = timezone.now()
            rows = []
            for i in range(per_batch):
                department = probe if i == 0 else load[rng.randrange(20)]
                created = now - timedelta(seconds=rng.uniform(0, 60))
                rows.append(Interaction(
                    department=department, source="fresh", external_id=f"f-{started}-{k}-{i}", content_hash="x" * 32,
                    received_at=now, channel=rng.choice(["phone", "chat", "email"]),
                    agent=f"a-{rng.randrange(25)}", created_at=created, status="resolved", contact_count=1,
                ))
            with transaction.atomic():
                Interaction.objects.bulk_create(rows)
                # The marks kick the recompute after commit (metrics.receivers), as ingestion's do.
                record_changes_mark(record_type="interaction", marks=[(r.department_id, r.created_at) for r in rows])
            committed.append(time.perf_counter())
        ingest_seconds = time.perf_counter() - started
        deadline = time.monotonic() + 60
        while len(visible) < n_batches and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        poller.join()
        if killer.is_alive():
            killer.join()
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    lags = sorted(visible[k + 1] - committed[k] for k in range(n_batches) if k + 1 in visible)
    missing = n_batches - len(lags)
    print(f"ingested {n_batches * per_batch:,} records in {ingest_seconds:.1f} s "
          f"({n_batches * per_batch / ingest_seconds:,.0f} records/s, {n_batches} transactions)")
    print(f"lag commit → visible in /api/v1/metrics: median {statistics.median(lags) * 1000:.0f} ms, "
          f"p95 {lags[int(0.95 * (len(lags) - 1))] * 1000:.0f} ms, max {lags[-1] * 1000:.0f} ms"
          + (f"; {missing} batches never visible" if missing else "")
          + (f"; worker pool SIGKILLed {kills[0]} times (every {args.kill_every:g} s)" if args.kill_every else ""))
    # Leave the benchmark data as it was: remove the load and recompute the buckets it touched.
    from metrics.services import dirty_buckets_recompute

    fresh = Interaction.objects.filter(source="fresh")
    with transaction.atomic():
        record_changes_mark(record_type="interaction", marks=list(fresh.values_list("department_id", "created_at")))
        fresh.delete()
    dirty_buckets_recompute(time_budget=600)


if __name__ == "__main__":
    main()
