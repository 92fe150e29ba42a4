"""Time-in-state reads that no peer shape covers (bench/peers.py reads the day cube), on the status
events of the query benchmark's bench-03 (25 agents, 60 events a day each for a year: bench/query_data.py
builds them): by agent in UTC, agent × hour, a 45-minute zone by day and by agent. Each through
`kpi_series_get` (the engine, no HTTP), median of `--runs`, with the cube that served it ('quarter': the
raw events, cut in Python) and the sum of the values, which every path must give equal.

    BENCH_QUERY_DB=cskpi_bench_q_1000000 .venv/bin/python bench/time_in_state_reads.py [--runs 5]
"""

import argparse
import os
import statistics
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from common import django_setup

BENCH_DB = os.environ.get("BENCH_QUERY_DB", "cskpi_bench_q")
YEAR = (datetime(2025, 1, 1), datetime(2026, 1, 1))
MONTH = (datetime(2025, 3, 1), datetime(2025, 4, 1))
# (name, KPI, zone, local range, granularity, group_by)
SHAPES = [
    ("online time by agent, by day in UTC, a year", "agent_online_time", "UTC", YEAR, "day", ("agent",)),
    ("busy time by agent × hour, a month", "agent_busy_time", "Asia/Ho_Chi_Minh", MONTH, "hour", ("agent",)),
    ("online time by agent, a month's total in UTC", "agent_online_time", "UTC", MONTH, "total", ("agent",)),
    ("online time by day in Asia/Kathmandu, a year", "agent_online_time", "Asia/Kathmandu", YEAR, "day", ()),
    ("online time by agent in Asia/Kathmandu, a month's total", "agent_online_time", "Asia/Kathmandu", MONTH,
     "total", ("agent",)),
    ("online time by day in the department's zone, a year", "agent_online_time", "Asia/Ho_Chi_Minh", YEAR, "day",
     ()),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    django_setup(BENCH_DB)
    from cskpi.models import Department
    from metrics.catalog import KPIS
    from metrics.selectors import DepartmentScope, KpiQuery, kpi_series_get, query_plan

    department = Department.objects.get(slug="bench-03")
    print(f"database {BENCH_DB}, department bench-03, median of {args.runs}")
    print("| query | cube | median | sum of values |")
    print("|---|---|---|---|")
    for name, kpi, zone, (start, end), granularity, group_by in SHAPES:
        tz = ZoneInfo(zone)
        query = KpiQuery(kpis=(KPIS[kpi],), scopes=(DepartmentScope(department),),
                         start=start.replace(tzinfo=tz).astimezone(UTC), end=end.replace(tzinfo=tz).astimezone(UTC),
                         zone=zone, granularity=granularity, group_by=group_by)
        [cube] = query_plan(query=query).values()
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            answer = kpi_series_get(query=query)
            times.append((time.perf_counter() - started) * 1000)
        total = sum(result["value"] or 0 for result in answer["results"])
        print(f"| {name} | {cube} | {statistics.median(times):,.1f} ms | {total:,.0f} |")


if __name__ == "__main__":
    main()
