"""Alert latency: from the ingest response of a breaching batch to its signed webhook arriving.

    .venv/bin/python bench/alert_latency.py [--alerts 40] [--load-rate 200]

Starts gunicorn (2 workers), a Celery worker (prefork, 2 processes) and a loopback HTTP receiver,
on the database cskpi_bench_alerts (created if missing) and Redis (BENCH_REDIS_URL, default db 2).
Each round creates a rule (`interactions` above 0 over PT15M on a channel of its own, webhook to the
receiver), POSTs one interaction on that channel through the API, and times the webhook's arrival
after the ingest response: recompute (kicked by the ingest) → evaluation (kicked by the recompute)
→ delivery task → POST. Meanwhile a background thread ingests `load-rate` records/s into five other
departments, so the recompute pipeline is busy as in production. Prints median, p95 and max.
"""

import argparse
import json
import os
import statistics
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import database_create  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BENCH_DB = "cskpi_bench_alerts"
BENCH_URL = f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/2")
SECRET = "bench-secret-0123456789"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=40)
    parser.add_argument("--load-rate", type=int, default=200, help="background records/s (0: none)")
    args = parser.parse_args()

    database_create(BENCH_DB)
    os.environ.update(DATABASE_URL=BENCH_URL, REDIS_URL=REDIS_URL, DJANGO_SETTINGS_MODULE="cskpi.settings",
                      CSKPI_WEBHOOK_ALLOWED_HOSTS="127.0.0.1", LOG_LEVEL="WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    from cskpi.celery import app
    from cskpi.services import department_upsert, token_issue, user_grants_upsert
    from metrics.alerting.models import AlertRule
    from metrics.alerting.services import alert_rule_create, alert_rule_delete
    from tests.metrics.alerting.receiver import Receiver, signature_verifies
    from tests.processes import http, service_env, start_web, start_worker

    call_command("migrate", verbosity=0)
    probe = department_upsert(slug="alert-probe", name="Alert probe", timezone="Asia/Ho_Chi_Minh")
    load = [department_upsert(slug=f"alert-load-{i}", timezone="Asia/Ho_Chi_Minh").slug for i in range(5)]
    AlertRule.objects.all().delete()
    user = user_grants_upsert(username="alert-bench", grants=[(probe.slug, "ingest"), (probe.slug, "manager"),
                                                              *((slug, "ingest") for slug in load)])
    token = token_issue(user=user)
    app.control.purge()

    logs = Path("/tmp/cskpi-alert-bench")
    logs.mkdir(exist_ok=True)
    env = service_env(redis_url=REDIS_URL, DATABASE_URL=BENCH_URL, CSKPI_WEBHOOK_ALLOWED_HOSTS="127.0.0.1")
    env["DATABASE_URL"] = BENCH_URL
    web = start_web(logs, env, workers=2)
    worker = start_worker(logs, env, pool="prefork", concurrency=2)
    receiver = Receiver()
    stop = threading.Event()
    run = f"{time.time():.0f}"

    def background():
        k = 0
        while not stop.is_set() and args.load_rate:
            started = time.perf_counter()
            now = datetime.now(UTC)
            batch = [{"external_id": f"load-{run}-{k}-{i}", "department": load[i % 5], "channel": "phone",
                      "agent": f"a-{i % 20}", "created_at": (now - timedelta(seconds=i % 60)).isoformat(),
                      "status": "resolved"} for i in range(max(args.load_rate // 5, 1))]
            http("POST", f"{web.url}/api/v1/interactions", token=token, body=batch)
            k += 1
            time.sleep(max(0.2 - (time.perf_counter() - started), 0))

    loader = threading.Thread(target=background, daemon=True)
    loader.start()
    lags: list[float] = []
    try:
        time.sleep(2)
        for i in range(args.alerts):
            channel = f"probe-{run}-{i}"
            rule = alert_rule_create(department=probe, name=channel, kpi="interactions", channel=channel,
                                     window_seconds=900, condition="above", threshold=0, min_sample_size=0,
                                     for_evaluations=1, webhook_url=receiver.url, secret=SECRET)
            seen = len(receiver.requests)
            status, _, body = http("POST", f"{web.url}/api/v1/interactions", token=token, body={
                "external_id": f"probe-{run}-{i}", "department": probe.slug, "channel": channel,
                "created_at": datetime.now(UTC).isoformat(), "status": "open"})
            answered = time.monotonic()
            assert status == 200, body
            deadline = answered + 30
            arrived = None
            while arrived is None and time.monotonic() < deadline:
                for request in receiver.requests[seen:]:
                    payload = json.loads(request.body)
                    if payload["rule"]["id"] == str(rule.id):
                        assert signature_verifies(secret=SECRET, header=request.headers["X-Cskpi-Signature"],
                                                  body=request.body)
                        arrived = request.at
                time.sleep(0.005)
            if arrived is None:
                print(f"round {i}: no webhook within 30 s")
            else:
                lags.append(arrived - answered)
            alert_rule_delete(rule=rule)
            time.sleep(0.3)
    finally:
        stop.set()
        loader.join(timeout=10)
        worker.stop()
        web.stop()
        receiver.stop()
    lags.sort()
    print(f"{len(lags)} of {args.alerts} alerts delivered; background load {args.load_rate} records/s")
    print(f"lag ingest response → signed webhook received: median {statistics.median(lags) * 1000:.0f} ms, "
          f"p95 {lags[int(0.95 * (len(lags) - 1))] * 1000:.0f} ms, max {lags[-1] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
