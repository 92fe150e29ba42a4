"""Agent presence benchmark: presence KPIs from the cubes against the same answers from raw events.

    .venv/bin/python bench/agents.py [--small] [--agents 500] [--departments 20] [--days 365]
                                     [--events-per-day 60] [--runs 50] [--regenerate]

PostgreSQL database cskpi_bench_agents on 127.0.0.1 (user postgres; BENCH_AGENTS_DB to rename it).
The full size is the issue's: 500 agents × 60 status events a day × a year in 20 departments (about
11M events); `--small` is 40 agents × 30 events a day × 60 days in 4 departments, to prove it works.

1. Ingest: batches of 1000 new events POSTed through the API (Django test client: JSON parsing,
   bearer auth, validation, upsert, change-log marks; the recompute kick is disconnected, as a
   worker would run it elsewhere) -> events/s.
2. The rest of the events generated in SQL (generate_series), the cubes built by the rebuild.
3. (a) `occupancy` by agent, one department, one month; (b) `agent_online_time` by day, one
   department, the whole span: median and p95 through the API, and the same answer computed on the
   fly from the raw events with SQL window functions (LEAD over each agent's events, cut at the
   period edges); the script asserts the answers are equal.
"""

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from common import database_create, django_setup, migrate, p95, timed  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BENCH_DB = os.environ.get("BENCH_AGENTS_DB", "cskpi_bench_agents")
ZONE = "Asia/Ho_Chi_Minh"
START = datetime(2025, 1, 1, tzinfo=ZoneInfo(ZONE))
STATUSES = ("available", "busy", "away", "offline")

# The on-the-fly twins. Each event holds until the agent's next one (LEAD, same tie-break as the
# engine), at most the timeout; events from a timeout before the range on can reach into it.
_INTERVALS = """
WITH ev AS (
    SELECT agent, status, at,
           lead(at) OVER (PARTITION BY agent ORDER BY at, source, external_id) AS next_at
    FROM ingestion_agentevent
    WHERE department_id = %(department)s AND at >= %(start)s::timestamptz - %(timeout)s * interval '1 second'
      AND at < %(end)s
), iv AS (
    SELECT agent, status, at AS s,
           LEAST(COALESCE(next_at, 'infinity'), at + %(timeout)s * interval '1 second', %(now)s) AS e
    FROM ev
)
"""
RAW_OCCUPANCY = _INTERVALS + """
SELECT agent,
       sum(EXTRACT(EPOCH FROM LEAST(e, %(end)s) - GREATEST(s, %(start)s))) FILTER (WHERE status = 'busy'),
       sum(EXTRACT(EPOCH FROM LEAST(e, %(end)s) - GREATEST(s, %(start)s))) FILTER (WHERE status = 'available')
FROM iv WHERE e > %(start)s AND s < %(end)s AND status IN ('busy', 'available')
GROUP BY agent ORDER BY agent
"""
# Each interval (at most a timeout long) cut at the local midnights it crosses: a LATERAL series of
# its own days, so the cost follows the intervals, not intervals × days.
RAW_ONLINE_BY_DAY = _INTERVALS + """
SELECT d::date, sum(EXTRACT(EPOCH FROM
           LEAST(iv.e, %(end)s, ((d::date + 1)::timestamp AT TIME ZONE %(zone)s))
           - GREATEST(iv.s, %(start)s, ((d::date)::timestamp AT TIME ZONE %(zone)s))))
FROM iv, LATERAL generate_series((GREATEST(iv.s, %(start)s) AT TIME ZONE %(zone)s)::date,
                                 ((LEAST(iv.e, %(end)s) - interval '1 microsecond') AT TIME ZONE %(zone)s)::date,
                                 interval '1 day') d
WHERE iv.status IN ('available', 'busy', 'away') AND iv.e > iv.s AND iv.e > %(start)s AND iv.s < %(end)s
GROUP BY 1 ORDER BY 1
"""

# Events in SQL: per agent and day, `per_day` events spread over the day (a few minutes of jitter),
# statuses mostly available/busy, some away, a few offline. Tie-break columns as the API writes them.
_GENERATE = """
INSERT INTO ingestion_agentevent (department_id, source, external_id, content_hash, received_at, agent, status,
                                  at, reason, updated_at)
SELECT (%(departments)s::bigint[])[1 + a %% %(n_departments)s], 'bench', 'g-' || a || '-' || d || '-' || k,
       md5(a || '-' || d || '-' || k), now(), 'agent-' || a,
       CASE WHEN r < 0.45 THEN 'available' WHEN r < 0.85 THEN 'busy' WHEN r < 0.95 THEN 'away' ELSE 'offline' END,
       %(start)s::timestamptz + d * interval '1 day' + (k * 86400.0 / %(per_day)s + floor(random() * 300))
           * interval '1 second', NULL, NULL
FROM (SELECT a, d, k, random() AS r
      FROM generate_series(0, %(agents)s - 1) a, generate_series(%(first_day)s, %(days)s - 1) d,
           generate_series(0, %(per_day)s - 1) k) s
"""


def ingest_measure(client, departments, *, agents: int, per_day: int, days: int) -> tuple[int, float]:
    """POST the first days' events in batches of 1000 -> (events, seconds). Marks are written; the
    recompute kick is disconnected (a worker runs it elsewhere); the rebuild builds the cubes later."""
    from ingestion.signals import record_changes_marked
    from metrics.receivers import recompute_kick_on_commit

    bodies, batch = [], []
    for d in range(days):
        for a in range(agents):
            for k in range(per_day):
                at = START + timedelta(days=d, seconds=k * 86400 / per_day + (a * 37 + k * 11) % 300)
                r = (a * 7919 + d * 104729 + k * 1299709) % 100
                status = "available" if r < 45 else "busy" if r < 85 else "away" if r < 95 else "offline"
                batch.append({"external_id": f"g-{a}-{d}-{k}", "source": "bench",
                              "department": departments[a % len(departments)].slug, "agent": f"agent-{a}",
                              "status": status, "at": at.isoformat()})
                if len(batch) == 1000:
                    bodies.append(json.dumps(batch))
                    batch = []
    if batch:
        bodies.append(json.dumps(batch))
    record_changes_marked.disconnect(dispatch_uid="metrics-recompute-kick")
    batch_ms = []
    try:
        for body in bodies:
            started = time.perf_counter()
            response = client.post("/api/v1/agent-events", body, content_type="application/json")
            batch_ms.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.content[:500]
    finally:
        record_changes_marked.connect(recompute_kick_on_commit, dispatch_uid="metrics-recompute-kick")
    return sum(len(json.loads(b)) for b in bodies), batch_ms


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--departments", type=int, default=20)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--events-per-day", type=int, default=60)
    parser.add_argument("--ingest-days", type=int, default=2,
                        help="Days of events ingested through the API (the rest is generated in SQL).")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--raw-runs", type=int, default=5)
    parser.add_argument("--regenerate", action="store_true")
    args = parser.parse_args()
    if args.small:
        args.agents, args.departments, args.days, args.events_per_day = 40, 4, 60, 30
        args.runs, args.raw_runs, args.ingest_days = min(args.runs, 20), min(args.raw_runs, 3), 10
    size = f"{args.agents}a-{args.departments}d-{args.days}days-{args.events_per_day}"

    database_create(BENCH_DB, regenerate=args.regenerate)
    django_setup(BENCH_DB, statement_timeout_ms=1_800_000)
    from django.conf import settings
    from django.db import connection
    from rest_framework.test import APIClient

    from cskpi.models import Department
    from cskpi.services import department_upsert, token_issue, user_grants_upsert
    from ingestion.models import AgentEvent, RecordChange
    from metrics.models import BUCKET_MODELS
    from metrics.services import department_cubes_rebuild

    migrate()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_issue(user=user_grants_upsert(username='bench', staff=True))}")
    marker = Department.objects.filter(slug="bench-size", name=size).exists()
    departments = [department_upsert(slug=f"bench-{i:02d}", name=f"Bench {i}", timezone=ZONE)
                   for i in range(args.departments)]
    if not marker:
        print(f"generating {size} ...", flush=True)
        AgentEvent.objects.all().delete()
        RecordChange.objects.all().delete()
        for models in BUCKET_MODELS.values():
            for model in models:
                model.objects.all().delete()
        Department.objects.filter(slug__startswith="bench-").exclude(
            slug__in=[d.slug for d in departments]).delete()
        events, batch_ms = ingest_measure(client, departments, agents=args.agents, per_day=args.events_per_day,
                                          days=args.ingest_days)
        seconds = sum(batch_ms) / 1000
        print(f"ingest through the API (one client, batches of 1000 new events, marks written): {events:,} events "
              f"in {seconds:.1f} s = {events / seconds:,.0f} events/s; batch median {statistics.median(batch_ms):.0f} "
              f"ms = {1000 / statistics.median(batch_ms) * 1000:,.0f} events/s, p95 {p95(batch_ms):.0f} ms",
              flush=True)
        RecordChange.objects.all().delete()
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SELECT setseed(0.42)")
            for first in range(args.ingest_days, args.days, 30):
                cursor.execute(_GENERATE, {
                    "departments": [d.id for d in departments], "n_departments": len(departments),
                    "agents": args.agents, "per_day": args.events_per_day, "start": START,
                    "first_day": first, "days": min(first + 30, args.days)})
                print(f"  days generated: {min(first + 30, args.days)}/{args.days}", flush=True)
            cursor.execute("ANALYZE ingestion_agentevent")
        print(f"generated in SQL: {time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
        for i, department in enumerate(departments):
            department_cubes_rebuild(department=department, chunk_days=31)
            print(f"  cubes rebuilt: {i + 1}/{len(departments)}", flush=True)
        print(f"rebuild: {time.perf_counter() - started:.1f} s", flush=True)
        department_upsert(slug="bench-size", name=size, timezone=ZONE)
    total = AgentEvent.objects.count()
    print(f"\nraw agent events: {total:,} ({size})")
    with connection.cursor() as cursor:
        cursor.execute("SELECT cube, count(*) FROM metrics_agenteventbucket GROUP BY cube ORDER BY 2")
        for cube, rows in cursor.fetchall():
            print(f"  {cube:<28} {rows:>10,} rows")

    department = departments[min(3, len(departments) - 1)]
    timeout = settings.CSKPI_PRESENCE_TIMEOUT_SECONDS
    zone = ZoneInfo(ZONE)
    month = (datetime(2025, 2, 1, tzinfo=zone), datetime(2025, 3, 1, tzinfo=zone))
    span_end = START + timedelta(days=args.days)
    span = (START, datetime.combine(span_end.date(), datetime.min.time(), tzinfo=zone))

    def api(params: str):
        response = client.get(f"/api/v1/metrics?{params}")
        assert response.status_code == 200, response.content[:500]
        return response.json()

    cases = []
    # (a) occupancy by agent, one department, one month
    params_a = (f"kpi=occupancy&department={department.slug}&granularity=month&group_by=agent"
                f"&start={month[0].date()}&end={month[1].date()}")

    def raw_a():
        with connection.cursor() as cursor:
            cursor.execute(RAW_OCCUPANCY, {"department": department.id, "start": month[0], "end": month[1],
                                           "timeout": timeout, "now": datetime.now(UTC)})
            rows = [(agent, float(busy or 0), float(available or 0)) for agent, busy, available in cursor.fetchall()]
            return {agent: busy / (busy + available) * 100 for agent, busy, available in rows if busy + available > 0}

    def check_a(body, raw):
        got = {r["group"]["agent"]: r["value"] for r in body["results"] if r["value"] is not None}
        assert set(got) == set(raw), (sorted(got)[:5], sorted(raw)[:5])
        for agent, value in raw.items():
            assert abs(got[agent] - value) <= 1e-6 * max(1.0, abs(value)), (agent, got[agent], value)

    cases.append(("(a) occupancy by agent, one department, a month", params_a, raw_a, check_a))
    # (b) agent_online_time by day, one department, the whole span
    params_b = (f"kpi=agent_online_time&department={department.slug}&granularity=day"
                f"&start={span[0].date()}&end={span[1].date()}")

    def raw_b():
        with connection.cursor() as cursor:
            cursor.execute(RAW_ONLINE_BY_DAY, {
                "department": department.id, "start": span[0], "end": span[1], "timeout": timeout,
                "now": datetime.now(UTC), "zone": ZONE})
            return {day.isoformat(): float(seconds) for day, seconds in cursor.fetchall()}

    def check_b(body, raw):
        [result] = body["results"]
        got = {p["start"][:10]: p["value"] for p in result["series"]}
        for day, value in got.items():
            expected = raw.get(day, 0.0)
            assert abs(value - expected) <= 1e-6 * max(1.0, expected), (day, value, expected)
        assert set(raw) <= set(got)

    cases.append((f"(b) agent_online_time by day, one department, {args.days} days", params_b, raw_b, check_b))

    print(f"\n{'query':<58} {'API median / p95':>20} {'on the fly median':>18} {'ratio':>7}")
    for name, params, raw_fn, check in cases:
        samples, body = timed(lambda params=params: api(params), args.runs)
        raw_samples, raw = timed(raw_fn, args.raw_runs, warmup=1)
        check(body, raw)
        median, raw_median = statistics.median(samples), statistics.median(raw_samples)
        print(f"{name:<58} {median:>8.1f} / {p95(samples):>6.1f} ms {raw_median:>14.1f} ms {raw_median / median:>6.0f}×",
              flush=True)
    print("\nanswers checked equal (API vs on the fly)")


if __name__ == "__main__":
    main()
