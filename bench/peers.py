"""Peers: /api/v1/metrics against DuckDB over the same raw rows, shape by shape, in one run.

    .venv/bin/python bench/peers.py [--records 1000000,5000000] [--runs 30]

For each size N: the PostgreSQL database cskpi_bench_q (5M) or cskpi_bench_q_<N> (other sizes),
made by bench/query_data.py (N interactions over a year, 20 departments in Asia/Ho_Chi_Minh, 25
agents each, 6 channels; cubes built by the rebuild code), reused when present. The raw rows are
exported from PostgreSQL (COPY) into a DuckDB database file beside it (/tmp/cskpi-peers-<db>.duckdb),
a native table sorted by department and time — DuckDB's best layout for these queries.

Per shape: the API through the Django stack (test client: routing, auth, access, validation, engine,
JSON) and DuckDB's engine alone (`execute(...).fetchall()`), in interleaved rounds (API, DuckDB,
next shape, ...) after warm-up; the answers are checked equal (percentiles: within the sketch's
documented bound, max(1 %, 1 s), of DuckDB's exact `quantile_disc`). Prints median and p95 of each
and the ratio DuckDB median ÷ API median (above 1: the API is faster), then the storage of the raw
rows and of every cube.

One shape per measure kind beside the counts and sums: a percentile (quantile sketches), distinct
customers (exact sets; DuckDB `count(DISTINCT)`), business-hours SLA attainment (the measured SLA
state of each record) and time in state (agent online time from status events; DuckDB `lead()` over
each agent's events, cut at the local midnights of the department's zone, which has no DST).
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from common import p95  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KPIS_4 = ["interactions", "fcr_rate", "average_handle_time", "abandonment_rate"]
YEAR = ("2025-01-01", "2026-01-01")

# The four KPIs in DuckDB, as the catalog defines them (null on a zero denominator).
_SELECT_4 = """
    count(*) AS interactions,
    100.0 * count(*) FILTER (WHERE status = 'resolved' AND contact_count = 1)
          / nullif(count(*) FILTER (WHERE status = 'resolved'), 0) AS fcr_rate,
    sum(handle_seconds)::DOUBLE / nullif(count(handle_seconds), 0) AS average_handle_time,
    100.0 * count(*) FILTER (WHERE status = 'abandoned') / count(*) AS abandonment_rate
"""
_SELECT_FCR = """
    100.0 * count(*) FILTER (WHERE status = 'resolved' AND contact_count = 1)
          / nullif(count(*) FILTER (WHERE status = 'resolved'), 0) AS fcr_rate
"""


def _period(granularity: str, zone: str) -> str:
    return f"date_trunc('{granularity}', timezone('{zone}', created_at))"


_SELECT_SLA = """
    100.0 * count(*) FILTER (WHERE first_response_sla = 'met')
          / nullif(count(*) FILTER (WHERE first_response_sla IN ('met', 'breached')), 0) AS sla_first_response_rate
"""
# Time in state: each event holds until the agent's next one (same tie-break as the engine), at most
# the presence timeout; events from a timeout before the range on can reach into it. Local timestamps:
# the department's zone has no DST, so a local day is 86,400 s.
_ONLINE_BY_DAY = """
WITH ev AS (
    SELECT agent, status, "at",
           lead("at") OVER (PARTITION BY agent ORDER BY "at", source, external_id) AS next_at
    FROM agent_event
    WHERE department_id = $dept AND "at" >= $start - to_seconds($timeout) AND "at" < $end
), iv AS (
    SELECT timezone('{zone}', greatest("at", $start)) AS s,
           timezone('{zone}', least(coalesce(next_at, 'infinity'::TIMESTAMPTZ), "at" + to_seconds($timeout),
                                    now(), $end)) AS e
    FROM ev WHERE status IN ('available', 'busy', 'away')
)
SELECT d, sum(epoch(least(e, d + INTERVAL 1 DAY)) - epoch(greatest(s, d))) AS agent_online_time
FROM (SELECT s, e, unnest(range(date_trunc('day', s), e, INTERVAL 1 DAY)) AS d FROM iv WHERE e > s)
GROUP BY d ORDER BY d
"""


def _shape(name, params, kpis, group, zone, granularity, where="department_id = $dept", select=_SELECT_FCR,
           having="", quantile=False, sql=None, relative=1e-9):
    """A shape: API parameters, and the DuckDB query giving (period?, group..., kpi values...)."""
    period = [] if granularity == "total" else [_period(granularity, zone)]
    keys = period + list(group)
    sql = sql or (f"SELECT {', '.join(keys + [select])} FROM interaction "
                  f"WHERE {where} AND created_at >= $start AND created_at < $end "
                  + (f"AND {having} " if having else "")
                  + ("GROUP BY ALL ORDER BY ALL" if keys else ""))
    return {"name": name, "params": {**params, "granularity": granularity, "timezone": zone}, "kpis": kpis,
            "group": group, "zone": zone, "granularity": granularity, "sql": sql, "quantile": quantile,
            "relative": relative}


def shapes(department_id: int) -> list[dict]:
    hcm, kol = "Asia/Ho_Chi_Minh", "Asia/Kolkata"
    return [
        _shape("fcr_rate, 1 dept, by day, a year (dept zone)", {"kpi": "fcr_rate"}, ["fcr_rate"], [], hcm, "day"),
        _shape("4 KPIs by agent, year total", {"kpi": ",".join(KPIS_4), "group_by": "agent"}, KPIS_4,
               ["agent"], hcm, "total", select=_SELECT_4),
        _shape("4 KPIs by agent, by month", {"kpi": ",".join(KPIS_4), "group_by": "agent"}, KPIS_4, ["agent"],
               hcm, "month", select=_SELECT_4),
        _shape("fcr_rate by day in UTC (not the dept zone)", {"kpi": "fcr_rate"}, ["fcr_rate"], [], "UTC", "day"),
        _shape("fcr_rate by day in Asia/Kolkata", {"kpi": "fcr_rate"}, ["fcr_rate"], [], kol, "day"),
        _shape("fcr_rate by hour, 31 days", {"kpi": "fcr_rate", "start": "2025-03-01", "end": "2025-04-01"},
               ["fcr_rate"], [], hcm, "hour"),
        _shape("4 KPIs, agent × channel by month", {"kpi": ",".join(KPIS_4), "group_by": "agent,channel"},
               KPIS_4, ["agent", "channel"], hcm, "month", select=_SELECT_4),
        _shape("fcr_rate, 20 departments by day, a year", {"kpi": "fcr_rate", "group_by": "department",
                                                           "department": "*"},
               ["fcr_rate"], ["department"], hcm, "day", where="true"),
        _shape("first_response_time_p90 by day, a year (percentile)", {"kpi": "first_response_time_p90"},
               ["first_response_time_p90"], [], hcm, "day",
               select="quantile_disc(first_response_seconds, 0.9) AS p90",
               having="first_response_seconds IS NOT NULL", quantile=True),
        _shape("customers by day, a year (distinct)", {"kpi": "customers"}, ["customers"], [], hcm, "day",
               select="count(DISTINCT customer) AS customers", having="customer IS NOT NULL"),
        _shape("sla_first_response_rate by day, a year (business SLA)", {"kpi": "sla_first_response_rate"},
               ["sla_first_response_rate"], [], hcm, "day", select=_SELECT_SLA),
        # Float seconds summed in another order: equal within 1e-9 of the day's total.
        _shape("agent_online_time by day, a year (time in state)", {"kpi": "agent_online_time"},
               ["agent_online_time"], [], hcm, "day", sql=_ONLINE_BY_DAY.format(zone=hcm), relative=1e-9),
    ]


def shape_params(shape: dict, department: str, slugs: list[str]) -> dict:
    """The /api/v1/metrics query string of a shape: a year of `department` unless the shape says
    otherwise (`*`: every department of `slugs`; UTC: a year of UTC days)."""
    params = {"start": YEAR[0], "end": YEAR[1], "department": department, **shape["params"]}
    if params["department"] == "*":
        params["department"] = ",".join(slugs)
    if shape["zone"] == "UTC":  # a year of UTC days
        params.update(start=f"{YEAR[0]}T00:00:00Z", end=f"{YEAR[1]}T00:00:00Z")
    return params


def duckdb_ensure(path: Path, raw_rows: int):
    """The DuckDB copy of the raw interactions, sorted by department and time."""
    import duckdb
    from django.db import connection

    if path.exists():
        con = duckdb.connect(str(path))
        try:
            if (con.execute("SELECT count(*) FROM interaction").fetchone()[0] == raw_rows
                    and con.execute("SELECT count(*) FROM agent_event").fetchone()[0]):
                return con
        except duckdb.Error:
            pass
        con.close()
        path.unlink()
    started = time.perf_counter()
    csv = path.with_suffix(".csv")
    columns = ("i.department_id, d.slug AS department, i.agent, i.channel, i.created_at, i.status, "
               "i.contact_count, i.handle_seconds, i.first_response_seconds, i.customer, i.first_response_sla")
    with open(csv, "wb") as out, connection.cursor() as cursor:
        raw = cursor.connection
        with raw.cursor().copy(f"COPY (SELECT {columns} FROM ingestion_interaction i JOIN cskpi_department d "
                               f"ON d.id = i.department_id) TO STDOUT (FORMAT csv)") as copy:
            for chunk in copy:
                out.write(chunk)
    con = duckdb.connect(str(path))
    con.execute("""
        CREATE TABLE interaction AS
        SELECT * FROM read_csv($csv, header = false, columns = {
            'department_id': 'BIGINT', 'department': 'VARCHAR', 'agent': 'VARCHAR', 'channel': 'VARCHAR',
            'created_at': 'TIMESTAMPTZ', 'status': 'VARCHAR', 'contact_count': 'INTEGER',
            'handle_seconds': 'DOUBLE', 'first_response_seconds': 'DOUBLE', 'customer': 'VARCHAR',
            'first_response_sla': 'VARCHAR'})
        ORDER BY department_id, created_at
    """, {"csv": str(csv)})
    with open(csv, "wb") as out, connection.cursor() as cursor:
        with cursor.connection.cursor().copy(
                "COPY (SELECT department_id, agent, status, at, source, external_id FROM ingestion_agentevent) "
                "TO STDOUT (FORMAT csv)") as copy:
            for chunk in copy:
                out.write(chunk)
    con.execute("""
        CREATE TABLE agent_event AS
        SELECT * FROM read_csv($csv, header = false, columns = {
            'department_id': 'BIGINT', 'agent': 'VARCHAR', 'status': 'VARCHAR', 'at': 'TIMESTAMPTZ',
            'source': 'VARCHAR', 'external_id': 'VARCHAR'})
        ORDER BY department_id, "at"
    """, {"csv": str(csv)})
    con.execute("CHECKPOINT")
    csv.unlink()
    print(f"  DuckDB copy of {raw_rows:,} rows made in {time.perf_counter() - started:.0f} s", flush=True)
    return con


def _local_key(start_iso: str, zone: str) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime.fromisoformat(start_iso).astimezone(ZoneInfo(zone)).replace(tzinfo=None)


def check(shape: dict, body: dict, rows: list[tuple]) -> int:
    """The API's values equal DuckDB's for every (period, group, KPI) DuckDB has; the API has nothing
    DuckDB lacks. -> values compared."""
    series = shape["granularity"] != "total"
    n_keys = (1 if series else 0) + len(shape["group"])
    api: dict[tuple, object] = {}
    for result in body["results"]:
        group = tuple(result["group"][g] for g in shape["group"])
        points = result["series"] if series else [{"start": None, **result}]
        for point in points:
            period = (_local_key(point["start"], shape["zone"]),) if series else ()
            if point["sample_size"]:
                api[(result["kpi"], *period, *group)] = point["value"]
    duck: dict[tuple, object] = {}
    for row in rows:
        key = tuple(row[:n_keys])
        if series:
            key = (key[0].replace(tzinfo=None) if isinstance(key[0], datetime) else key[0], *key[1:])
        for kpi, value in zip(shape["kpis"], row[n_keys:], strict=True):
            duck[(kpi, *key)] = value
    compared = 0
    for key, expected in duck.items():
        if expected is None or (key[0] in ("interactions",) and expected == 0):
            continue
        got = api.get(key)
        assert got is not None, f"{shape['name']}: {key} missing from the API answer (DuckDB: {expected})"
        if shape["quantile"]:
            assert abs(got - expected) <= max(0.01 * expected, 1.0), (shape["name"], key, got, expected)
        else:
            assert abs(got - expected) <= shape["relative"] * max(1.0, abs(expected)), (shape["name"], key, got,
                                                                                      expected)
        compared += 1
    extra = [k for k, v in api.items() if v is not None and k not in duck]
    assert not extra, f"{shape['name']}: API values DuckDB does not have: {extra[:3]}"
    return compared


def storage(record_type: str, raw_table: str) -> list[tuple[str, int, int]]:
    """(relation or cube, rows, bytes) of a record type's raw table and of each of its cubes (a table's
    size with indexes shared out by each cube's share of its row bytes)."""
    from django.db import connection

    from metrics.models import BUCKET_MODELS

    out = []
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), pg_total_relation_size('{raw_table}') FROM {raw_table}")
        out.append((f"raw {raw_table} (table + indexes)", *cursor.fetchone()))
        for model in BUCKET_MODELS[record_type]:
            table = model._meta.db_table
            cursor.execute(f"SELECT pg_total_relation_size('{table}'), coalesce(sum(pg_column_size(t.*)), 0) "
                           f"FROM {table} t")
            total, row_bytes = cursor.fetchone()
            cursor.execute(f"SELECT cube, count(*), sum(pg_column_size(t.*)) FROM {table} t GROUP BY cube "
                           f"ORDER BY 2 DESC")
            for cube, rows, cube_bytes in cursor.fetchall():
                out.append((f"{table.removeprefix('metrics_')}: {cube}", rows,
                            round(total * cube_bytes / row_bytes) if row_bytes else 0))
    return out


def storage_print(rows: list[tuple[str, int, int]]) -> None:
    raw_bytes, raw_rows = rows[0][2], max(rows[0][1], 1)
    cube_total = sum(b for _, _, b in rows[1:])
    print(f"\nstorage: {rows[0][0]} {rows[0][1]:,} rows, {raw_bytes / 2**20:,.0f} MB")
    for name, n, size in rows[1:]:
        print(f"  {name:<48} {n:>10,} rows {n / raw_rows:7.3f} per record {size / 2**20:9,.1f} MB")
    print(f"  all cubes {cube_total / 2**20:,.0f} MB = {cube_total / raw_bytes:.2f} × the raw table")


def run_size(records: int, runs: int) -> None:
    os.environ["BENCH_RECORDS"] = str(records)
    os.environ.setdefault("BENCH_QUERY_DB", "cskpi_bench_q" if records == 5_000_000 else f"cskpi_bench_q_{records}")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from query_data import BENCH_DB, bench_data_ensure

    info = bench_data_ensure()
    from django.conf import settings
    from django.db import connection
    from rest_framework.test import APIClient

    from cskpi.models import Department
    from cskpi.services import token_issue, user_grants_upsert

    con = duckdb_ensure(Path(f"/tmp/cskpi-peers-{BENCH_DB}.duckdb"), info["raw_rows"])
    department = Department.objects.get(slug="bench-03")
    timeout = settings.CSKPI_PRESENCE_TIMEOUT_SECONDS
    user = user_grants_upsert(username="bench-peers", staff=True, grants=[], agent="")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_issue(user=user)}")
    slugs = list(Department.objects.filter(slug__startswith="bench-").order_by("slug").values_list("slug", flat=True))

    cases = []
    for shape in shapes(department.id):
        params = shape_params(shape, department.slug, slugs)
        response = client.get("/api/v1/metrics", params)
        assert response.status_code == 200, response.content[:400]
        from zoneinfo import ZoneInfo
        zone = ZoneInfo(shape["zone"])
        start = datetime.fromisoformat(response.json()["start"]).astimezone(zone)
        end = datetime.fromisoformat(response.json()["end"]).astimezone(zone)
        duck_params = {"dept": department.id, "start": start, "end": end, "timeout": timeout}
        sql = shape["sql"]
        duck_params = {name: value for name, value in duck_params.items() if f"${name}" in sql}
        rows = con.execute(sql, duck_params).fetchall()
        compared = check(shape, response.json(), rows)
        cases.append((shape, params, sql, duck_params, compared))

    # The process tuned as gunicorn's workers and Celery's pool processes are (cskpi/gunicorn_conf.py):
    # what is loaded is frozen out of the cyclic collector's walks.
    from cskpi.runtime import gc_tune

    gc_tune()
    timings = {shape["name"]: ([], []) for shape, *_ in cases}
    for round_ in range(runs + 2):  # two warm-up rounds
        for shape, params, sql, duck_params, _ in cases:
            started = time.perf_counter()
            client.get("/api/v1/metrics", params)
            api = time.perf_counter() - started
            started = time.perf_counter()
            con.execute(sql, duck_params).fetchall()
            duck = time.perf_counter() - started
            if round_ >= 2:
                timings[shape["name"]][0].append(api * 1000)
                timings[shape["name"]][1].append(duck * 1000)

    print(f"\n{records:,} interactions (database {BENCH_DB}); {runs} interleaved rounds; load average "
          f"{os.getloadavg()[0]:.1f}; DuckDB {__import__('duckdb').__version__}, "
          f"{con.execute('SELECT current_setting(' + repr('threads') + ')').fetchone()[0]} threads")
    print("| shape | values checked | cskpi API median | p95 | DuckDB sorted median | p95 | DuckDB ÷ API |")
    print("|---|---|---|---|---|---|---|")
    for shape, _, _, _, compared in cases:
        api, duck = timings[shape["name"]]
        ratio = statistics.median(duck) / statistics.median(api)
        print(f"| {shape['name']} | {compared:,} | {statistics.median(api):.1f} ms | {p95(api):.1f} ms | "
              f"{statistics.median(duck):.1f} ms | {p95(duck):.1f} ms | {ratio:.2f}× |")
    print(f"\nDuckDB file {Path(f'/tmp/cskpi-peers-{BENCH_DB}.duckdb').stat().st_size / 2**20:,.0f} MB")
    storage_print(storage("interaction", "ingestion_interaction"))
    storage_print(storage("agent_event", "ingestion_agentevent"))
    connection.close()
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", default="1000000,5000000", help="comma-separated sizes")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)  # one size, in a child process
    args = parser.parse_args()
    if args.size:
        return run_size(args.size, args.runs)
    for records in (int(r) for r in args.records.split(",")):
        # One process per size: Django settings (the database) are per process.
        subprocess.run([sys.executable, __file__, "--size", str(records), "--runs", str(args.runs)], check=True)


if __name__ == "__main__":
    main()
