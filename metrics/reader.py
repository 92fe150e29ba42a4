"""The cube reader: merged measure states per group and period, for one department, in one query.

Every measure's kind supplies the SQL aggregate that merges its states over the cube rows of a
group × period (SUM for counts and sums, the sketch merge for quantiles) and the conversion of what
the database returns into its Python state, so the reader never asks which kind it holds.
"""

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime

from django.db import connections, router
from django.db.models import F, Q, QuerySet, Sum

from cskpi.db import pg_cursor
from metrics.cubes import DIMENSIONS, Cube, LocalPart, PeriodIndex
from metrics.measures import Measure
from metrics.models import MEASURE_TABLES
from metrics.periods import Granularity
from metrics.planner import DEPARTMENT, TIME_DIMENSIONS, DepartmentScope, KpiQuery, scope_cube_choose

GroupKey = tuple
States = dict[str, object]  # measure key -> state
Read = dict[GroupKey, dict[int, States]]  # group key -> period index -> states


def measure_states_read(*, measures: list[Measure], query: KpiQuery, scope: DepartmentScope,
                        start: datetime, end: datetime, granularity: str, boundaries: list[datetime]) -> Read:
    """Merged measure states per group and period index (0-based), for one department."""
    cube = scope_cube_choose(query=query, scope=scope, boundaries=boundaries, granularity=granularity)
    out: Read = defaultdict(dict)
    by_table: dict[type, list[Measure]] = defaultdict(list)
    for measure in measures:
        by_table[MEASURE_TABLES[measure.key].model].append(measure)
    for model, table_measures in by_table.items():
        read = _stock_table_read if any(m.kind.opening() for m in table_measures) else _table_read
        read(out, model=model, measures=table_measures, cube=cube, query=query, scope=scope, start=start,
             end=end, granularity=granularity, boundaries=boundaries)
    return out


def _table_read(out: Read, *, model, measures: list[Measure], cube: Cube, query: KpiQuery,
                scope: DepartmentScope, start: datetime, end: datetime, granularity: str,
                boundaries: list[datetime]) -> None:
    """Add one cube table's merged states to `out` (several tables: the same group and period gather
    the states of each)."""
    dims = [d for d in query.group_by if d in DIMENSIONS or d in TIME_DIMENSIONS]
    series = granularity != Granularity.TOTAL
    names = (["k_period"] if series else []) + dims
    loads = [m.kind.load for m in measures]
    keys = [m.key for m in measures]
    if names:
        fetched = _grouped_read(model=model, measures=measures, cube=cube, query=query, scope=scope,
                                start=start, end=end, boundaries=boundaries, names=names)
    else:
        rows = _cube_rows(model=model, cube=cube, query=query, scope=scope, start=start, end=end)
        fetched = [tuple(rows.aggregate(**{f"s_{m.key}": m.kind.read(m) for m in measures}).values())]
    offset = 1 if series else 0
    first_state = offset + len(dims)
    # Where each group_by entry comes from: a fetched dimension column, or the department itself.
    key_parts = [(None if d == DEPARTMENT else offset + dims.index(d)) for d in query.group_by]
    slug = scope.department.slug
    for row in fetched:
        if not names and all(v is None for v in row):
            continue  # no rows at all
        key = tuple(slug if i is None else (None if row[i] == "" else row[i]) for i in key_parts)
        # SQL grouped by (period, dimensions): each (key, period) arrives once per table.
        states = {k: load(v) for k, load, v in zip(keys, loads, row[first_state:], strict=True)}
        period = row[0] - 1 if series else 0
        if period in out[key]:
            out[key][period].update(states)
        else:
            out[key][period] = states


def _stock_table_read(out: Read, *, model, measures: list[Measure], cube: Cube, query: KpiQuery,
                      scope: DepartmentScope, start: datetime, end: datetime, granularity: str,
                      boundaries: list[datetime]) -> None:
    """Add the states of stock measures (metrics.measures.Stock) to `out`, for every period of every
    group that has records before the range's end: the level before the range (every level row before
    it), then per period the ins, the outs and, from the pair rows, the outs by the period where their
    records came in; each kind carries the level through the periods."""
    dims = [d for d in query.group_by if d in DIMENSIONS]
    if len(dims) != len([d for d in query.group_by if d != DEPARTMENT]):
        raise ValueError("a stock has no weekday or hour of day")  # refused when the query is parsed
    key_parts = [(None if d == DEPARTMENT else dims.index(d)) for d in query.group_by]
    slug = scope.department.slug

    def key_of(row) -> GroupKey:
        return tuple(slug if i is None else (None if row[i] == "" else row[i]) for i in key_parts)

    sides = [(m, f"{m.key}_in", f"{m.key}_out") for m in measures]
    history = _cube_rows(model=model, cube=cube, query=query, scope=scope, start=None, end=start).filter(
        since__isnull=True)
    opening_sums = {f"o_{m.key}": Sum(F(i) - F(o)) for m, i, o in sides}
    if dims:
        opening_rows = list(history.values(*dims).annotate(**opening_sums).order_by()
                            .values_list(*dims, *opening_sums))
    else:  # values() without fields would group by every column
        totals = tuple(history.aggregate(**opening_sums).values())
        opening_rows = [] if all(v is None for v in totals) else [totals]  # None: no history at all
    openings: dict[GroupKey, list] = {}
    for row in opening_rows:
        openings[key_of(row)] = [m.kind.number(m, v) for (m, _, _), v in zip(sides, row[len(dims):], strict=True)]
    period_rows = (
        # Pair rows of records that came in before the range never count among the outs that came in
        # within a span of its periods: left unread (a year after years of history reads one year's pairs).
        _cube_rows(model=model, cube=cube, query=query, scope=scope, start=start, end=end)
        .filter(Q(since__isnull=True) | Q(since__gte=start))
        .annotate(k_period=PeriodIndex(F("bucket_start"), boundaries=boundaries),
                  k_since=PeriodIndex(F("since"), boundaries=boundaries))
        .values(*dims, "k_period", "k_since")
        .annotate(**{f"s_{c}": Sum(c) for _, i, o in sides for c in (i, o)}).order_by()
        .values_list(*dims, "k_period", "k_since", *(f"s_{c}" for _, i, o in sides for c in (i, o)))
    )
    # group -> measure index -> (ins, outs, outs by entry) per 0-based period
    read: dict[GroupKey, list[tuple[dict, dict, dict]]] = {}
    for row in period_rows:
        key = key_of(row)
        period, since = row[len(dims)] - 1, row[len(dims) + 1]
        per_measure = read.setdefault(key, [({}, {}, defaultdict(dict)) for _ in sides])
        values = row[len(dims) + 2:]
        for n, (m, _, _) in enumerate(sides):
            ins, outs, by_entry = per_measure[n]
            got_in, got_out = m.kind.number(m, values[2 * n]), m.kind.number(m, values[2 * n + 1])
            if since is None:  # a level row
                ins[period] = ins.get(period, 0) + got_in
                outs[period] = outs.get(period, 0) + got_out
            else:  # a pair row: outs of this period by the period where they came in (-1: before)
                entry = since - 1
                by_entry[period][entry] = by_entry[period].get(entry, 0) + got_out
    periods = len(boundaries) - 1
    for key in openings.keys() | read.keys():
        opening = openings.get(key) or [m.kind.number(m, None) for m, _, _ in sides]
        per_measure = read.get(key) or [({}, {}, {}) for _ in sides]
        carried = [m.kind.carry(opening=opening[n], periods=periods, ins=per_measure[n][0], outs=per_measure[n][1],
                                outs_by_entry=per_measure[n][2]) for n, (m, _, _) in enumerate(sides)]
        for period in range(periods):
            states = {m.key: carried[n][period] for n, (m, _, _) in enumerate(sides)}
            out[key].setdefault(period, {}).update(states)


def _cube_rows(*, model, cube: Cube, query: KpiQuery, scope: DepartmentScope, start: datetime | None,
               end: datetime) -> QuerySet:
    """The cube rows of the department in [start, end); start None: every row before `end` (the history
    a stock's opening level sums)."""
    if start is None:
        rows = model.objects.filter(cube=cube.key, department_id=scope.department.id, bucket_start__lt=end)
    else:
        rows = model.objects.filter(
            cube=cube.key, department_id=scope.department.id, bucket_start__gte=start, bucket_start__lt=end
        )
    if scope.agent:
        rows = rows.filter(agent=scope.agent)
    if query.agents:
        rows = rows.filter(agent__in=query.agents)
    if query.channels:
        rows = rows.filter(channel__in=query.channels)
    if query.topics:
        rows = rows.filter(topic__in=query.topics)
    return rows


def _grouped_read(*, model, measures: list[Measure], cube: Cube, query: KpiQuery,
                  scope: DepartmentScope, start: datetime, end: datetime, boundaries: list[datetime],
                  names: list[str]) -> list[tuple]:
    """Rows of (period index?, dimensions..., merged states...) as the ORM's values_list gives them."""
    series = names[0] == "k_period"
    db = router.db_for_read(model)
    connection = connections[db]
    ops = connection.ops
    params = [  # filter(**kwargs) sorts the keyword arguments: bucket_start, cube, department
        ops.adapt_datetimefield_value(start), ops.adapt_datetimefield_value(end), cube.key, scope.department.id,
        *([scope.agent] if scope.agent else []), *query.agents, *query.channels, *query.topics,
    ]
    # The select list (period index, then local weekday/hour) comes before the WHERE clause.
    params[:0] = [query.zone for d in names if d in TIME_DIMENSIONS]
    if series:
        params.insert(0, PeriodIndex.param(connection, tuple(boundaries)))
    shape = (db, model._meta.db_table, cube.key, tuple(m.key for m in measures), tuple(names), bool(scope.agent),
             len(query.agents), len(query.channels), len(query.topics))

    def queryset() -> QuerySet:
        rows = _cube_rows(model=model, cube=cube, query=query, scope=scope, start=start, end=end)
        if series:
            rows = rows.annotate(k_period=PeriodIndex(F("bucket_start"), boundaries=boundaries))
        rows = rows.annotate(**{d: LocalPart(F("bucket_start"), part=d, zone=query.zone)
                                for d in names if d in TIME_DIMENSIONS})
        states = {f"s_{m.key}": m.kind.read(m) for m in measures}
        return rows.values(*names).annotate(**states).order_by().values_list(*names, *states)

    return compiled_rows(db=db, shape=shape, queryset=queryset, params=params)


# Compiled SQL per query shape. Why: compiling a queryset in the ORM costs about a millisecond, a
# third of the engine's time on the commonest dashboard query, while the SQL text only depends on the
# shape (every value, the period boundaries included, is a parameter). The caller binds the
# parameters in the ORM's order; the first compilation of each shape checks that order against the
# ORM's own parameters, and a shape that does not match is never reused (it runs through the ORM).
_COMPILED: dict[tuple, str | None] = {}


def compiled_rows(*, db: str, shape: tuple, queryset: Callable[[], QuerySet], params: list) -> list[tuple]:
    """The rows of `queryset()`, running its compiled SQL with `params` when the shape was seen before."""
    sql = _COMPILED.get(shape, False)
    if sql is None:
        return list(queryset())
    if sql is False:
        built = queryset()
        compiled, orm_params = built.query.get_compiler(db).as_sql()
        _COMPILED[shape] = sql = compiled if list(orm_params) == params else None
        if sql is None:
            return list(built)
    connection = connections[db]
    if connection.vendor == "postgresql":
        # Binary results: a year of day sketches (~50k array items) loads in a third of the time.
        with pg_cursor(connection) as cursor:
            cursor.execute(sql, params, binary=True)
            return cursor.fetchall()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
