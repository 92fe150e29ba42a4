"""Reads of the wide states (quantile sketches, customer sets) that no peer shape covers: by agent by
day, by hour, by day in UTC, on the query benchmark's bench-03 (bench/query_data.py). Each through
`kpi_series_get` (the engine, no HTTP), median of `--runs`, with the cube of each table that served it
('quarter': the raw records) and the sum of the series' values, which every path must give equal.

What the wide kinds' finest cubes (sketches and sets by day × agent, sets and first contacts by UTC
hour) buy: run it as it is, then with those keys taken out of the kinds' `cubes` (metrics/measures.py;
the reads then fall to the raw records) — docs/metrics.md, "Why the wide kinds keep their finest cubes".

    BENCH_QUERY_DB=cskpi_bench_q_1000000 .venv/bin/python bench/wide_state_reads.py [--runs 5]
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
HCM = "Asia/Ho_Chi_Minh"
# (name, KPI, zone, local range, granularity, group_by)
SHAPES = [
    ("p90 handle time by agent, by day, a month", "average_handle_time_p90", HCM, MONTH, "day", ("agent",)),
    ("p90 handle time by agent, by day, a year", "average_handle_time_p90", HCM, YEAR, "day", ("agent",)),
    ("p90 handle time by agent, by month, a year", "average_handle_time_p90", HCM, YEAR, "month", ("agent",)),
    ("customers by agent, by day, a month", "customers", HCM, MONTH, "day", ("agent",)),
    ("customers by agent, by day, a year", "customers", HCM, YEAR, "day", ("agent",)),
    ("customers by agent, by month, a year", "customers", HCM, YEAR, "month", ("agent",)),
    ("customers by hour, a month", "customers", HCM, MONTH, "hour", ()),
    ("customers by day in UTC, a year", "customers", "UTC", YEAR, "day", ()),
    ("new customers by hour, a month", "new_customers", HCM, MONTH, "hour", ()),
    ("new customers by day in UTC, a year", "new_customers", "UTC", YEAR, "day", ()),
    ("customers by day, a year (the peer shape)", "customers", HCM, YEAR, "day", ()),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    django_setup(BENCH_DB)
    from cskpi.models import Department
    from metrics.catalog import KPIS
    from metrics.models import MEASURE_TABLES
    from metrics.periods import boundaries_get
    from metrics.planner import scope_cube_choose
    from metrics.selectors import DepartmentScope, KpiQuery, kpi_series_get

    department = Department.objects.get(slug="bench-03")
    print(f"database {BENCH_DB}, department bench-03, median of {args.runs}")
    print("| query | cube | median | sum of values |")
    print("|---|---|---|---|")
    for name, kpi, zone, (start, end), granularity, group_by in SHAPES:
        tz = ZoneInfo(zone)
        query = KpiQuery(kpis=(KPIS[kpi],), scopes=(DepartmentScope(department),),
                         start=start.replace(tzinfo=tz).astimezone(UTC), end=end.replace(tzinfo=tz).astimezone(UTC),
                         zone=zone, granularity=granularity, group_by=group_by)
        boundaries = boundaries_get(start=query.start, end=query.end, zone=query.tz, granularity=granularity)
        tables = {MEASURE_TABLES[m]: None for m in KPIS[kpi].formula.parts}
        served = []
        for table in tables:
            cube = scope_cube_choose(query=query, scope=query.scopes[0], record_type="interaction",
                                     boundaries=boundaries, granularity=granularity, kept=table.cubes)
            name_of_table = table.model.__name__.removeprefix("Interaction").removesuffix("Bucket").lower() or "count"
            served.append(f"{name_of_table} {cube.key}")
        cubes = ", ".join(served)
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            answer = kpi_series_get(query=query)
            times.append((time.perf_counter() - started) * 1000)
        total = sum(point["value"] or 0 for result in answer["results"] for point in result["series"])
        print(f"| {name} | {cubes} | {statistics.median(times):,.1f} ms | {total:,.0f} |")


if __name__ == "__main__":
    main()
