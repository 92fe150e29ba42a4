"""The cost bound of a KPI query: how many cells (KPIs x groups x periods) its answer would hold,
and, for queries grouped by agent, channel, topic or customer region, how many aggregate rows it would be built from.

Checked while the query is parsed, before the series is read: the periods come from the range, the
groups from a bounded pre-count of the distinct agents/channels (and departments) the range holds
in a local-day cube, which reads at most CSKPI_MAX_READ_ROWS + 1 rows. The rows matter on their own:
a month series by agent is summed from the day cube, so its cost follows days × agents, not cells.
"""

import math
from datetime import timedelta

from django.conf import settings
from django.db import connections, router
from django.db.models import Q

from cskpi.db import hot_rows
from cskpi.errors import InvalidInput
from metrics.catalog import MEASURES_BY_KEY
from metrics.cubes import (
    AGENT,
    DIMENSION_COLUMNS,
    DIMENSIONS,
    EXACT_CUBE,
)
from metrics.models import BUCKET_MODELS, CUBE_TABLES, MEASURE_TABLES
from metrics.periods import boundaries_get, boundaries_tuple
from metrics.planner import DEPARTMENT, HOUR_OF_DAY, RECORD_DIMENSIONS, WEEKDAY, cubes_kept, scope_cube_choose
from metrics.reader import cube_rows, from_raw, raw_dimension, raw_rows

RESULT_TOO_LARGE = "result_too_large"


def result_cells_check(*, query) -> int:
    """The answer's cell count; 400 `result_too_large` when it is over CSKPI_MAX_RESULT_CELLS, or when
    a grouped query would read more than CSKPI_MAX_READ_ROWS rows of a local-day cube."""
    cap = settings.CSKPI_MAX_RESULT_CELLS
    periods = len(boundaries_tuple(start=query.start, end=query.end, zone=query.tz,
                                   granularity=query.granularity)) - 1
    record_types = list(dict.fromkeys(rt for kpi in query.kpis for rt in kpi.record_types))
    dims = [d for d in DIMENSIONS if d in query.group_by]
    by_department = DEPARTMENT in query.group_by
    groups = {rt: len(query.scopes) if by_department else 1 for rt in record_types}
    # Calendar groupings multiply the groups by at most 7 weekdays / 24 hours (fewer in a short range).
    span = query.end - query.start
    calendar = ((min(7, math.ceil(span / timedelta(days=1))) if WEEKDAY in query.group_by else 1)
                * (min(24, math.ceil(span / timedelta(hours=1))) if HOUR_OF_DAY in query.group_by else 1))

    def cells_count() -> int:
        # A KPI across record types has at most the groups of each (their union).
        return periods * calendar * sum(sum(groups[rt] for rt in kpi.record_types) for kpi in query.kpis)

    cells = cells_count()
    if cells <= cap and dims:
        read_cap = settings.CSKPI_MAX_READ_ROWS
        for rt in record_types:
            rows, groups[rt] = groups_count(query=query, record_type=rt, dims=dims, by_department=by_department,
                                            row_limit=read_cap)
            if rows > read_cap:
                _too_large(f"The answer would be built from more than {read_cap} aggregate rows (days × groups; "
                           "CSKPI_MAX_READ_ROWS).")
        cells = cells_count()
    if cells > cap:
        _too_large(f"The answer would hold {len(query.kpis)} KPIs × {max(groups.values())} groups × {periods} "
                   f"periods = {cells} cells, over the limit of {cap} (CSKPI_MAX_RESULT_CELLS).")
    merged_rows_check(query=query)
    return cells


def merged_rows_check(*, query) -> None:
    """400 `result_too_large` when the states of a kind merged in Python (distinct sets) would be read
    from more than CSKPI_MAX_READ_ROWS cube rows: every such row is fetched and merged in the process
    (a year of a department's customers by day is 365 rows; the same in Asia/Kolkata reads the
    quarter-hour exact layer, about one row per interaction)."""
    tables = {MEASURE_TABLES[part] for kpi in query.kpis for part in kpi.components
              if not MEASURES_BY_KEY[part].kind.sql_merge}
    if not tables:
        return
    read_cap = settings.CSKPI_MAX_READ_ROWS
    boundaries = boundaries_get(start=query.start, end=query.end, zone=query.tz, granularity=query.granularity)
    rows = 0
    for table in tables:
        table_query = query.department_wide() if table.kind.department_wide else query
        for scope in query.scopes:
            cube = scope_cube_choose(query=table_query, scope=scope, record_type=table.measures[0].record_type,
                                     boundaries=boundaries,
                                     granularity=query.granularity, kept=table.cubes)
            if from_raw(table, cube):  # every raw record's element is fetched
                read = raw_rows(record_type=table.measures[0].record_type, query=table_query, scope=scope,
                                start=query.start, end=query.end)
            else:
                read = cube_rows(model=table.model, cube=cube, query=table_query, scope=scope, start=query.start,
                                 end=query.end)
            rows += read.order_by()[: read_cap + 1 - rows].count()
            if rows > read_cap:
                _too_large(f"The distinct customers would be merged from more than {read_cap} aggregate rows "
                           "(CSKPI_MAX_READ_ROWS): the range, zone or grouping needs the fine layer.")


def _too_large(what: str):
    message = (f"{what} Narrow it: fewer KPIs, a coarser granularity or a shorter range, fewer departments, or "
               "filter by agent or channel instead of grouping by it.")
    raise InvalidInput(message, [{"field": None, "code": RESULT_TOO_LARGE, "message": message}],
                       code=RESULT_TOO_LARGE)


_COUNT_SQL: dict[tuple, str] = {}
_COUNT_SQL_MAX = 2048


def groups_count(*, query, record_type: str, dims: list[str], by_department: bool, row_limit: int) -> tuple[int, int]:
    """(rows, distinct groups) of one record type in the range, read from a local-day (or the month)
    cube over the range widened by a day each side (an upper bound of the groups the answer has). At most
    `row_limit` + 1 rows are read: rows > row_limit means "too many" (the groups are then a floor)."""
    needed = set(dims) | {d for d, values in query.dimension_filters() if values}
    needed |= {AGENT} if any(s.agent for s in query.scopes) else set()
    needed &= RECORD_DIMENSIONS[record_type]  # the others are '' in every cube (planner.dimensions_needed)
    # The month cube the query reads when it reads one in every department (a year by month reads 12
    # rows per group, however many days have records); otherwise the smallest local-day cube holding
    # the dimensions (the exact layer when none does).
    boundaries = boundaries_get(start=query.start, end=query.end, zone=query.tz, granularity=query.granularity)
    planned = {scope_cube_choose(query=query, scope=scope, record_type=record_type, boundaries=boundaries,
                                 granularity=query.granularity) for scope in query.scopes}
    if len(planned) == 1 and next(iter(planned)).monthly:
        [cube] = planned
    else:
        cube = next((c for c in cubes_kept(record_type) if c.local_day and needed <= c.dims), EXACT_CUBE)
    model = BUCKET_MODELS[record_type][0]  # the record type's table, whose keys every store shares
    if from_raw(CUBE_TABLES[record_type][0], cube):
        return _raw_groups_count(query=query, record_type=record_type, dims=dims, by_department=by_department,
                                 row_limit=row_limit)
    keys = [*(["department_id"] if by_department else []), *(DIMENSION_COLUMNS[d] for d in dims)]
    db = router.db_for_read(model)
    connection = connections[db]
    adapt = connection.ops.adapt_datetimefield_value
    low, high = query.start - timedelta(days=1), query.end + timedelta(days=1)
    # The ORM's parameters in its order (filter() sorts its keywords): bucket_start, cube, then each
    # scope's agent and department, then the filters' values.
    params = [adapt(low), adapt(high), cube.key,
              *(p for scope in query.scopes for p in ([scope.agent] if scope.agent else []) + [scope.department.id]),
              *query.filter_values()]
    shape = (db, record_type, cube.key, tuple(bool(s.agent) for s in query.scopes), query.filter_lengths(),
             tuple(keys), row_limit)
    sql = _COUNT_SQL.get(shape)
    if sql is None:  # compiled once per shape (the ORM's compile cost as much as the count)
        rows = model.objects.filter(cube=cube.key, bucket_start__gte=low, bucket_start__lt=high)
        scope_q = Q(pk__in=[])
        for scope in query.scopes:
            scope_q |= Q(department_id=scope.department.id, **({"agent": scope.agent} if scope.agent else {}))
        rows = rows.filter(scope_q)
        for dimension, values in query.dimension_filters():
            if values:
                rows = rows.filter(**{f"{DIMENSION_COLUMNS[dimension]}__in": values})
        # Both counts over the same bounded read (an index range scan stopped after row_limit + 1 rows).
        read, orm_params = rows.order_by().values_list(*keys)[: row_limit + 1].query.sql_with_params()
        sql = (f"SELECT (SELECT count(*) FROM ({read}) r), "
               f"(SELECT count(*) FROM (SELECT DISTINCT * FROM ({read}) r2) g)")
        if list(orm_params) != params:  # not the order assumed: this shape is never reused
            params = list(orm_params)
        else:
            if len(_COUNT_SQL) >= _COUNT_SQL_MAX:  # shapes vary with the filters' lengths: bounded
                _COUNT_SQL.clear()
            _COUNT_SQL[shape] = sql
    [(found, groups)] = hot_rows(connection, sql, [*params, *params])
    return found, groups


def _raw_groups_count(*, query, record_type: str, dims: list[str], by_department: bool,
                      row_limit: int) -> tuple[int, int]:
    """`groups_count` from the raw records, where no cube keeps the dimensions (the exact layer is the raw
    records): each record is a row read, at most `row_limit` + 1 of them."""
    keys = {f"g_{d}": raw_dimension(record_type, DIMENSION_COLUMNS[d]) for d in dims}
    found = groups = 0
    seen: set = set()
    low, high = query.start - timedelta(days=1), query.end + timedelta(days=1)
    for scope in query.scopes:
        rows = raw_rows(record_type=record_type, query=query, scope=scope, start=low, end=high).order_by()
        bounded = rows[: row_limit + 1 - found]
        found += bounded.count()
        if found > row_limit:
            return found, max(groups, 1)
        if keys:
            values = set(rows.annotate(**keys).values_list(*keys).distinct())
        else:
            values = {()} if rows.exists() else set()
        if by_department:
            groups += len(values)
        else:
            seen |= values
    return found, groups if by_department else len(seen)
