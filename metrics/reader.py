"""The cube reader: merged measure states per group and period, for one department, in one query.

Every measure's kind supplies the SQL aggregate that merges its states over the cube rows of a
group × period (SUM for counts and sums, the sketch merge for quantiles) and the conversion of what
the database returns into its Python state, so the reader never asks which kind it holds. A kind the
database cannot merge (distinct sets) has its rows' states fetched and merged by the kind in Python;
a department-wide kind is read with no grouping and no filter and handed to every group.
"""

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from itertools import groupby
from operator import itemgetter

from django.db import connections, router
from django.db.models import CharField, Count, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from cskpi.db import pg_cursor
from ingestion.fields import SPEC_BY_TYPE as RECORD_KINDS
from ingestion.presence import segment_seconds
from metrics.cubes import AGENT, DIMENSION_COLUMNS, DIMENSIONS, EXACT_CUBE, Cube, LocalPart, PeriodIndex
from metrics.measures import ElementList, Measure, bounded_source, state_intervals_read
from metrics.models import MEASURE_TABLES, CubeTable
from metrics.periods import Granularity, boundaries_tuple
from metrics.planner import (
    DEPARTMENT,
    HOUR_OF_DAY,
    TIME_DIMENSIONS,
    WEEKDAY,
    DepartmentScope,
    KpiQuery,
    scope_cube_choose,
)

GroupKey = tuple
States = Mapping[str, object]  # measure key -> state
Read = dict[GroupKey, Mapping[int, States]]  # group key -> period index -> states


class StateRow(Mapping):
    """The states one cube row gives (measure key -> state): the position of each measure key, shared
    by every row of the read, beside this row's values. A dict per group × period took 200 bytes
    where this takes 120; the largest answers hold 40,000 of them."""

    __slots__ = ("positions", "values")

    def __init__(self, positions: dict[str, int], values: tuple):
        self.positions, self.values = positions, values

    def __getitem__(self, key: str):
        return self.values[self.positions[key]]

    def get(self, key: str, default=None):
        position = self.positions.get(key)
        return default if position is None else self.values[position]

    def __contains__(self, key) -> bool:
        return key in self.positions

    def __iter__(self):
        return iter(self.positions)

    def __len__(self) -> int:
        return len(self.positions)


_FIRST, _PRECEDING = itemgetter(0), (-1).__add__


class PeriodRows(Mapping):
    """One group's states per period index (0-based) as one table read fetched them: its rows, one per
    period, each (period number (1-based), [dimensions...,] states...) with the states from `first` on,
    the measures' positions shared. A group's series is kept as fetched instead of a StateRow and a dict
    slot per period (an hourly month: 744 of them; a month by agent × channel: 1,800 rows in 150
    groups); the parts' columns come out at C speed (`columns`). Read-only: `periods_writable` turns it
    into a dict where another table's states join the same group."""

    __slots__ = ("positions", "rows", "first", "_at")

    def __init__(self, positions: dict[str, int], rows: list[tuple], first: int = 1):
        self.positions, self.rows, self.first, self._at = positions, rows, first, None

    def _index(self) -> dict[int, tuple]:
        if self._at is None:
            self._at = {row[0] - 1: row for row in self.rows}
        return self._at

    def __getitem__(self, period: int) -> StateRow:
        return StateRow(self.positions, self._index()[period][self.first:])

    def __contains__(self, period) -> bool:
        return period in self._index()

    def __iter__(self):
        return map(_PRECEDING, map(_FIRST, self.rows))  # period numbers - 1, in C

    def __len__(self) -> int:
        return len(self.rows)

    def columns(self, parts: tuple[str, ...]) -> list[list] | None:
        """Per part, its values over the rows in their order; None when a part is not read here."""
        positions, first = self.positions, self.first
        if not all(p in positions for p in parts):
            return None
        return [list(map(itemgetter(positions[p] + first), self.rows)) for p in parts]


def periods_writable(read: Read, key: GroupKey) -> dict[int, States]:
    """The group's periods in `read` as a dict that takes more states (made when missing)."""
    periods = read.get(key)
    if periods is None:
        periods = read[key] = {}
    elif not isinstance(periods, dict):
        periods = read[key] = dict(periods.items())
    return periods


def measure_states_read_many(*, measures: list[Measure], query: KpiQuery, scopes: tuple[DepartmentScope, ...],
                             start: datetime, end: datetime, granularity: str,
                             boundaries: list[datetime]) -> list[Read]:
    """Merged measure states per group and period index (0-based) of each of `scopes`, in order. A table
    whose states SQL merges is read in one query for all the departments it serves from the same cube
    (without an agent role's restriction): a year by day of 20 departments is one round trip and one
    plan instead of 20."""
    outs: list[Read] = [defaultdict(dict) for _ in scopes]
    for table, table_measures in _tables_of(measures).items():
        cubes = [scope_cube_choose(query=query, scope=scope, record_type=table_measures[0].record_type,
                                   boundaries=boundaries, granularity=granularity, kept=table.cubes)
                 for scope in scopes]
        stock = any(m.kind.opening() for m in table_measures)
        together: dict[Cube, list[int]] = defaultdict(list)
        if table.kind.sql_merge and not stock:
            for i, scope in enumerate(scopes):
                if not scope.agent and not from_raw(table, cubes[i]):
                    together[cubes[i]].append(i)
        done: set[int] = set()
        for cube, members in together.items():
            if len(members) > 1 and len({scopes[i].department.id for i in members}) == len(members):
                _table_read_many([outs[i] for i in members], model=table.model, measures=table_measures,
                                 cube=cube, query=query, scopes=[scopes[i] for i in members], start=start,
                                 end=end, granularity=granularity, boundaries=boundaries)
                done.update(members)
        for i, scope in enumerate(scopes):
            if i not in done:
                read = _stock_table_read if stock else _table_read
                read(outs[i], model=table.model, measures=table_measures, cube=cubes[i], query=query, scope=scope,
                     start=start, end=end, granularity=granularity, boundaries=boundaries)
    return outs


def total_read_pays(*, measures: list[Measure], series: KpiQuery, total: KpiQuery,
                    boundaries: list[datetime]) -> bool:
    """Whether reading the range's states of `measures` on their own (`total`, granularity total) beats
    merging the series' periods: only where some department's range is served by another cube than its
    series, not the raw records — a year's 12 month sketches where the series reads 365 days. The same
    cube would merge the same rows again (in SQL: a sketch's pairs fold ~4× slower there than in
    Python), and the raw records (the exact layer of a table that does not store it) would be scanned
    twice."""
    whole = [boundaries[0], boundaries[-1]]
    for table, table_measures in _tables_of(measures).items():
        record_type = table_measures[0].record_type
        for scope in series.scopes:
            by_period = scope_cube_choose(query=series, scope=scope, record_type=record_type, boundaries=boundaries,
                                          granularity=series.granularity, kept=table.cubes)
            ranged = scope_cube_choose(query=total, scope=scope, record_type=record_type, boundaries=whole,
                                       granularity=total.granularity, kept=table.cubes)
            if ranged is not by_period and not from_raw(table, ranged):
                return True
    return False


def _tables_of(measures: list[Measure]) -> dict[object, list[Measure]]:
    by_table: dict[object, list[Measure]] = defaultdict(list)
    for measure in measures:
        by_table[MEASURE_TABLES[measure.key]].append(measure)
    return by_table


def department_states_read(*, measures: list[Measure], query: KpiQuery, scope: DepartmentScope, start: datetime,
                           end: datetime, granularity: str, boundaries: list[datetime]) -> dict[int, States]:
    """Merged states per period index of department-wide measures: read over the whole department, with
    no grouping and no filter (nor the agent role's restriction), whatever the query asks for."""
    read = _measures_read(measures, query=query.department_wide(), scope=DepartmentScope(scope.department),
                          start=start, end=end, granularity=granularity, boundaries=boundaries)
    return read.get((), {})


def _measures_read(measures: list[Measure], *, query: KpiQuery, scope: DepartmentScope, start: datetime,
                   end: datetime, granularity: str, boundaries: list[datetime]) -> Read:
    out: Read = defaultdict(dict)
    for table, table_measures in _tables_of(measures).items():
        cube = scope_cube_choose(query=query, scope=scope, record_type=table_measures[0].record_type,
                                 boundaries=boundaries, granularity=granularity,
                                 kept=table.cubes)
        read = _stock_table_read if any(m.kind.opening() for m in table_measures) else _table_read
        read(out, model=table.model, measures=table_measures, cube=cube, query=query, scope=scope,
             start=start, end=end, granularity=granularity, boundaries=boundaries)
    return out


def _table_read(out: Read, *, model, measures: list[Measure], cube: Cube, query: KpiQuery,
                scope: DepartmentScope, start: datetime, end: datetime, granularity: str,
                boundaries: list[datetime]) -> None:
    """Add one cube table's merged states to `out` (several tables: the same group and period gather
    the states of each)."""
    dims, series, names, positions = _read_layout(query, granularity, measures)
    if from_raw(MEASURE_TABLES[measures[0].key], cube):
        read = _intervals_read if measures[0].kind.intervals else _raw_read
        fetched = read(measures=measures, query=query, scope=scope, start=start, end=end, boundaries=boundaries,
                       names=names)
        loads = [_loaded for _ in measures] if not measures[0].kind.sql_merge else [m.kind.load for m in measures]
    elif not measures[0].kind.sql_merge:
        fetched = _python_merged_read(model=model, measures=measures, cube=cube, query=query, scope=scope,
                                      start=start, end=end, boundaries=boundaries, names=names)
        loads = [_loaded for _ in measures]
    else:
        # Every group read has cube rows: a kind whose `read` gives the state needs no load per value.
        loads = None if all(m.kind.read_is_state for m in measures) else [m.kind.load for m in measures]
        fetched = _grouped_read(model=model, measures=measures, cube=cube, query=query, scope=scope,
                                start=start, end=end, boundaries=boundaries, names=names)
    _rows_fold(out, fetched, query=query, scope=scope, dims=dims, series=series, names=names, positions=positions,
               loads=loads)


def _table_read_many(outs: list[Read], *, model, measures: list[Measure], cube: Cube, query: KpiQuery,
                     scopes: list[DepartmentScope], start: datetime, end: datetime, granularity: str,
                     boundaries: list[datetime]) -> None:
    """`_table_read` of several departments from one query: its rows carry the department, in order."""
    dims, series, names, positions = _read_layout(query, granularity, measures)
    loads = None if all(m.kind.read_is_state for m in measures) else [m.kind.load for m in measures]
    by_id = {scope.department.id: (out, scope) for out, scope in zip(outs, scopes, strict=True)}
    fetched = _grouped_read(model=model, measures=measures, cube=cube, query=query, scope=scopes[0], start=start,
                            end=end, boundaries=boundaries, names=names, departments=list(by_id))
    for department_id, rows in groupby(fetched, key=itemgetter(0)):
        out, scope = by_id[department_id]
        _rows_fold(out, (row[1:] for row in rows), query=query, scope=scope, dims=dims, series=series, names=names,
                   positions=positions, loads=loads)


def _read_layout(query: KpiQuery, granularity: str, measures: list[Measure]):
    """(the group_by entries read from cube columns, whether a series, the fetched key columns, each
    measure's position among the fetched states) of a table read."""
    dims = [d for d in query.group_by if d in DIMENSIONS or d in TIME_DIMENSIONS]
    series = granularity != Granularity.TOTAL
    names = (["k_period"] if series else []) + [DIMENSION_COLUMNS.get(d, d) for d in dims]
    return dims, series, names, {m.key: i for i, m in enumerate(measures)}


def _rows_fold(out: Read, fetched, *, query: KpiQuery, scope: DepartmentScope, dims: list[str], series: bool,
               names: list[str], positions: dict[str, int], loads) -> None:
    """Fold one department's fetched rows (period index?, dimensions..., states...) into `out`."""
    offset = 1 if series else 0
    first_state = offset + len(dims)
    # Where each group_by entry comes from: a fetched dimension column, or the department itself.
    key_parts = [(None if d == DEPARTMENT else offset + dims.index(d)) for d in query.group_by]
    # The fetched dimension columns are the key as they come (no department in it): sliced, not rebuilt
    # (a month by agent × channel folds 1,800 rows a department; this loop is most of its Python time).
    sliced = key_parts == list(range(offset, first_state))
    slug = scope.department.slug
    if series and not dims:  # one group (the department's, or none): a series by period, the commonest read
        key = tuple(slug for _ in key_parts)
        if loads is None and key not in out:  # kept as fetched, one row per period
            rows = list(fetched)
            if rows:  # the group exists once a row does
                out[key] = PeriodRows(positions, rows)
            return
        periods = None
        for row in fetched:
            if periods is None:
                periods = periods_writable(out, key)
            states = StateRow(positions, row[1:] if loads is None else tuple(map(_apply, loads, row[1:])))
            _states_join(periods, row[0] - 1, states)
        return
    # A series whose states need no load: each group's rows are kept as fetched (PeriodRows).
    kept: dict[GroupKey, list[tuple]] | None = defaultdict(list) if series and loads is None else None
    for row in fetched:
        if not names and all(v is None for v in row):
            continue  # no rows at all
        if sliced:
            key = row[offset:first_state]
            if "" in key:
                key = tuple(None if v == "" else v for v in key)
        else:
            key = tuple(slug if i is None else (None if row[i] == "" else row[i]) for i in key_parts)
        if kept is not None:
            kept[key].append(row)
            continue
        # SQL grouped by (period, dimensions): each (key, period) arrives once per table.
        states = StateRow(positions, row[first_state:] if loads is None else tuple(map(_apply, loads, row[first_state:])))
        _states_join(periods_writable(out, key), row[0] - 1 if series else 0, states)
    for key, rows in (kept or {}).items():
        if key not in out:
            out[key] = PeriodRows(positions, rows, first_state)
            continue
        periods = periods_writable(out, key)  # another table's measures for the same group
        for row in rows:
            _states_join(periods, row[0] - 1, StateRow(positions, row[first_state:]))


def _states_join(periods: dict[int, States], period: int, states: States) -> None:
    """Put a period's states in; another table's states for the same group and period stay beside them."""
    periods[period] = {**periods[period], **states} if period in periods else states


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

    columns = [DIMENSION_COLUMNS[d] for d in dims]
    sides = [(m, f"{m.key}_in", f"{m.key}_out") for m in measures]
    history = cube_rows(model=model, cube=cube, query=query, scope=scope, start=None, end=start).filter(
        since__isnull=True)
    opening_sums = {f"o_{m.key}": Sum(F(i) - F(o)) for m, i, o in sides}
    if dims:
        opening_rows = list(history.values(*columns).annotate(**opening_sums).order_by()
                            .values_list(*columns, *opening_sums))
    else:  # values() without fields would group by every column
        totals = tuple(history.aggregate(**opening_sums).values())
        opening_rows = [] if all(v is None for v in totals) else [totals]  # None: no history at all
    openings: dict[GroupKey, list] = {}
    for row in opening_rows:
        openings[key_of(row)] = [m.kind.number(m, v) for (m, _, _), v in zip(sides, row[len(dims):], strict=True)]
    period_rows = (
        # Pair rows of records that came in before the range never count among the outs that came in
        # within a span of its periods: left unread (a year after years of history reads one year's pairs).
        cube_rows(model=model, cube=cube, query=query, scope=scope, start=start, end=end)
        .filter(Q(since__isnull=True) | Q(since__gte=start))
        .annotate(k_period=PeriodIndex(F("bucket_start"), boundaries=boundaries),
                  k_since=PeriodIndex(F("since"), boundaries=boundaries))
        .values(*columns, "k_period", "k_since")
        .annotate(**{f"s_{c}": Sum(c) for _, i, o in sides for c in (i, o)}).order_by()
        .values_list(*columns, "k_period", "k_since", *(f"s_{c}" for _, i, o in sides for c in (i, o)))
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
        by_period = periods_writable(out, key)
        for period in range(periods):
            _states_join(by_period, period, {m.key: carried[n][period] for n, (m, _, _) in enumerate(sides)})


def from_raw(table: CubeTable, cube: Cube) -> bool:
    """Whether a read of `table` served by `cube` reads the raw records: the exact layer of a table
    that does not store it."""
    return cube is EXACT_CUBE and not table.exact_stored


def raw_rows(*, record_type: str, query: KpiQuery, scope: DepartmentScope, start: datetime,
             end: datetime) -> QuerySet:
    """The department's raw records of `record_type` in [start, end) that the query's filters and the
    scope's agent keep — what the exact layer's rows of the same range and filters hold. A filter on a
    dimension the type does not declare keeps none (its cube rows hold '' there)."""
    anchor = RECORD_KINDS[record_type].anchor
    return _raw_scoped(record_type=record_type, query=query, scope=scope).filter(
        **{f"{anchor}__gte": start, f"{anchor}__lt": end})


def _raw_scoped(*, record_type: str, query: KpiQuery, scope: DepartmentScope) -> QuerySet:
    """`raw_rows` at any time."""
    spec = RECORD_KINDS[record_type]
    rows = spec.model.objects.filter(department_id=scope.department.id)
    filters = [*([(DIMENSION_COLUMNS[AGENT], [scope.agent])] if scope.agent else []),
               *((DIMENSION_COLUMNS[d], values) for d, values in query.dimension_filters() if values)]
    for column, values in filters:
        rows = rows.filter(**{f"{column}__in": values}) if column in spec.dimensions else rows.none()
    return rows


def raw_dimension(record_type: str, column: str):
    """A dimension column of a raw record as the cubes hold it ('' for none, and for a dimension the
    record type does not declare)."""
    if column in RECORD_KINDS[record_type].dimensions:
        return Coalesce(F(column), Value(""), output_field=CharField())
    return Value("", output_field=CharField())


def _raw_read(*, measures: list[Measure], query: KpiQuery, scope: DepartmentScope, start: datetime,
              end: datetime, boundaries: list[datetime], names: list[str]) -> list[tuple]:
    """Rows of (period index?, dimensions..., states...) like `_grouped_read`'s, from the raw records:
    each kind's `build` aggregates them per group × period (the database folds the states of the kinds
    it merges and gathers a set's elements). What a query no cube fits reads."""
    record_type = measures[0].record_type
    kind = measures[0].kind
    anchor = RECORD_KINDS[record_type].anchor
    rows = raw_rows(record_type=record_type, query=query, scope=scope, start=start, end=end)
    # Numbers clamped as the recompute clamps them (a set's field is an id string: read as it is).
    rows, bounded = bounded_source(rows, measures) if kind.sql_merge else (rows, measures)
    keys = {f"r_{name}": (PeriodIndex(F(anchor), boundaries=boundaries, exact=True) if name == "k_period"
                          else LocalPart(F(anchor), part=name, zone=query.zone) if name in TIME_DIMENSIONS
                          else raw_dimension(record_type, name))
            for name in names}
    rows = rows.annotate(**keys)
    # A kind the database merges is aggregated by its build; a set's elements are gathered per group by
    # the database (`ElementList`) and made into a state here.
    states = {f"s_{m.key}": m.kind.build(m) if kind.sql_merge else ElementList(m.kind.build(m)) for m in bounded}
    if not names:  # no record: no group (as no cube row is)
        *values, records = rows.aggregate(**states, records_=Count("pk")).values()
        fetched = [tuple(values) if records else tuple(None for _ in measures)]
    else:
        # Grouped by constants only (a dimension the type lacks), the database returns one row even for no
        # record: rows of no record are dropped, as there is no cube row for them.
        grouped = rows.values(*keys).annotate(**states, records_=Count("pk")).order_by()
        fetched = [row[:-1] for row in grouped.values_list(*keys, *states, "records_").iterator() if row[-1]]
    if kind.sql_merge:
        return fetched
    width = len(names)
    return [(*row[:width], *(None if elements is None else kind.of_elements(elements) for elements in row[width:]))
            for row in fetched]


def _intervals_read(*, measures: list[Measure], query: KpiQuery, scope: DepartmentScope, start: datetime,
                    end: datetime, boundaries: list[datetime], names: list[str]) -> list[tuple]:
    """`_raw_read` for a record type that holds state: each group × period's seconds per state, from the
    state intervals of the raw events (`state_intervals_read`) cut in Python at the period boundaries — and
    at the local hours or days of the query zone when grouped by hour of day or weekday — as the recompute
    cuts them at quarter-hours (the same seconds: every edge here is a quarter-hour). Open states count up
    to now. A group has a row when any measure of its table has time in it, as a cube row does."""
    record_type = measures[0].record_type
    spec = RECORD_KINDS[record_type]
    table = MEASURE_TABLES[measures[0].key]
    zone = query.tz
    edges = set(boundaries)
    for name, grain in TIME_DIMENSIONS.items():
        if name in names:
            edges.update(boundaries_tuple(start=start, end=end, zone=zone, granularity=grain))
    edges = sorted(edges)
    owner_column = DIMENSION_COLUMNS[AGENT]  # a state record's only dimension (the others are '')
    owner_at = names.index(owner_column) if owner_column in names and owner_column in spec.dimensions else None

    def segment_key(edge: datetime) -> list:
        local = edge.astimezone(zone)
        return [bisect_right(boundaries, edge) if name == "k_period"  # 1-based, as PeriodIndex
                else local.isoweekday() if name == WEEKDAY else local.hour if name == HOUR_OF_DAY else ""
                for name in names]

    # The query's filters and the scope's agent; `state_intervals_read` reads the events from a timeout
    # before the range on.
    events = _raw_scoped(record_type=record_type, query=query, scope=scope)
    held = state_intervals_read(spec, events, spans=[(start, end)], now=timezone.now())
    segments: dict[int, list] = {}
    seconds: dict[tuple, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for i, owner, state, cut in segment_seconds(held, edges):
        key = segments.get(i)
        if key is None:
            key = segments[i] = segment_key(edges[i])
        if owner_at is not None:
            key[owner_at] = owner
        seconds[tuple(key)][state] += cut
    positions = [table.measures.index(m) for m in measures]
    rows = []
    for key, by_state in seconds.items():
        states = [m.kind.from_seconds(m, by_state) for m in table.measures]
        if any(states):
            rows.append((*key, *(states[p] for p in positions)))
    if not names:  # no group: one row, of no values when no time was in any state (as no cube row is)
        return rows or [tuple(None for _ in measures)]
    return rows


def cube_rows(*, model, cube: Cube, query: KpiQuery, scope: DepartmentScope, start: datetime | None,
              end: datetime, departments: list[int] | None = None) -> QuerySet:
    """The cube rows of the department in [start, end); start None: every row before `end` (the history
    a stock's opening level sums). `departments`: those departments' instead (no agent restriction)."""
    department = {"department_id": scope.department.id} if departments is None else {"department_id__in": departments}
    if start is None:
        rows = model.objects.filter(cube=cube.key, bucket_start__lt=end, **department)
    else:
        rows = model.objects.filter(cube=cube.key, bucket_start__gte=start, bucket_start__lt=end, **department)
    if departments is not None and scope.agent:
        raise ValueError("an agent's restriction reads one department")
    if scope.agent:
        rows = rows.filter(agent=scope.agent)
    for dimension, values in query.dimension_filters():
        if values:
            rows = rows.filter(**{f"{DIMENSION_COLUMNS[dimension]}__in": values})
    return rows


def _loaded(state):
    return state


def _apply(load, value):
    return load(value)


def _python_merged_read(*, model, measures: list[Measure], cube: Cube, query: KpiQuery, scope: DepartmentScope,
                        start: datetime, end: datetime, boundaries: list[datetime], names: list[str]) -> list[tuple]:
    """Rows of (period index?, dimensions..., merged states...) like `_grouped_read`'s, for a kind merged in
    Python: every cube row's states are fetched (binary, in one query) and merged per group × period."""
    kind = measures[0].kind
    keys = [m.key for m in measures]
    width = len(names)
    series = bool(names) and names[0] == "k_period"
    collected: dict[tuple, list[list]] = {}
    for row in _state_rows(model=model, cube=cube, query=query, scope=scope, start=start, end=end,
                           boundaries=boundaries, names=names, keys=keys, series=series):
        key = row[:width]
        lists = collected.get(key)
        if lists is None:
            lists = collected[key] = [[] for _ in keys]
        for states, value in zip(lists, row[width:], strict=True):
            if value is not None:
                states.append(kind.load(value))
    if not names and not collected:
        return [tuple(None for _ in keys)]
    return [(*key, *(kind.merge(states) for states in lists)) for key, lists in collected.items()]


def _cube_read_params(connection, *, cube: Cube, query: KpiQuery, scope: DepartmentScope, start: datetime,
                      end: datetime, boundaries: list[datetime] | None, names: list[str],
                      departments: list[int] | None = None) -> list:
    """The parameters of a read of `cube_rows` in the order its compiled SQL takes them: the period index's
    boundaries (when `boundaries`, a series) and the zone of each local weekday/hour in the select list,
    then the filters (filter(**kwargs) sorts its keyword arguments: bucket_start, cube, department), the
    agent's restriction and the query's dimension filters."""
    ops = connection.ops
    return [
        *([PeriodIndex.param(connection, tuple(boundaries))] if boundaries is not None else []),
        *(query.zone for d in names if d in TIME_DIMENSIONS),
        ops.adapt_datetimefield_value(start), ops.adapt_datetimefield_value(end), cube.key,
        *([scope.department.id] if departments is None else departments),
        *([scope.agent] if scope.agent else []), *query.filter_values(),
    ]


def _state_rows(*, model, cube: Cube, query: KpiQuery, scope: DepartmentScope, start: datetime, end: datetime,
                boundaries: list[datetime], names: list[str], keys: list[str], series: bool) -> list[tuple]:
    db = router.db_for_read(model)
    params = _cube_read_params(connections[db], cube=cube, query=query, scope=scope, start=start, end=end,
                               boundaries=boundaries if series else None, names=names)
    shape = ("states", db, model._meta.db_table, cube.key, tuple(keys), tuple(names), bool(scope.agent),
             query.filter_lengths())

    def queryset() -> QuerySet:
        rows = cube_rows(model=model, cube=cube, query=query, scope=scope, start=start, end=end)
        if series:
            rows = rows.annotate(k_period=PeriodIndex(F("bucket_start"), boundaries=boundaries))
        rows = rows.annotate(**{d: LocalPart(F("bucket_start"), part=d, zone=query.zone)
                                for d in names if d in TIME_DIMENSIONS})
        return rows.order_by().values_list(*names, *keys)

    return compiled_rows(db=db, shape=shape, queryset=queryset, params=params,
                         few=all(n == "k_period" for n in names))


def one_row_per_cell(*, cube: Cube, query: KpiQuery, scope: DepartmentScope, granularity: str) -> bool:
    """Whether every group × period of the read is exactly one cube row: each period is one bucket of the
    cube (a day of the day cube, an hour of an hour cube, a month of a month cube) and the groups keep
    every dimension of the cube. Such a read needs no aggregate: each row's state is read as stored (a
    year of day sketches skips 365 merges of one sketch each)."""
    grain = (Granularity.DAY if cube.local_day else Granularity.MONTH if cube.monthly
             else Granularity.HOUR if cube.seconds == 3600 else None)
    if grain != granularity or (cube.local and query.zone != scope.department.timezone):
        return False
    if any(d in TIME_DIMENSIONS for d in query.group_by):
        return False
    return cube.dims <= {*query.group_by, *([AGENT] if scope.agent else [])}


def _grouped_read(*, model, measures: list[Measure], cube: Cube, query: KpiQuery,
                  scope: DepartmentScope, start: datetime, end: datetime, boundaries: list[datetime],
                  names: list[str], departments: list[int] | None = None) -> Iterator[tuple]:
    """Rows of (period index?, dimensions..., merged states...) as the ORM's values_list gives them;
    with `departments`, of those departments, each row led by its department id, in department order."""
    series = bool(names) and names[0] == "k_period"
    direct = series and one_row_per_cell(cube=cube, query=query, scope=scope, granularity=query.granularity)
    db = router.db_for_read(model)
    params = _cube_read_params(connections[db], cube=cube, query=query, scope=scope, start=start, end=end,
                               boundaries=boundaries if series else None, names=names, departments=departments)
    shape = (db, model._meta.db_table, cube.key, tuple(m.key for m in measures), tuple(names), bool(scope.agent),
             query.filter_lengths(), None if departments is None else len(departments), direct)
    keys = names if departments is None else ["department_id", *names]

    def queryset() -> QuerySet:
        rows = cube_rows(model=model, cube=cube, query=query, scope=scope, start=start, end=end,
                         departments=departments)
        if series:
            rows = rows.annotate(k_period=PeriodIndex(F("bucket_start"), boundaries=boundaries))
        rows = rows.annotate(**{d: LocalPart(F("bucket_start"), part=d, zone=query.zone)
                                for d in names if d in TIME_DIMENSIONS})
        if direct:  # one cube row per group × period: its states as stored
            states = {f"s_{m.key}": m.kind.read_one(m) for m in measures}
            grouped = rows.annotate(**states)
        else:
            states = {f"s_{m.key}": m.kind.read(m) for m in measures}
            # No key (a range total): grouped by the one department the rows are filtered to, so the range
            # with no row gives none, and the SQL is kept per shape as every read's is (aggregate()
            # compiled it on every call: ~1 ms of a year's percentile by day).
            grouped = rows.values(*(keys or ["department_id"])).annotate(**states)
        return (grouped.order_by() if departments is None else grouped.order_by("department_id")).values_list(
            *keys, *states)

    return compiled_rows(db=db, shape=shape, queryset=queryset, params=params,
                         few=all(n == "k_period" for n in names))


# Compiled SQL per query shape. Why: compiling a queryset in the ORM costs about a millisecond, a
# third of the engine's time on the commonest dashboard query, while the SQL text only depends on the
# shape (every value, the period boundaries included, is a parameter). The caller binds the
# parameters in the ORM's order; the first compilation of each shape checks that order against the
# ORM's own parameters, and a shape that does not match is never reused (it runs through the ORM).
_COMPILED: dict[tuple, str | None] = {}
_COMPILED_MAX = 2048
_STREAM_CHUNK = 2000


def compiled_rows(*, db: str, shape: tuple, queryset: Callable[[], QuerySet], params: list,
                  few: bool = False) -> Iterator[tuple]:
    """The rows of `queryset()`, running its compiled SQL with `params` when the shape was seen before.

    Rows come one by one, never as a list: the caller folds each into its states, so a 40,000-row
    answer does not hold 40,000 row tuples (12 MB) beside the states built from them. `few`: the rows
    are bounded by the periods (no group dimension): fetched whole by a prepared statement instead."""
    sql = _COMPILED.get(shape, False)
    if sql is None:
        yield from queryset().iterator()
        return
    if sql is False:
        built = queryset()
        compiled, orm_params = built.query.get_compiler(db).as_sql()
        if len(_COMPILED) >= _COMPILED_MAX:  # shapes vary with the filters' lengths: a client can make many
            _COMPILED.clear()
        _COMPILED[shape] = sql = compiled if list(orm_params) == params else None
        if sql is None:
            yield from built.iterator()
            return
    connection = connections[db]
    if connection.vendor == "postgresql":
        # Binary results: a year of day sketches (~50k array items) loads in a third of the time.
        # Streamed in chunks (libpq's chunked-rows mode): no result set of the whole answer in C
        # memory beside the Python states built from it.
        with pg_cursor(connection) as cursor:
            if few:
                # Streaming costs ~0.35 ms a query (libpq's chunked mode, and no prepared plan): more than
                # an hourly month's 744 rows weigh in memory. Prepared: planned once per connection.
                cursor.execute(sql, params, binary=True, prepare=True)
                while rows := cursor.fetchmany(_STREAM_CHUNK):
                    yield from rows
                return
            yield from cursor.stream(sql, params, binary=True, size=_STREAM_CHUNK)
        return
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        yield from cursor
