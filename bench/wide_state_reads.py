"""Reads of the wide states (quantile sketches, customer sets) that no peer shape covers: by agent by
day, by hour, by day in UTC, on the query benchmark's bench-03 (bench/query_data.py). Each through
`kpi_series_get` (the engine, no HTTP), median of `--runs`, with the cube of each table that served it
('quarter': the raw records) and the sum of the series' values, which every path must give equal.

What the wide kinds' finest cubes (sketches and sets by day × agent, sets and first contacts by UTC
hour) buy: run it as it is, then with those keys taken out of the kinds' `cubes` (metrics/measures.py;
the reads then fall to the raw records) — docs/metrics.md, "Why the wide kinds keep their finest cubes".

    BENCH_QUERY_DB=cskpi_bench_q_1000000 .venv/bin/python bench/wide_state_reads.py [--runs 5]
"""

from datetime import datetime

from common import engine_reads_main

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


def served_by_make():
    from metrics.models import MEASURE_TABLES
    from metrics.planner import scope_cube_choose

    def served_by(query, boundaries) -> str:
        """Each table the KPI reads, and the cube its read chose ('quarter': the raw records)."""
        served = []
        for table in dict.fromkeys(MEASURE_TABLES[part] for part in query.kpis[0].formula.parts):
            cube = scope_cube_choose(query=query, scope=query.scopes[0], record_type="interaction",
                                     boundaries=boundaries, granularity=query.granularity, kept=table.cubes)
            name = table.model.__name__.removeprefix("Interaction").removesuffix("Bucket").lower() or "count"
            served.append(f"{name} {cube.key}")
        return ", ".join(served)

    return served_by


if __name__ == "__main__":
    engine_reads_main(SHAPES, served_by_make)
