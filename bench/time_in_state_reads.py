"""Time-in-state reads that no peer shape covers (bench/peers.py reads the day cube), on the status
events of the query benchmark's bench-03 (25 agents, 60 events a day each for a year: bench/query_data.py
builds them): by agent in UTC, agent × hour, a 45-minute zone by day and by agent. Each through
`kpi_series_get` (the engine, no HTTP), median of `--runs`, with the cube that served it ('quarter': the
raw events, cut in Python) and the sum of the values, which every path must give equal.

    BENCH_QUERY_DB=cskpi_bench_q_1000000 .venv/bin/python bench/time_in_state_reads.py [--runs 5]
"""

from datetime import datetime

from common import engine_reads_main

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


def served_by_make():
    from metrics.selectors import query_plan

    def served_by(query, boundaries) -> str:
        [cube] = query_plan(query=query).values()
        return cube

    return served_by


if __name__ == "__main__":
    engine_reads_main(SHAPES, served_by_make)
