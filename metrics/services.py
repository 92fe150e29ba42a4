"""Writes of the KPI engine: recomputing the buckets ingestion's change log names, and rebuilding."""

import functools
import logging
from bisect import bisect_right
from collections import OrderedDict, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import reduce
from operator import or_
from time import monotonic
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.db import OperationalError, connection, transaction
from django.db.models import CharField, DateTimeField, F, Max, Min, Q, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.utils import timezone

from cskpi.db import pg_cursor
from cskpi.models import Department
from ingestion.changes import record_changes_mark
from ingestion.choices import QUARTER, QUARTER_SECONDS, ChangeScope
from ingestion.fields import SPEC_BY_TYPE as RECORD_KINDS
from ingestion.models import RecordChange
from ingestion.presence import presence_timeout, quarter_seconds
from metrics.alerting.services import alert_evaluation_kick
from metrics.cubes import (
    AGENT,
    CUBES,
    DIMENSION_COLUMNS,
    DIMENSIONS,
    EXACT_CUBE,
    BucketStart,
    Cube,
    cube_depth,
    cube_source,
    local_midnight,
    merge_intervals,
    span_filter,
)
from metrics.measures import ElementList, bounded_source, state_intervals_read
from metrics.models import BUCKET_MODELS, CUBE_TABLES, ROW_TABLES, CubeTable, RecomputeStamp
from metrics.planner import cubes_kept

logger = logging.getLogger(__name__)

KICK_FLAG = "metrics:recompute-queued"


def department_buckets_invalidate(*, department_id: int) -> None:
    """The department's zone changed: its local-day cubes must be cut again at the new midnights.

    Deletes the day-cube rows now (old midnights would otherwise linger beside new ones) and marks
    one quarter per local day (in the new zone) that holds a record: recomputing a quarter rebuilds
    its whole local day in every day cube. Quarter and hour cubes do not depend on the zone.
    """
    department = Department.objects.get(id=department_id)
    with transaction.atomic():
        for record_type, kind in RECORD_KINDS.items():
            # A recompute running now finishes first (its old-zone rows are deleted here); one that
            # starts later reads the new zone under the same lock.
            _recompute_lock(record_type=record_type, department_id=department_id)
            for model in BUCKET_MODELS[record_type]:
                model.objects.filter(
                    department_id=department_id, cube__in=[c.key for c in CUBES if c.local]
                ).delete()
            for column in kind.time_columns:  # a stock is placed by its start and its end
                days = (
                    kind.model.objects.filter(department_id=department_id, **{f"{column}__isnull": False})
                    .annotate(day=BucketStart(F(column), seconds=None, zone=department.timezone))
                    .values_list("day", flat=True).distinct().order_by()
                )
                # The marks announce themselves: the recompute is kicked after commit (metrics.receivers).
                record_changes_mark(record_type=record_type, marks=(
                    (department_id, day) for first in days.iterator()
                    for day in _days_reached(kind, first, department)
                ))


def _days_reached(kind, day: datetime, department) -> list[datetime]:
    """The local days whose buckets records of a local day count in: that day, and for a record
    type that holds state, every day its states can last into (up to the presence timeout)."""
    if not kind.holds:
        return [day]
    zone = ZoneInfo(department.timezone)
    first = day.astimezone(zone).date()
    reach = -(-presence_timeout() // timedelta(days=1))  # whole days, rounded up
    return [local_midnight(first + timedelta(days=n), zone) for n in range(reach + 1)]


# --- recompute ------------------------------------------------------------------------------

# First key of the PostgreSQL advisory lock that serialises recomputes of one record type of one
# department (the second key is the department id), as each record type declares it.
_LOCK_NAMESPACE = {record_type: spec.lock_namespace for record_type, spec in RECORD_KINDS.items()}
_CHUNK_INTERVALS = 200


def cube_buckets_rebuild(*, record_type: str, department, intervals: list[tuple[datetime, datetime]],
                         tables: Iterable[CubeTable] | None = None) -> None:
    """Recompute every cube bucket that overlaps `intervals` (of the tables holding `tables`, default every
    store of the record type; a store not given keeps its states, see `_rows_rebuild`).

    Each cube widens the intervals to its own buckets (a quarter, its UTC hour, its local day or
    month), deletes those rows and inserts them again with INSERT ... SELECT ... GROUP BY. A cube is
    merged from its source (`Cube.source`: the finest cube of its grain it can be merged from; the
    day cube sums 6 rows by channel where its day holds ~700 records) or, at the end of the chain,
    built from the exact layer: the stored quarter-hour rows of a table that keeps them (time in
    state, stocks, gaps), otherwise the raw records themselves. Run inside a transaction holding
    `_recompute_lock`, so the result is exact and idempotent.
    """
    chosen = set(CUBE_TABLES[record_type] if tables is None else tables)
    for stores in ROW_TABLES[record_type]:  # in order: a set store's `prepare` before the first contacts'
        if chosen.intersection(stores):
            _rows_rebuild(record_type=record_type, stores=stores, recomputed=[s for s in stores if s in chosen],
                          department=department, intervals=intervals)


def table_sources(record_type: str, stores: tuple[CubeTable, ...]) -> dict[Cube, Cube]:
    """{cube: the cube its SQL-merged states are merged from (the exact layer: built from it)} for one table
    of the record type. Its first store keeps every cube the others keep (it owns the rows); the others
    merged in SQL are read from the same source, so one INSERT … SELECT writes them all (checked)."""
    type_cubes = cubes_kept(record_type)
    owner = stores[0]
    kept = {s: {c.key for c in type_cubes if s.keeps(c)} for s in stores}
    if not owner.kind.sql_merge or any(not kept[s] <= kept[owner] for s in stores):
        raise ValueError(f"{record_type}: the first store of a table is merged in SQL and keeps every cube")
    sources = {}
    for cube in (c for c in type_cubes if c.key in kept[owner]):
        sources[cube] = cube_source(cube, kept[owner]) if cube is not EXACT_CUBE else EXACT_CUBE
        for store in stores:
            if store.kind.sql_merge and cube.key in kept[store] and cube is not EXACT_CUBE \
                    and cube_source(cube, kept[store]) is not sources[cube]:
                raise ValueError(f"{record_type}: {store.kind.name} states of {cube.key} would be merged from "
                                 f"another cube than the table's other states")
        for store in stores:
            if store.kind.department_wide and cube.key in kept[store] and cube.dims:
                raise ValueError(f"{record_type}: a department-wide kind keeps only cubes without a dimension")
    return sources


def _rows_rebuild(*, record_type: str, stores: tuple[CubeTable, ...], recomputed: list[CubeTable], department,
                  intervals) -> None:
    """Replace one table's rows over `intervals`, cube by cube from the finest: the stores merged in SQL
    with INSERT … SELECT, and in the same statement the states of the stores merged in Python (distinct
    sets), computed before: from one read of the raw records for the cubes built from them, from the
    table's rows of their source for the others. A store merged in Python that is not `recomputed` keeps
    the states its rows held (a change of the calendar moves counts, not customers); the rows themselves
    are the SQL stores' (every key of another store is a key of theirs), so those are always recomputed.
    A record type that holds state builds its finest cubes from the state intervals in Python."""
    zone = ZoneInfo(department.timezone)
    type_cubes = cubes_kept(record_type)
    owner = stores[0]
    sources = table_sources(record_type, stores)
    kept = {s: {c.key for c in type_cubes if s.keeps(c)} for s in stores}
    cubes = sorted(sources, key=cube_depth)  # the exact layer first, then each cube after its source
    if owner.kind.intervals:
        # The exact layer (if stored) and every cube built from it, from one read of the raw events.
        from_raw = [cube for cube in cubes if sources[cube] is EXACT_CUBE]
        _intervals_build(record_type=record_type, table=owner, cubes=from_raw, department=department,
                         intervals=intervals)
        cubes = [cube for cube in cubes if cube not in from_raw]
    in_python = [s for s in stores if not s.kind.sql_merge]
    built: dict[tuple[CubeTable, Cube], dict[tuple, list]] = {}
    for store in (s for s in in_python if s in recomputed):
        from_raw = [c for c in cubes if c.key in kept[store] and cube_source(c, kept[store]) is EXACT_CUBE]
        built.update({(store, cube): states for cube, states in _sets_build(
            record_type=record_type, table=store, cubes=from_raw, department=department,
            intervals=intervals).items()})
    for cube in cubes:
        source = None if cube is EXACT_CUBE else sources[cube]
        measures = [m for s in stores if s.kind.sql_merge and cube.key in kept[s] for m in s.measures]
        merged = [s for s in in_python if cube.key in kept[s]]
        spans = cube.spans(intervals, zone)
        width = sum(len(s.measures) for s in merged)
        for i in range(0, len(spans), _CHUNK_INTERVALS):
            chunk = spans[i:i + _CHUNK_INTERVALS]
            states: dict[tuple, list] = defaultdict(lambda width=width: [None] * width)
            at = 0
            for store in merged:
                if store not in recomputed:
                    found = _states_carried(table=store, cube=cube, department=department, spans=chunk)
                elif (store, cube) in built:
                    lo, hi = chunk[0][0], chunk[-1][1]
                    found = {key: values for key, values in built[(store, cube)].items() if lo <= key[0] < hi}
                else:
                    found = _sets_merge(table=store, cube=cube, source=cube_source(cube, kept[store]),
                                        department=department, spans=chunk)
                for key, values in found.items():
                    states[key][at:at + len(values)] = values
                at += len(store.measures)
            _cube_rows_delete(table=owner, cube=cube, department=department, spans=chunk)
            _cube_rows_insert(record_type=record_type, table=owner, measures=measures, cube=cube, source=source,
                              department=department, spans=chunk,
                              joined=([m.key for s in merged for m in s.measures], states))


def _bucket_rebuilt(cube: Cube, moment: datetime, *, zone: ZoneInfo, spans, starts) -> datetime | None:
    """The start of `cube`'s bucket holding `moment` when it lies in `spans` (whole buckets of the cube,
    sorted; `starts` their starts), the buckets being rebuilt; else None."""
    start = cube.bucket_span(moment, zone)[0]
    at = bisect_right(starts, start) - 1
    return start if at >= 0 and start < spans[at][1] else None


class _CubeFold:
    """Values of fetched rows folded per bucket × kept dimensions of each of `cubes`, for one chunk of
    spans (a cube's buckets lie wholly inside one span of the chunk's union: whole buckets are rebuilt).
    A row is (moment, the values of `dims`..., anything); `add` gets its values to fold."""

    def __init__(self, *, spans_by_cube: dict, chunk, zone: ZoneInfo, dims: tuple[str, ...], width: int):
        lo, hi = chunk[0][0], chunk[-1][1]
        self.inside = {cube: [(s, e) for s, e in spans if lo <= s and e <= hi] for cube, spans in spans_by_cube.items()}
        self.starts = {cube: [s for s, _ in spans] for cube, spans in self.inside.items()}
        self.kept = {cube: [d for d in dims if d in cube.dims] for cube in spans_by_cube}
        self.places = {cube: [1 + dims.index(d) for d in kept] for cube, kept in self.kept.items()}
        self.buckets: dict[Cube, dict[datetime, datetime | None]] = {cube: {} for cube in spans_by_cube}
        self.collected: dict[Cube, dict[tuple, list[list]]] = {cube: {} for cube in spans_by_cube}
        self.zone, self.width = zone, width

    def add(self, moment: datetime, row: tuple, values, *, many: bool = False) -> None:
        """Fold one row's `values` (one per measure; None adds nothing; with `many`, each a list of
        values, all added as they are)."""
        for cube, collected in self.collected.items():
            cached = self.buckets[cube]
            bucket = cached.get(moment, False)
            if bucket is False:  # the cube's bucket holding this moment, if it is rebuilt
                cached[moment] = bucket = _bucket_rebuilt(cube, moment, zone=self.zone, spans=self.inside[cube],
                                                          starts=self.starts[cube])
            if bucket is None:
                continue
            key = (bucket, *(row[p] for p in self.places[cube]))
            lists = collected.get(key)
            if lists is None:
                lists = collected[key] = [[] for _ in range(self.width)]
            for gathered, value in zip(lists, values, strict=True):
                if many:
                    gathered.extend(value)
                elif value is not None:
                    gathered.append(value)

    def states(self, cube: Cube, *, kind, state_of) -> dict[tuple, list]:
        """{the cube row's key (bucket start, every dimension's value, '' where it keeps none): the stored
        state of each measure (`kind.dump(state_of(values))`)}, for the keys holding a state."""
        kept = self.kept[cube]
        found = {}
        for key, lists in self.collected[cube].items():
            stored = [kind.dump(state_of(values)) for values in lists]
            if any(v is not None for v in stored):
                found[(key[0], *(key[1 + kept.index(d)] if d in kept else "" for d in DIMENSIONS))] = stored
        return found


def _sets_merge(*, table: CubeTable, cube: Cube, source: Cube, department, spans) -> dict[tuple, list]:
    """The stored states of `cube`'s buckets in `spans` (whole buckets of it) for a store merged in Python:
    its states in the rows of `source` (a cube it keeps, already rebuilt), loaded and merged per bucket."""
    kind = table.kind
    dims = () if kind.department_wide else DIMENSIONS
    fold = _CubeFold(spans_by_cube={cube: spans}, chunk=spans, zone=ZoneInfo(department.timezone), dims=dims,
                     width=len(table.measures))
    for row in _store_rows(table=table, cube=source, department=department, spans=spans):
        fold.add(row[0], row, [None if v is None else kind.load(v) for v in row[_KEY_WIDTH:]])
    return fold.states(cube, kind=kind, state_of=kind.merge)


def _states_carried(*, table: CubeTable, cube: Cube, department, spans) -> dict[tuple, list]:
    """What the rows of `cube` in `spans` hold in the store's columns, as stored (kept by a rebuild that
    does not recompute the store)."""
    return {row[:_KEY_WIDTH]: [bytes(v) if isinstance(v, memoryview) else v for v in row[_KEY_WIDTH:]]
            for row in _store_rows(table=table, cube=cube, department=department, spans=spans)
            if any(v is not None for v in row[_KEY_WIDTH:])}


_KEY_WIDTH = 1 + len(DIMENSIONS)  # a row of `_store_rows`: its bucket start and dimensions, then the states


def _store_rows(*, table: CubeTable, cube: Cube, department, spans):
    """(bucket start, every dimension's value, the store's states...) of the department's rows of `cube` in
    `spans`, as stored."""
    rows = (table.model.objects.filter(cube=cube.key, department_id=department.id)
            .filter(span_filter("bucket_start", spans)).order_by()
            .values_list("bucket_start", *(DIMENSION_COLUMNS[d] for d in DIMENSIONS), *(m.key for m in table.measures)))
    return rows.iterator(chunk_size=10_000)


def _cube_rows_delete(*, table: CubeTable, cube: Cube, department, spans) -> None:
    adapt = connection.ops.adapt_datetimefield_value
    within = " OR ".join(["(bucket_start >= %s AND bucket_start < %s)"] * len(spans))
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {connection.ops.quote_name(table.model._meta.db_table)} "
                       f"WHERE cube = %s AND department_id = %s AND ({within})",
                       [cube.key, department.id, *(adapt(t) for span in spans for t in span)])


# Compiled recompute SQL per shape (record type, table, cube, source, zone, number of spans). Why: a
# recompute of one quarter runs ~30 INSERT … SELECT statements a department, and the ORM compiling
# each cost more than the database running it (most of a freshness pass was Python). The SQL text
# depends only on the shape; the department id and the span bounds are its only varying parameters
# (every other one is a constant of the measures). Each shape is compiled once with sentinel values:
# where they are among the parameters is where the real ones go; a shape whose sentinels are not all
# found is compiled every time.
_COMPILED: OrderedDict[tuple, tuple[str, list, list[tuple[int, str, int]]] | None] = OrderedDict()
_COMPILED_MAX = 4096
_SENTINEL_DEPARTMENT = -7_300_000_001
_SENTINEL_EPOCH = datetime(1901, 1, 1, tzinfo=UTC)


def _compiled(shape: tuple, build, *, department_id: int, spans) -> tuple[str, list]:
    """(SQL, parameters) of `build(department_id, spans)`, compiled once per shape."""
    if shape not in _COMPILED:
        _COMPILED[shape] = _sentinel_compile(build, len(spans))
        if len(_COMPILED) > _COMPILED_MAX:
            _COMPILED.popitem(last=False)
    entry = _COMPILED[shape]
    if entry is None:
        sql, params = build(department_id, spans)
        return sql, list(params)
    sql, template, places = entry
    adapt = connection.ops.adapt_datetimefield_value
    params = list(template)
    for position, what, index in places:
        params[position] = department_id if what == "department" else adapt(spans[index][what == "end"])
    return sql, params


def _sentinel_compile(build, n: int):
    """(SQL, parameters, where the department and each span bound go), from one compile with sentinel
    values (once: a worker restarted mid-burst compiles each shape only as often as before), or None
    when a sentinel is not found among the parameters as it was given (it went in transformed)."""
    adapt = connection.ops.adapt_datetimefield_value
    department, epoch = _SENTINEL_DEPARTMENT, _SENTINEL_EPOCH
    spans = [(epoch + timedelta(hours=2 * i), epoch + timedelta(hours=2 * i + 1)) for i in range(n)]
    sql, params = build(department, spans)
    values = {department: ("department", 0)}
    for i, (start, end) in enumerate(spans):
        values[adapt(start)] = ("start", i)
        values[adapt(end)] = ("end", i)
    places = [(position, *values[p]) for position, p in enumerate(params)
              if isinstance(p, int | str | datetime) and p in values]
    if {(what, index) for _, what, index in places} != set(values.values()):
        return None
    return sql, list(params), places


_WARM_QUARTER = datetime(1902, 1, 1, tzinfo=UTC)  # before any record (and apart from the sentinels)


def recompute_sql_warm() -> int:
    """Compile the recompute's statements of every record type for each zone departments use, by
    recomputing one empty quarter of 1902 in a transaction rolled back; returns the shapes compiled.

    Called in a Celery worker's main process before it forks its pool: a pool process started
    again after one was killed inherits the compiled SQL instead of compiling ~80 statements per
    department on its first passes, which is what a restarted worker's first recompute waited on.
    """
    before = len(_COMPILED)
    quarter = [(_WARM_QUARTER, _WARM_QUARTER + QUARTER)]
    by_zone = {d.timezone: d for d in Department.objects.order_by("id")}
    for department in by_zone.values():
        for record_type in RECORD_KINDS:
            try:
                with transaction.atomic():
                    cube_buckets_rebuild(record_type=record_type, department=department, intervals=quarter)
                    transaction.set_rollback(True)
            except Exception:  # noqa: BLE001 - a warm-up never stops a worker: it compiles on demand instead
                logger.warning("could not compile the %s recompute for zone %s ahead", record_type,
                               department.timezone, exc_info=True)
    return len(_COMPILED) - before


def _dimension(*, record_type: str, cube: Cube, name: str):
    """A dimension's value in a cube row: the record's (raw NULL and the cube's '' are the same "none"),
    or '' when the cube does not keep it or the record type does not declare it."""
    column = DIMENSION_COLUMNS[name]
    if name in cube.dims and column in RECORD_KINDS[record_type].dimensions:
        return Coalesce(F(column), Value(""), output_field=CharField())
    return Value("", output_field=CharField())


def _cube_rows_insert(*, record_type: str, table: CubeTable, measures: list, cube: Cube, source: Cube | None,
                      department, spans, joined: tuple[list[str], dict[tuple, list]] = ([], {})) -> None:
    """INSERT ... SELECT one table's rows of the cube for `spans`: the states of `measures` (those of its
    stores merged in SQL that keep the cube) per bucket × dimensions, built from the raw records for the
    exact layer and merged from it for every other cube (each measure's kind supplies the aggregate), and
    `joined`: (columns, {row key: their stored values}) computed in Python, written in the same rows (a
    column of a store that does not keep the cube, or of a key `joined` lacks, is NULL)."""
    if any(m.kind.opening() for m in measures):
        _stock_rows_insert(record_type=record_type, table=table, cube=cube, source=source, department=department,
                           spans=spans)
        return
    kind = RECORD_KINDS[record_type]
    source_key = None if source is None else source.key
    from_raw = cube is EXACT_CUBE or (source is EXACT_CUBE and not table.exact_stored)

    def select(department_id: int, select_spans) -> tuple[str, tuple]:
        # Built only when the shape is compiled: the clamped raw fields alone cost ~2 ms of ORM a cube.
        if from_raw:
            rows, bounded = bounded_source(kind.model.objects, measures)
            anchor = kind.anchor
            states = {f"c_{m.key}": m.kind.build(m) for m in bounded}
        else:
            rows, anchor = table.model.objects.filter(cube=source_key), "bucket_start"
            states = {f"c_{m.key}": m.kind.rollup(m) for m in measures}
        return (
            rows.filter(department_id=department_id).filter(span_filter(anchor, select_spans))
            .annotate(
                k_bucket=cube.bucket_start(F(anchor), department.timezone),
                **{f"k_{DIMENSION_COLUMNS[d]}": _dimension(record_type=record_type, cube=cube, name=d)
                   for d in DIMENSIONS},
            )
            .values("k_bucket", *(f"k_{DIMENSION_COLUMNS[d]}" for d in DIMENSIONS))
            .annotate(**states)
            .order_by()
        ).query.sql_with_params()

    shape = ("insert", record_type, table.model._meta.db_table, cube.key, source_key,
             department.timezone, len(spans))
    sql, params = _compiled(shape, select, department_id=department.id, spans=spans)
    dimensions = [DIMENSION_COLUMNS[d] for d in DIMENSIONS]
    qn = connection.ops.quote_name
    table_name = qn(table.model._meta.db_table)
    extra, states = joined
    postgres_join = bool(states) and connection.vendor == "postgresql"
    in_select = extra if postgres_join else []  # SQLite: set by an UPDATE after the INSERT
    columns = ", ".join(qn(c) for c in [*(m.key for m in measures), *in_select])
    values = ", ".join([*(m.kind.stored(f"s.{qn('c_' + m.key)}") for m in measures),
                        *(f"p.{qn('j_' + c)}" for c in in_select)])
    join, join_params = "", []
    if postgres_join:
        # The Python states as arrays, one per key column and state column, joined on the key.
        keys = list(states)
        named = ["k_bucket", *(f"k_{c}" for c in dimensions), *(f"j_{c}" for c in extra)]
        join = (f" LEFT JOIN unnest(%s::timestamptz[], {', '.join(['%s::text[]'] * len(dimensions))}, "
                f"{', '.join(['%s::bytea[]'] * len(extra))}) AS p({', '.join(qn(n) for n in named)}) ON "
                + " AND ".join(f"p.{qn(n)} = s.{qn(n)}" for n in named[:1 + len(dimensions)]))
        join_params = [[key[n] for key in keys] for n in range(1 + len(dimensions))] + [
            [states[key][n] for key in keys] for n in range(len(extra))]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table_name} (cube, department_id, bucket_start, {', '.join(dimensions)}, {columns}) "
            f"SELECT %s, %s, s.k_bucket, {', '.join(f's.k_{c}' for c in dimensions)}, {values} FROM ({sql}) s{join}",
            [cube.key, department.id, *params, *join_params],
        )
        if states and not postgres_join:  # SQLite: the rows just written get their Python states
            adapt = connection.ops.adapt_datetimefield_value
            cursor.executemany(
                f"UPDATE {table_name} SET {', '.join(f'{qn(c)} = %s' for c in extra)} WHERE cube = %s AND "
                f"department_id = %s AND bucket_start = %s AND {' AND '.join(f'{qn(c)} = %s' for c in dimensions)}",
                [(*values, cube.key, department.id, adapt(key[0]), *key[1:]) for key, values in states.items()],
            )


def _sets_build(*, record_type: str, table: CubeTable, cubes: list[Cube], department,
                intervals) -> dict[Cube, dict[tuple, list]]:
    """{cube: {row key: stored states}} of `cubes` over `intervals` from the raw records, for a store the
    database cannot merge: each raw record's element (None: it adds none) is added to its bucket of every
    cube, from one read of the raw records of the union of the cubes' buckets (whole local days for the day
    cubes). Before, the kind makes ready what its elements read (`prepare`: customer ids, first contacts),
    reading what the rows being replaced hold (they are replaced after)."""
    zone = ZoneInfo(department.timezone)
    kind = RECORD_KINDS[record_type]
    measures, measure_kind, model = table.measures, table.kind, table.model
    keys = [m.key for m in measures]
    # The dimensions a raw row carries for these cubes (none for a department-wide kind): those the record type
    # declares, as the INSERT … SELECT these states are joined into keys its rows (`_dimension`).
    dims = () if measure_kind.department_wide else tuple(
        d for d in DIMENSIONS if DIMENSION_COLUMNS[d] in kind.dimensions and any(d in c.dims for c in cubes))
    spans_by_cube = {cube: cube.spans(intervals, zone) for cube in cubes}
    union = merge_intervals(span for spans in spans_by_cube.values() for span in spans)
    built: dict[Cube, dict[tuple, list]] = {cube: {} for cube in cubes}
    for i in range(0, len(union), _CHUNK_INTERVALS):
        chunk = union[i:i + _CHUNK_INTERVALS]
        fold = _CubeFold(spans_by_cube=spans_by_cube, chunk=chunk, zone=zone, dims=dims, width=len(keys))
        source = kind.model.objects.filter(department_id=department.id).filter(span_filter(kind.anchor, chunk))
        previous = measure_kind.empty()
        if measure_kind.prepare_previous:  # what the replaced rows held (every cube covers the whole department)
            replaced = model.objects.filter(cube__in=[c.key for c in cubes], department_id=department.id).filter(
                span_filter("bucket_start", chunk))
            previous = measure_kind.merge([measure_kind.load(v) for row in replaced.values_list(*keys) for v in row])
        # Rebuilt in every cube are the changed intervals themselves (a cube rebuilds its buckets that
        # hold them; the hour cube not the rest of the day): a first contact that moved anywhere else,
        # even within the chunk, is marked for the next pass.
        rebuilt = [(start, end) for start, end in intervals if chunk[0][0] <= start < chunk[-1][1]]
        moved = [moment for m in measures for moment in m.kind.prepare(
            m, department=department, source=source, spans=rebuilt, previous=previous)]
        if moved:  # first contacts moved out of or into other quarters: those are recomputed too
            record_changes_mark(record_type=record_type, marks=((department.id, moment) for moment in moved))
        # The elements of each quarter × dimensions gathered by the database: one row per group, not per
        # record (a busy day's 3,000 records were 3,000 rows parsed and folded per table).
        keys_of = ["k_quarter", *(f"k_{d}" for d in dims)]
        rows = (source.annotate(
            # The quarter (the exact layer's bucket): a key cached per bucket, every bucket a union of them.
            k_quarter=EXACT_CUBE.bucket_start(F(kind.anchor), department.timezone),
            **{f"k_{d}": Coalesce(F(DIMENSION_COLUMNS[d]), Value(""), output_field=CharField()) for d in dims},
        ).values(*keys_of).annotate(**{f"e_{m.key}": ElementList(m.kind.build(m)) for m in measures})
            .order_by().values_list(*keys_of, *(f"e_{m.key}" for m in measures)))
        width = 1 + len(dims)
        for row in rows.iterator(chunk_size=10_000):
            fold.add(row[0], row, row[width:], many=True)
        for cube in cubes:
            built[cube].update(fold.states(cube, kind=measure_kind, state_of=measure_kind.of_elements))
    return built


def _intervals_build(*, record_type: str, table: CubeTable, cubes: list[Cube], department, intervals) -> None:
    """Replace the rows of `cubes` over `intervals` for a record type that holds state: per bucket (and
    owner, in a cube keeping the agent), the seconds each state lasted in it, from the state intervals of
    the raw events (`state_intervals_read`) of the union of the cubes' buckets, cut at UTC quarter-hours
    and each quarter's seconds added to its bucket in every cube (every bucket is a union of quarters).
    Open states count up to now (the sweep re-marks the current quarter as time passes)."""
    if any(not m.kind.intervals for m in table.measures):
        raise TypeError(f"{record_type} holds state: its measures must be built from intervals")
    zone = ZoneInfo(department.timezone)
    kind = RECORD_KINDS[record_type]
    spans_by_cube = {cube: cube.spans(intervals, zone) for cube in cubes}
    union = merge_intervals(span for spans in spans_by_cube.values() for span in spans)
    starts = {cube: [s for s, _ in spans] for cube, spans in spans_by_cube.items()}
    agent_kept = [AGENT in cube.dims for cube in cubes]
    # Per quarter, its bucket in each cube (None: not rebuilt there, e.g. the hour cube's buckets of a
    # day rebuilt only in the day cube); a quarter's pieces of all owners share it.
    buckets: dict[datetime, list[datetime | None]] = {}
    seconds: list[dict[tuple[datetime, str], dict[str, float]]] = [defaultdict(lambda: defaultdict(float))
                                                                   for _ in cubes]
    events = kind.model.objects.filter(department_id=department.id)
    held = state_intervals_read(kind, events, spans=union, now=timezone.now())
    for quarter, owner, state, cut in quarter_seconds(held, union):
        places = buckets.get(quarter)
        if places is None:
            places = buckets[quarter] = []
            for cube in cubes:
                places.append(_bucket_rebuilt(cube, quarter, zone=zone, spans=spans_by_cube[cube],
                                              starts=starts[cube]))
        for n, bucket in enumerate(places):
            if bucket is not None:
                seconds[n][(bucket, owner if agent_kept[n] else "")][state] += cut
    keys = [m.key for m in table.measures]
    others = [DIMENSION_COLUMNS[d] for d in DIMENSIONS if d != AGENT]  # a state record's only dimension: its owner
    columns = ["cube", "department_id", "bucket_start", DIMENSION_COLUMNS[AGENT], *others, *keys]
    for n, cube in enumerate(cubes):
        spans = spans_by_cube[cube]
        for i in range(0, len(spans), _CHUNK_INTERVALS):
            _cube_rows_delete(table=table, cube=cube, department=department, spans=spans[i:i + _CHUNK_INTERVALS])
        rows = []
        for (bucket, owner), by_state in seconds[n].items():
            states = [m.kind.from_seconds(m, by_state) for m in table.measures]
            if any(states):  # time wholly offline adds nothing to any measure: no row, as for no event
                rows.append((cube.key, department.id, bucket, owner, *([""] * len(others)),
                             *(m.kind.dump(state) for m, state in zip(table.measures, states, strict=True))))
        _rows_write(table.model._meta.db_table, columns, rows)


def _rows_write(table_name: str, columns: list[str], rows: list[tuple]) -> None:
    """Plain INSERT of many rows: COPY on PostgreSQL (a year of quarters per agent is millions of rows;
    model instances cost ~10x more), executemany on SQLite."""
    if not rows:
        return
    qn = connection.ops.quote_name
    listed = ", ".join(qn(c) for c in columns)
    if connection.vendor == "postgresql":
        with pg_cursor(connection) as cursor, cursor.copy(f"COPY {qn(table_name)} ({listed}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {qn(table_name)} ({listed}) VALUES ({', '.join(['%s'] * len(columns))})",
                           [tuple(adapt(v) if isinstance(v, datetime) else v for v in row) for row in rows])


def _stock_rows_insert(*, record_type: str, table: CubeTable, cube: Cube, source: Cube | None, department,
                       spans) -> None:
    """The rows of a stock table for `spans` (see metrics.measures.Stock): level rows (since null) with
    the ins of the records that start and the outs of those that end in each bucket, and pair rows
    with the outs of each bucket by the bucket (same grain) where the record started.

    The exact layer reads the raw records three times (by start, by end, by end and start); a coarser
    cube merges the exact rows, re-bucketing `since` to its own grain. The parts are summed together
    (every stock column is additive), so a record that starts and ends in one bucket lands in one row.
    """
    spec = RECORD_KINDS[record_type]
    zone = department.timezone
    qn = connection.ops.quote_name
    measures = table.measures
    columns = [f"{m.key}_{side}" for m in measures for side in ("in", "out")]
    dims = {f"k_{d}": _dimension(record_type=record_type, cube=cube, name=d) for d in DIMENSIONS}

    def part(source, *, at: str, since: str | None, states: dict) -> tuple[str, list]:
        select = (
            source.filter(department_id=department.id).filter(span_filter(at, spans))
            .annotate(k_bucket=cube.bucket_start(F(at), zone), **dims,
                      **({"k_since": cube.bucket_start(F(since), zone)} if since else {}))
            .values("k_bucket", *(["k_since"] if since else []), *dims)
            .annotate(**{f"c_{name}": aggregate for name, aggregate in states.items()})
            .order_by()
        )
        sql, params = select.query.sql_with_params()
        null_since = f"CAST(NULL AS {DateTimeField().db_type(connection)})"
        listed = ", ".join(f"s.{qn('c_' + c)} AS {qn('c_' + c)}" if c in states else f"0 AS {qn('c_' + c)}"
                           for c in columns)
        return (f"SELECT s.k_bucket AS k_bucket, {'s.k_since' if since else null_since} AS k_since, "
                f"{', '.join(f's.{d} AS {d}' for d in dims)}, {listed} FROM ({sql}) s", list(params))

    if cube is EXACT_CUBE:
        raw = spec.model.objects.all()
        parts = [
            part(raw, at=spec.start, since=None, states={f"{m.key}_in": m.kind.build(m) for m in measures}),
            part(raw, at=spec.end, since=None, states={f"{m.key}_out": m.kind.build(m) for m in measures}),
            part(raw, at=spec.end, since=spec.start, states={f"{m.key}_out": m.kind.build(m) for m in measures}),
        ]
    else:
        exact = table.model.objects.filter(cube=source.key)
        merged = {name: aggregate for m in measures for name, aggregate in m.kind.rollups(m).items()}
        parts = [
            part(exact.filter(since__isnull=True), at="bucket_start", since=None, states=merged),
            part(exact.filter(since__isnull=False), at="bucket_start", since="since",
                 states={name: aggregate for name, aggregate in merged.items() if name.endswith("_out")}),
        ]
    union = " UNION ALL ".join(sql for sql, _ in parts)
    keys = ["k_bucket", "k_since", *dims]
    sums = ", ".join(f"SUM(u.{qn('c_' + c)})" for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {qn(table.model._meta.db_table)} (cube, department_id, bucket_start, since, "
            f"{', '.join(DIMENSION_COLUMNS[d] for d in DIMENSIONS)}, {', '.join(qn(c) for c in columns)}) "
            f"SELECT %s, %s, {', '.join(f'u.{k}' for k in keys)}, "
            f"{sums} "
            f"FROM ({union}) u GROUP BY {', '.join(f'u.{k}' for k in keys)}",
            [cube.key, department.id, *(p for _, params in parts for p in params)],
        )


def _recompute_lock(*, record_type: str, department_id: int) -> None:
    """Serialise recomputes of one record type of one department (SQLite serialises all writes)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE[record_type], department_id])


@dataclass(frozen=True)
class RecomputeOutcome:
    buckets: int  # dirty buckets recomputed
    failed: int  # groups that raised
    exhausted: bool  # the time budget ran out with work possibly left


def dirty_buckets_recompute(*, time_budget: float | None = None, batch: int | None = None) -> RecomputeOutcome:
    """Claim dirty buckets in batches and recompute them until none is left or the budget runs out.

    Safe to run twice or concurrently: claims are leased (SKIP LOCKED on PostgreSQL), each
    (record type, department) is recomputed under a lock in one transaction, and a mark that
    arrived meanwhile (new version) survives for the next pass.
    """
    budget = settings.CSKPI_RECOMPUTE_TIME_BUDGET if time_budget is None else time_budget
    batch = batch or settings.CSKPI_RECOMPUTE_BATCH
    deadline = monotonic() + budget
    done = failed = 0
    while True:
        claims = _dirty_buckets_claim(limit=batch)
        if not claims:
            return RecomputeOutcome(done, failed, False)
        groups: dict[tuple[str, int], list[dict]] = defaultdict(list)
        for claim in claims:
            groups[(claim["record_type"], claim["department_id"])].append(claim)
        departments = Department.objects.in_bulk({d for _, d in groups})
        for (record_type, department_id), group in _least_recent_first(groups):
            department = departments.get(department_id)
            if department is None:  # deleted meanwhile; its marks went with it (cascade)
                continue
            recomputed = _claims_recompute(record_type=record_type, department=department, claims=group)
            done += recomputed
            failed += recomputed < len(group)
        if monotonic() > deadline:
            return RecomputeOutcome(done, failed, True)


def _least_recent_first(groups: dict[tuple[str, int], list[dict]]) -> list[tuple[tuple[str, int], list[dict]]]:
    """The (record type, department) groups of a pass, the one whose last recompute completed longest ago
    first. A pass commits group by group: when passes are cut short (a worker killed every few seconds,
    a time budget), the groups one pass left out come first in the next. In claim order one department
    stayed last in every pass of a steady stream and, with the pool killed every 5 s, waited 20-30 s."""
    stamps = {(t, d): at for t, d, at in RecomputeStamp.objects.filter(
        department_id__in={d for _, d in groups}).values_list("record_type", "department_id", "completed_at")}
    never = datetime.min.replace(tzinfo=UTC)
    return sorted(groups.items(), key=lambda item: stamps.get(item[0], never))


WORKER_LOST = "the worker was lost while recomputing (killed, out of memory or over its time limit)"


def _claim_expired(now: datetime) -> Q:
    """Claims another consumer may take: none, a lease that ran out, or (PostgreSQL) a claimer whose
    connection is gone.

    A worker killed mid-recompute takes its connection with it; its backend ends as soon as
    PostgreSQL notices (at once when idle, within `client_connection_check_interval` when busy,
    see settings), and with it the backend's pid from `pg_stat_activity`. So a dead claimer's
    buckets are free within about a second, not at the end of the lease, which stays for what a
    pid cannot tell (a claimer alive but stuck; SQLite, one process)."""
    expired = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    if connection.vendor == "postgresql":
        expired |= Q(claimed_by__isnull=False) & ~Q(claimed_by__in=RawSQL("SELECT pid FROM pg_stat_activity", ()))
    return expired


def _claimer() -> int | None:
    """This connection's PostgreSQL backend pid (what `_claim_expired` checks for liveness)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _dirty_buckets_claim(*, limit: int) -> list[dict]:
    now = timezone.now()
    with transaction.atomic():
        # A claim left after the last allowed attempt by a claimer that is gone (lease run out, or
        # its connection closed) means every attempt died with its worker (an exception would have
        # parked it already): park it instead of claiming it again, so a bucket that kills its
        # worker cannot be redelivered forever.
        lost = RecordChange.objects.filter(
            Q(claimed_until__isnull=False) & _claim_expired(now),
            failed_at__isnull=True, attempts__gte=settings.CSKPI_RECOMPUTE_MAX_ATTEMPTS,
        )
        lost.filter(last_error="").update(failed_at=now, last_error=WORKER_LOST)
        lost.update(failed_at=now)
        ids = list(
            RecordChange.objects.select_for_update(skip_locked=True)
            .filter(_claim_expired(now), failed_at__isnull=True)
            .order_by("first_marked_at")
            .values_list("id", flat=True)[:limit]
        )
        if not ids:
            return []
        RecordChange.objects.filter(id__in=ids).update(
            claimed_until=now + timedelta(seconds=settings.CSKPI_RECOMPUTE_LEASE_SECONDS),
            claimed_by=_claimer(),
            attempts=F("attempts") + 1,
        )
        return list(
            RecordChange.objects.filter(id__in=ids).values(
                "id", "version", "record_type", "department_id", "quarter_start", "scope", "attempts"
            )
        )


def _claimed(claims: list[dict]) -> Q:
    """The claimed rows, as long as no newer mark replaced their version."""
    by_version: dict[int, list[int]] = defaultdict(list)
    for claim in claims:
        by_version[claim["version"]].append(claim["id"])
    return reduce(or_, (Q(version=v, id__in=ids) for v, ids in by_version.items()))


@functools.cache
def scope_tables(record_type: str, scope: str) -> frozenset[CubeTable]:
    """The cube tables of a record type that a change of this scope can move: all of them for `all`;
    for `service_levels` those with a measure reading a column measured with the calendar and policy
    (a calendar change over a year recomputes the counts, not the sketches, sets and first contacts)."""
    tables = CUBE_TABLES[record_type]
    if scope == ChangeScope.ALL:
        return frozenset(tables)
    columns = set(RECORD_KINDS[record_type].service_level_columns)
    return frozenset(t for t in tables if t.reads & columns)


def _claims_recompute(*, record_type: str, department, claims: list[dict]) -> int:
    """Recompute the claimed buckets in one transaction; -> how many were recomputed.

    When that fails, the claims are split in halves and each half is tried alone, down to single
    buckets: a bucket that cannot be recomputed is retried and parked alone, with its key in its
    error (shown by /status), and never takes its neighbours with it.
    """
    started = monotonic()
    try:
        with transaction.atomic():
            _recompute_lock(record_type=record_type, department_id=department.id)
            # Under the lock, the zone as committed now (a zone change takes the same lock).
            department.refresh_from_db(fields=["timezone"])
            # Each store over the quarters whose change can move it: the quarters of one set of stores at once
            # (the stores of a table are rebuilt in one pass over its rows).
            by_stores: dict[frozenset[CubeTable], list[datetime]] = defaultdict(list)
            for claim in claims:
                by_stores[scope_tables(record_type, claim["scope"])].append(claim["quarter_start"])
            for stores, quarters in by_stores.items():
                if stores:
                    cube_buckets_rebuild(record_type=record_type, department=department, tables=stores,
                                         intervals=merge_intervals((q, q + QUARTER) for q in quarters))
            RecordChange.objects.filter(_claimed(claims)).delete()
            RecomputeStamp.objects.bulk_create(
                [RecomputeStamp(record_type=record_type, department=department, completed_at=timezone.now(),
                                buckets=len(claims), duration_ms=(monotonic() - started) * 1000)],
                update_conflicts=True, unique_fields=["record_type", "department"],
                update_fields=["completed_at", "buckets", "duration_ms"],
            )
        alert_evaluation_kick(department_id=department.id)  # alert rules see the new numbers
        return len(claims)
    except Exception as exc:  # noqa: BLE001 - recorded on the marks; retried, then parked as failed
        if len(claims) > 1:
            middle = len(claims) // 2
            return sum(_claims_recompute(record_type=record_type, department=department, claims=half)
                       for half in (claims[:middle], claims[middle:]))
        key = f"{record_type} bucket {claims[0]['quarter_start'].isoformat()} of department {department.slug}"
        logger.exception("recompute of %s failed", key)
        _claims_fail(claims=claims, error=f"{key}: {type(exc).__name__}: {exc}"[:2000])
        return 0


def _claims_fail(*, claims: list[dict], error: str) -> None:
    now = timezone.now()
    limit = settings.CSKPI_RECOMPUTE_MAX_ATTEMPTS
    exhausted = [c for c in claims if c["attempts"] >= limit]
    retry = [c for c in claims if c["attempts"] < limit]
    if exhausted:
        RecordChange.objects.filter(_claimed(exhausted)).update(last_error=error, failed_at=now)
    if retry:
        # Back off so a persistent error does not spin; a new mark clears the claim at once.
        backoff = min(2 ** max(c["attempts"] for c in retry), 300)
        RecordChange.objects.filter(_claimed(retry)).update(  # a back-off is a lease with no claimer
            last_error=error, claimed_until=now + timedelta(seconds=backoff), claimed_by=None
        )


# --- open states: time passing changes the current quarter ----------------------------------
OPEN_STATES_MARKED = "metrics:open-states-marked-until"


def open_states_mark(*, now: datetime | None = None) -> int:
    """Mark the quarters time has moved through since the last call, for every department where a
    state can still be open then (an event of a record type that holds state within the timeout).

    An open state counts up to now, so the quarter holding now changes as time passes even when no
    event arrives; the recompute's sweep calls this first, so that quarter (and the one just
    finished) is recomputed within the sweep interval. Where the last call is not known (first run,
    cache lost) it marks back one presence timeout. -> the marks written.
    """
    now = timezone.now() if now is None else now
    timeout = presence_timeout()
    try:
        since = cache.get(OPEN_STATES_MARKED)
    except Exception:  # noqa: BLE001 - cache down: go back one timeout
        since = None
    if since is None or since > now:
        since = now - timeout
    marks = 0
    for record_type, kind in RECORD_KINDS.items():
        if not kind.holds:
            continue
        anchor = kind.anchor
        pairs = []
        for department_id in Department.objects.values_list("id", flat=True):  # one index range scan each
            latest = kind.model.objects.filter(
                department_id=department_id, **{f"{anchor}__gt": since - timeout, f"{anchor}__lte": now}
            ).aggregate(latest=Max(anchor))["latest"]
            if latest is not None:
                pairs += [(department_id, q) for q in kind.span_quarters(since, min(now, latest + timeout))]
        with transaction.atomic():
            marks += record_changes_mark(record_type=record_type, marks=pairs)
    try:
        cache.set(OPEN_STATES_MARKED, now, timeout=None)
    except Exception:  # noqa: BLE001 - the next call marks back one timeout
        pass
    return marks


# --- rebuild --------------------------------------------------------------------------------


def department_chunks(*, department, since: datetime | None, chunk_days: int) -> list[tuple[str, tuple]]:
    """The (record type, [start, end)) chunks a rebuild of the department walks, local-day aligned."""
    zone = ZoneInfo(department.timezone)
    chunks = []
    for record_type, kind in RECORD_KINDS.items():
        bounds = kind.model.objects.filter(department_id=department.id).aggregate(
            **{f"lo_{c}": Min(c) for c in kind.time_columns}, **{f"hi_{c}": Max(c) for c in kind.time_columns}
        )
        lows = [v for k, v in bounds.items() if k.startswith("lo_") and v is not None]
        highs = [v for k, v in bounds.items() if k.startswith("hi_") and v is not None]
        if not lows:
            continue
        lo = max(min(lows), since) if since else min(lows)
        hi = max(highs) + presence_timeout() if kind.holds else max(highs)  # states last past their event
        day, last = lo.astimezone(zone).date(), hi.astimezone(zone).date()
        while day <= last:
            following = min(day + timedelta(days=chunk_days), last + timedelta(days=1))
            chunks.append((record_type, (local_midnight(day, zone), local_midnight(following, zone))))
            day = following
    return chunks


def _chunk_mark_dirty(*, record_type: str, department, interval: tuple[datetime, datetime]) -> None:
    """A chunk the rebuild could not write: its record-holding quarters go to the recompute, which
    recomputes them bucket by bucket (and parks only a bucket that still fails)."""
    kind = RECORD_KINDS[record_type]
    start, end = interval
    with transaction.atomic():
        if kind.holds:  # the quarters the chunk's states can reach, from the events that can reach into it
            ats = kind.model.objects.filter(department_id=department.id, **{
                f"{kind.anchor}__gte": start - presence_timeout(), f"{kind.anchor}__lt": end,
            }).values_list(kind.anchor, flat=True)
            marks = ((department.id, q) for at in ats.iterator() for q in kind.quarters_touched((at,))
                     if start <= q < end)
            record_changes_mark(record_type=record_type, marks=marks)
            return
        for column in kind.time_columns:
            quarters = (
                kind.model.objects.filter(department_id=department.id, **{f"{column}__gte": start,
                                                                           f"{column}__lt": end})
                .annotate(quarter=BucketStart(F(column), seconds=QUARTER_SECONDS, zone="UTC"))
                .values_list("quarter", flat=True).distinct().order_by()
            )
            record_changes_mark(record_type=record_type,
                                marks=((department.id, q) for q in quarters.iterator()))


# A CLUSTER waits at most this long for its table's lock: queued behind a long transaction it would hold
# every later reader of the table behind it.
CLUSTER_LOCK_TIMEOUT_MS = 10_000


def cube_tables_cluster() -> list[tuple[str, float, str | None]]:
    """Rewrite every cube table in the order of its key (department, cube, bucket start, dimensions) and
    analyze it; -> (table, seconds, None or why it was skipped) of each. PostgreSQL only (elsewhere:
    nothing done, []).

    Why: a read is one department's rows of one cube over a range, found by the key index; rows written
    chunk by chunk (a rebuild) or as records arrive (the recompute) lie scattered among the other cubes'
    and departments' rows, so a month by hour visited ~720 heap pages for 744 rows (0.73 ms), in key order
    38 (0.29 ms), and an answer that reads cold pages pays it several times over. `CLUSTER` holds an
    exclusive lock on each table while it rewrites it (reads and recomputes of that table wait): run it
    after a full rebuild (`rebuild_aggregates` does) or in a quiet hour, when rows written since have
    scattered again. It also returns the space of dead rows, as `VACUUM FULL` would. A table whose lock is
    not granted within CLUSTER_LOCK_TIMEOUT_MS is skipped (left as it was); the statement timeout does not
    apply to the rewrite itself.
    """
    if connection.vendor != "postgresql":
        return []
    quote = connection.ops.quote_name
    done = []
    for groups in ROW_TABLES.values():
        for table in (stores[0] for stores in groups):
            started = monotonic()
            name = table.model._meta.db_table
            key = table.key_index
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    # Deferred foreign-key checks pending in an enclosing transaction would refuse the CLUSTER.
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                    cursor.execute(f"SET LOCAL lock_timeout = {int(CLUSTER_LOCK_TIMEOUT_MS)}")
                    cursor.execute("SET LOCAL statement_timeout = 0")
                    cursor.execute(f"CLUSTER {quote(name)} USING {quote(key)}")
                    cursor.execute(f"ANALYZE {quote(name)}")
            except OperationalError as exc:
                if getattr(getattr(exc, "__cause__", None), "sqlstate", None) != "55P03":  # lock_not_available
                    raise
                done.append((name, monotonic() - started, "its lock was not granted within "
                                                           f"{CLUSTER_LOCK_TIMEOUT_MS / 1000:g} s"))
                continue
            done.append((name, monotonic() - started, None))
    return done


def department_cubes_rebuild(*, department, since: datetime | None = None, chunk_days: int = 7,
                             progress=None) -> int:
    """Rebuild the department's cubes from its raw records, one bounded transaction per chunk.

    Without `since` every cube row of the department is replaced; with it, the buckets from
    `since` on. Returns the number of chunks; `progress(n)` is called after each.
    """
    zone = ZoneInfo(department.timezone)
    chunks = department_chunks(department=department, since=since, chunk_days=chunk_days)
    covered: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for record_type, interval in chunks:
        try:
            with transaction.atomic():
                _recompute_lock(record_type=record_type, department_id=department.id)
                cube_buckets_rebuild(record_type=record_type, department=department, intervals=[interval])
        except Exception:  # noqa: BLE001 - the rebuild goes on; the recompute isolates the bad bucket
            logger.exception("rebuild of %s %s of department %s failed; its buckets are marked dirty",
                             record_type, interval, department.slug)
            _chunk_mark_dirty(record_type=record_type, department=department, interval=interval)
        covered[record_type].append(interval)
        if progress:
            progress(1)
    # The rebuild replaces what failed recomputes left behind: their parked marks are done with.
    parked = RecordChange.objects.filter(department_id=department.id, failed_at__isnull=False)
    if since:
        parked = parked.filter(quarter_start__gte=since)
    parked.delete()
    # Rows outside what the raw records cover are stale (e.g. the records moved elsewhere).
    for record_type, models in BUCKET_MODELS.items():
        with transaction.atomic():
            _recompute_lock(record_type=record_type, department_id=department.id)
            for model, cube in ((m, c) for m in models for c in CUBES):
                rows = model.objects.filter(department_id=department.id, cube=cube.key)
                spans = cube.spans(covered.get(record_type, []), zone)
                if since:
                    rows = rows.filter(bucket_start__gte=cube.bucket_span(since, zone)[0])
                if spans:
                    rows = rows.exclude(span_filter("bucket_start", spans))
                rows.delete()
    return len(chunks)
