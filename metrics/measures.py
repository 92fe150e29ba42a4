"""Measure kinds: how one kind of measure is stored per bucket, built, merged and evaluated.

A *measure* is one number-producing thing the KPIs are made of ("resolved interactions", "first
response seconds"): a record type, a source field, a filter, and a *kind*. The kind is a small class
with one interface, so the engine (recompute, roll-up between cubes, grouped reads, period sums,
totals, comparison) never asks which kind it holds:

- `columns(measure)`: the cube columns holding a bucket's state;
- `build(measure, source)` / `rollup(measure)`: SQL producing a bucket's state from raw rows (the
  exact layer) and from finer cube rows (every coarser cube);
- `read(measure)`: SQL merging the cube rows of one group × period into one state;
- `load(value)`, `merge(states)`, `empty()`: the state in Python and how states combine;
- the KPI formulas then evaluate value and sample size from merged states.

The kinds the engine is written for:

| kind | state per bucket | merge | shipped |
|---|---|---|---|
| additive count / sum | a number (zero stored as NULL) | + | yes (`Count`, `Sum`) |
| quantile | a sparse histogram with ~1 % bins | add counts per bin | yes (`Quantile`) |
| gap to the predecessor (sum / count) | a number | + | yes (`GapSum`, `GapCount`: system-check intervals) |
| exact distinct set | a set of ids (roaring bitmap; a few ids as uint32s) | union (in Python) | yes (`DistinctSet`, `FirstContactSet`) |
| time in state | seconds per state, cut at bucket edges | + | yes (`TimeInState`) |
| stock | ins and outs per bucket; a level at t is the sum before t | + (then a prefix sum) | yes (`Stock`: the customer registry) |

A distinct set and a time-in-state duration fit the same interface (a state, a merge, an evaluation);
a stock (`Stock`) adds an opening level read before the range (`MeasureKind.opening`), carried
through the periods as a prefix sum.

A kind whose states the database cannot merge (a roaring bitmap: PostgreSQL has no union for it)
says so with `sql_merge = False`: the engine then fetches the cube rows' states and merges them with
the kind's `merge` in Python, for the roll-up between cubes and for reads alike; its `build` gives one
element per raw row (None: the row adds none) instead of an aggregate. Such a kind may keep fewer
cubes (`cubes`), prepare what its build joins (`prepare`, e.g. dense ids) and be read department-wide
(`department_wide`: whatever the query groups or filters by, each group sees the department's state).
"""

from __future__ import annotations

import json
import math
import sys
from abc import ABC, abstractmethod
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from itertools import accumulate

from django.db import models
from django.db.models import Case, Expression, F, FloatField, Func, OuterRef, Q, Subquery, Value, When
from django.db.models import Count as CountAgg
from django.db.models import Sum as SumAgg
from django.db.models.constants import LOOKUP_SEP
from django.db.models.functions import Cast
from pyroaring import BitMap

from cskpi.db import rows_stream
from ingestion.fields import SPEC_BY_TYPE
from ingestion.presence import presence_timeout, state_intervals
from metrics.cubes import CUBES, EXACT_CUBE, merge_intervals, span_filter
from metrics.customer_models import CustomerFirstContact, CustomerKey
from metrics.customers import customer_first_contacts_refresh, customer_keys_assign


@dataclass(frozen=True)
class Measure:
    key: str  # also the cube column (descriptive: `first_response_seconds_sum`, not `frt_sum`)
    record_type: str
    kind: MeasureKind
    field: str | None = None  # the raw field it reads (None for a plain count)
    where: Q | None = None  # which raw records it counts
    doc: str = ""

    @property
    def columns(self) -> dict[str, models.Field]:
        return self.kind.columns(self)

    @property
    def reads(self) -> frozenset[str]:
        """The raw columns its value depends on: its field and those its `where` filters on."""
        return frozenset(([self.field] if self.field else []) + (_q_columns(self.where) if self.where else []))


def _q_columns(q: Q) -> list[str]:
    return [column for child in q.children
            for column in (_q_columns(child) if isinstance(child, Q) else [child[0].split(LOOKUP_SEP)[0]])]


class MeasureKind(ABC):
    name: str
    # False: `build` aggregates the raw records of a bucket. True: the kind is built from the state
    # intervals of a record type that holds state (`from_seconds`), see TimeInState.
    intervals: bool = False
    # The store of the record type's cube table holding this kind's states (`metrics.models.CubeTable`: its
    # columns, the cubes it keeps, how they are built and read); every store of a record type but a stock's
    # shares one table, one row per key (migration 0027). "": the counts and sums, which keep every cube.
    store: str = ""
    # Whether SQL merges the states (`rollup`/`read` are SQL aggregates); False: Python does (`merge`).
    sql_merge: bool = True
    # The cube keys whose states this kind keeps (None: every cube; the exact layer always).
    cubes: frozenset[str] | None = None
    # Read over the whole department whatever the query groups or filters by (see the module doc).
    department_wide: bool = False
    # Whether what `read` returns for a group that has cube rows is the state itself (no `load` per
    # value: a large grouped answer loads ~300,000 of them).
    read_is_state: bool = False
    # Whether the raw records can stand in for the exact layer, so it need not be stored: a bucket's
    # state is an aggregate of each raw record on its own (`build`), or the time the state intervals of
    # the raw events spend in it (`intervals`, cut in Python). A table whose kinds all are keeps no
    # quarter-hour rows, builds its finest cubes from the raw records and answers a query no cube fits
    # from the raw records (metrics.reader). False: stocks (a level before the range), gaps to the
    # predecessor (a probe per record: kept, not recomputed per query).
    raw_readable: bool = True
    # Whether `prepare` reads `previous` (what the replaced rows held: read only for kinds that use it).
    prepare_previous: bool = False

    @abstractmethod
    def columns(self, measure: Measure) -> dict[str, models.Field]:
        """The cube columns (name -> field) that hold one bucket's state."""

    @abstractmethod
    def build(self, measure: Measure) -> Expression:
        """An aggregate over raw records (grouped by bucket) giving the state of each bucket."""

    @abstractmethod
    def rollup(self, measure: Measure) -> Expression:
        """An aggregate over finer cube rows giving the state of a coarser bucket."""

    def read(self, measure: Measure) -> Expression:
        """An aggregate over cube rows giving the state of one group × period."""
        return self.rollup(measure)

    def read_one(self, measure: Measure) -> Expression:
        """What `read` gives for a group × period of exactly one cube row: its stored state."""
        return F(measure.key)

    @abstractmethod
    def load(self, value):
        """The Python state from what the database returns for `read` (None: no rows)."""

    @abstractmethod
    def merge(self, states: Iterable):
        """One state from many (periods of a range, departments of a query)."""

    @abstractmethod
    def empty(self):
        """The state of no records."""

    def opening(self) -> bool:
        """Whether a value at the start of a range needs the history before it (stocks)."""
        return False

    def dump(self, state):
        """What a cube column stores for a Python state (kinds merged in Python, time in state)."""
        return state

    def stored(self, sql: str) -> str:
        """The SQL a cube column stores for `sql`, a state as `build` or `rollup` gives it."""
        return sql

    def prepare(self, measure: Measure, *, department, source, spans, previous) -> list:
        """Before the exact layer of `spans` is rebuilt from `source` (the department's raw records in
        them): make ready what `build` reads; `previous` is the merged state the replaced rows held.
        -> moments (UTC) outside `spans` whose quarters must be recomputed too."""
        return []


class _ZeroIfNull(Func):
    """COALESCE(expression, 0) with the zero written in the SQL: a parameter would change the compiled
    read's parameters (metrics.reader binds them itself)."""

    function = "COALESCE"

    def __init__(self, expression, *, zero: str, output_field):
        super().__init__(expression, output_field=output_field)
        self.zero = zero

    def as_sql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"COALESCE({sql}, {self.zero})", params


class _Additive(MeasureKind):
    """A number per bucket, summed. A cube column stores a zero as NULL (migration 0024): a fine bucket
    holds a handful of records, so most of its counts and sums are zero, and a NULL takes no byte where a
    zero takes 4 or 8 (the 1M benchmark's interaction counts: 114 → 99 MB). Every read turns NULL back
    into zero (`read`, `read_one`, `load`), so a state is always a number."""

    read_is_state = True  # columns summed with NULL as zero: a number (an int for counts, see Count.read)
    zero = "0"  # the SQL literal of this kind's zero

    def columns(self, measure):
        return {measure.key: self.field()}

    def rollup(self, measure):
        return SumAgg(measure.key)

    def read(self, measure):
        return _ZeroIfNull(SumAgg(measure.key), zero=self.zero, output_field=self.field())

    def read_one(self, measure):
        return _ZeroIfNull(F(measure.key), zero=self.zero, output_field=self.field())

    def stored(self, sql):
        return f"NULLIF({sql}, 0)"

    def dump(self, state):
        return state or None

    def merge(self, states):
        return sum(states)

    def field(self) -> models.Field:
        raise NotImplementedError


class Count(_Additive):
    """How many records match."""

    name = "count"

    def field(self):
        # 32 bits: a bucket never holds 2^31 records, and 4 bytes a column narrow every bucket row
        # (PostgreSQL sums them into a bigint). NULL: zero (see _Additive).
        return models.IntegerField(null=True, blank=True)

    def build(self, measure):
        return CountAgg("pk", filter=measure.where) if measure.where is not None else CountAgg("pk")

    def read(self, measure):
        # PostgreSQL sums integers into a bigint (bigints, as these columns were, into a numeric: a
        # Decimal in Python); the cast keeps the state an int whichever it sums.
        return _ZeroIfNull(Cast(SumAgg(measure.key), models.BigIntegerField()), zero=self.zero,
                           output_field=models.BigIntegerField())

    def load(self, value):
        return 0 if value is None else int(value)

    def empty(self):
        return 0


class Sum(_Additive):
    """The sum of a numeric field over the records that match."""

    name = "sum"
    zero = "0.0"

    def field(self):
        return models.FloatField(null=True, blank=True)  # NULL: zero (see _Additive)

    def build(self, measure):
        return SumAgg(measure.field, filter=measure.where, default=0.0)

    def load(self, value):
        return 0.0 if value is None else float(value)

    def empty(self):
        return 0.0


# No stored value can stop a recompute: every raw value a measure reads is clamped to ±this before
# it is aggregated (ingestion keeps durations within 10 years, so valid records are never changed;
# a value stored before that bound, e.g. 1e308, can no longer overflow a sum).
SUMMED_VALUE_BOUND = 315_576_000.0


def bounded_source(source, measures):
    """`source` with each raw field the measures read clamped (as `bounded_<field>`), and the
    measures reading those instead."""
    # CASE, not LEAST/GREATEST: those skip NULLs on PostgreSQL (a missing value must stay missing).
    # PostgreSQL sorts NaN above every number, so a stored NaN becomes the bound too.
    bound = SUMMED_VALUE_BOUND

    def clamp(name: str):
        return Case(When(**{f"{name}__gt": bound}, then=Value(bound)),
                    When(**{f"{name}__lt": -bound}, then=Value(-bound)),
                    default=F(name), output_field=FloatField())

    fields = sorted({m.field for m in measures if m.field})
    source = source.annotate(**{f"bounded_{f}": clamp(f) for f in fields})
    return source, [replace(m, field=f"bounded_{m.field}") if m.field else m for m in measures]


# --- gaps between consecutive records of a series ---------------------------------------------
class SecondsBetween(Func):
    """SQL for (later − earlier) in seconds, NULL when either is NULL (PostgreSQL: the exact epoch of
    the interval; SQLite: a registered Python function over Django's stored text)."""

    output_field = models.FloatField()

    def as_postgresql(self, compiler, connection, **extra):
        (later, later_params), (earlier, earlier_params) = (compiler.compile(e) for e in self.source_expressions)
        return f"CAST(EXTRACT(EPOCH FROM ({later}) - ({earlier})) AS double precision)", [*later_params,
                                                                                           *earlier_params]

    def as_sqlite(self, compiler, connection, **extra):
        (later, later_params), (earlier, earlier_params) = (compiler.compile(e) for e in self.source_expressions)
        return f"cskpi_seconds_between({later}, {earlier})", [*later_params, *earlier_params]


def sqlite_seconds_between(later: str | None, earlier: str | None) -> float | None:
    if later is None or earlier is None:
        return None
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


def predecessor_gap(*, model: type[models.Model], anchor: str, series: tuple[str, ...]) -> Expression:
    """Seconds from the previous record of the same series to each record of `model` (NULL for the
    first of its series).

    A series is the records of one department with equal `RecordSpec.series` values (a system
    check's runs), in anchor order. The previous record is found per record by one probe of the
    (department, series..., anchor) index. Records at the same instant are ordered by id, so the
    later-stored one has the gap 0: the gaps of a period are the differences of its sorted anchors,
    whatever order they arrived in. The value is read from the records as they are now, so a bucket
    is exact once the quarters whose predecessors changed are recomputed: ingestion marks them
    (the quarter of the record after each written record's old and new place)."""
    previous = (
        model.objects.filter(department_id=OuterRef("department_id"), **{column: OuterRef(column) for column in series})
        .filter(**{f"{anchor}__lte": OuterRef(anchor)})
        .filter(Q(**{f"{anchor}__lt": OuterRef(anchor)}) | Q(pk__lt=OuterRef("pk")))
        .order_by(f"-{anchor}")
        .values(anchor)[:1]
    )
    return SecondsBetween(F(anchor), Subquery(previous))


class _Series:
    """The series a gap kind reads: the record model, its anchor and its series columns (as the record
    type declares them: `RecordSpec.model`, `.anchor`, `.series`)."""

    raw_readable = False

    def __init__(self, *, model: type[models.Model], anchor: str, series: tuple[str, ...]):
        if not series:
            raise ValueError(f"{model.__name__} declares no series: a gap to the predecessor has no meaning")
        self.model, self.anchor, self.series = model, anchor, series

    def gap(self) -> Expression:
        return predecessor_gap(model=self.model, anchor=self.anchor, series=self.series)


class GapSum(_Series, Sum):
    """The sum of the gaps (seconds) from each record to its predecessor in its series."""

    name = "gap_sum"

    def build(self, measure):
        return SumAgg(self.gap(), filter=measure.where, default=0.0)


class GapCount(_Series, Count):
    """How many records have a predecessor in their series (the gaps `GapSum` adds up)."""

    name = "gap_count"

    def build(self, measure):
        return CountAgg(self.gap(), filter=measure.where)


# --- quantile sketches -------------------------------------------------------------------------
# A duration's bin: [0, 100) s in 2-second bins (its midpoint is within 1 s of every value in it);
# from 100 s on, logarithmic bins of ratio GAMMA, whose representative is within SKETCH_ALPHA of every
# value in it (relative). So the nearest-rank quantile read off the merged bins is within
# max(1 %, 1 s) of the exact one over the same records, and merging is adding counts per bin.
SKETCH_ALPHA = 0.0099
GAMMA = (1 + SKETCH_ALPHA) / (1 - SKETCH_ALPHA)
LINEAR_LIMIT = 100.0
LINEAR_WIDTH = 2.0
LINEAR_BINS = int(LINEAR_LIMIT / LINEAR_WIDTH)
MAX_BIN = 1023  # 10 years of seconds fit below it (bin ~ 806)
_LOG_GAMMA = math.log(GAMMA)
# The stored form (a sketch's state, in PostgreSQL, SQLite and Python alike): bytes in one of two layouts
# (`sketch_pack`); b"" or NULL is the empty state.
# - compact, where every count is at most COMPACT_COUNT_MAX: the byte COMPACT_TAG, then one big-endian
#   16-bit word (bin << 6 | count - 1) per non-empty bin, in bin order. Most bins of a day × agent or
#   day × channel sketch count a few values: 2 bytes a bin where the wide layout takes 4 (71 → 36 MB of
#   sketches at 1M interactions). A bin needs 10 bits (MAX_BIN), a count 6.
# - wide, where a count is larger: one pair of unsigned 16-bit big-endian integers (bin, count) per non-empty
#   bin, in bin order; a count above PAIR_MAX is split over several pairs of the same bin (so every count,
#   however large, is exact; a bin repeats only there). Its first byte is a bin's high byte (at most 3),
#   never COMPACT_TAG.
PAIR_MAX = 32767  # PostgreSQL writes the pairs with int2send: a signed 16-bit integer
COMPACT_TAG = 0xFE
COMPACT_COUNT_MAX = 64
_COMPACT_COUNTS = bytes((low & 63) + 1 for low in range(256))  # a word's low byte -> its count
_SWAP = sys.byteorder == "little"


def sketch_bin(value: float) -> int:
    if value < LINEAR_LIMIT:
        return max(int(math.floor(value / LINEAR_WIDTH)), 0)
    if not math.isfinite(value):
        return MAX_BIN
    return LINEAR_BINS + min(int(math.ceil(math.log(value / LINEAR_LIMIT) / _LOG_GAMMA)), MAX_BIN - LINEAR_BINS)


def sketch_representative(index: int) -> float:
    if index < LINEAR_BINS:
        return (index + 0.5) * LINEAR_WIDTH
    return LINEAR_LIMIT * 2 * GAMMA ** (index - LINEAR_BINS) / (GAMMA + 1)


def _uint16s(state) -> array:
    """Bytes' big-endian 16-bit integers in machine order: a wide state's bins and counts (bins at even places,
    counts at odd ones), or a compact state's words after its tag."""
    pairs = array("H")
    pairs.frombytes(state)
    if _SWAP:
        pairs.byteswap()
    return pairs


def sketch_bins_counts(state) -> tuple:
    """(bins, counts) of a non-empty stored state, pair by pair, in bin order (a bin repeats where its count is
    split)."""
    if state[0] == COMPACT_TAG:
        words = _uint16s(state[1:])
        return [w >> 6 for w in words], state[2::2].translate(_COMPACT_COUNTS)
    pairs = _uint16s(state)
    return pairs[::2], pairs[1::2]


def sketch_pack(counts) -> bytes:
    """The stored form of counts per bin (a mapping bin -> count, or a list indexed by bin), in the layout
    the SQL of `_PACKED` chooses."""
    items = [(b, c) for b, c in (sorted(counts.items()) if isinstance(counts, dict) else enumerate(counts)) if c]
    if not items:
        return b""
    pairs = array("H")
    if all(c <= COMPACT_COUNT_MAX for _, c in items):
        pairs.extend(b << 6 | (c - 1) for b, c in items)
        if _SWAP:
            pairs.byteswap()
        return bytes((COMPACT_TAG,)) + pairs.tobytes()
    for b, c in items:
        while c > PAIR_MAX:
            pairs.append(b)
            pairs.append(PAIR_MAX)
            c -= PAIR_MAX
        pairs.append(b)
        pairs.append(c)
    if _SWAP:
        pairs.byteswap()
    return pairs.tobytes()


def sketch_counts(state, into: dict[int, int] | None = None) -> dict[int, int]:
    """Counts per bin of a stored state (added to `into`)."""
    counts = {} if into is None else into
    if not state:
        return counts
    get = counts.get
    for b, c in zip(*sketch_bins_counts(state), strict=True):
        counts[b] = get(b, 0) + c
    return counts


def sketch_quantile(state, q: float) -> tuple[float | None, int]:
    """(nearest-rank q-quantile, n) of a stored state: the representative of the bin holding the
    ⌈q·n⌉-th smallest value. The counts' running sums and the search for the rank run in C (a year of
    day percentiles reads 365 states)."""
    if not state:
        return None, 0
    compact = state[0] == COMPACT_TAG
    pairs = None if compact else _uint16s(state)
    running = list(accumulate(state[2::2].translate(_COMPACT_COUNTS) if compact else pairs[1::2]))
    n = running[-1]
    if n == 0:
        return None, 0
    rank = max(math.ceil(q * n - 1e-9), 1)
    # The first pair where the count of values up to it reaches `rank` (pairs are in bin order).
    at = bisect_left(running, rank)
    index = (state[2 * at + 1] << 2 | state[2 * at + 2] >> 6) if compact else pairs[2 * at]
    return sketch_representative(index), n


class SketchField(models.Field):
    """The sketch column of migrations before 0019: bigint[] of (bin << 32 | count) on PostgreSQL, a
    JSON list on SQLite. Kept for those migrations; the columns are `models.BinaryField` now."""

    description = "quantile sketch (before migration 0019)"

    def db_type(self, connection):
        return "bigint[]" if connection.vendor == "postgresql" else "text"

    def get_prep_value(self, value):
        return value

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None or connection.vendor == "postgresql":
            return value
        return json.dumps(list(value))


def _sketch_state(value) -> bytes | None:
    """A state as the database returns it (psycopg: bytes; a memoryview elsewhere): bytes."""
    return value if value is None or type(value) is bytes else bytes(value)


class _SketchBin(Func):
    """SQL for `sketch_bin` (PostgreSQL inline arithmetic; SQLite calls the Python function)."""

    output_field = models.IntegerField()

    def as_postgresql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        x = f"CAST({sql} AS double precision)"
        return (
            f"(CASE WHEN {x} < {LINEAR_LIMIT} THEN GREATEST(floor({x} / {LINEAR_WIDTH}), 0) "
            f"ELSE {LINEAR_BINS} + LEAST(ceil(ln({x} / {LINEAR_LIMIT}) / {_LOG_GAMMA!r}), {MAX_BIN - LINEAR_BINS}) "
            f"END)::int",
            [*params, *params, *params],
        )

    def as_sqlite(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"cskpi_sketch_bin({sql})", params


class _SketchBuild(models.Aggregate):
    """Bucket state from raw values: their bins counted (PostgreSQL: cskpi_sketch_of_bins over the
    gathered bins, migration 0023; SQLite: a Python aggregate)."""

    function = "cskpi_sketch_build"  # SQLite: a Python aggregate
    output_field = models.BinaryField()

    def __init__(self, expression, **extra):
        super().__init__(_SketchBin(expression), **extra)

    def as_postgresql(self, compiler, connection, **extra):
        native = self.copy()
        native.function = "array_agg"
        sql, params = super(_SketchBuild, native).as_sql(compiler, connection, **extra)
        return f"cskpi_sketch_of_bins({sql})", params


class _SketchMerge(models.Aggregate):
    """Merged state of many sketches: counts added per bin (PostgreSQL: the function cskpi_sketch_merge of
    migration 0023 over the gathered states; SQLite: a Python aggregate of the same name)."""

    function = "cskpi_sketch_merge"
    output_field = models.BinaryField()

    def as_postgresql(self, compiler, connection, **extra):
        native = self.copy()
        native.function = "array_agg"
        sql, params = super(_SketchMerge, native).as_sql(compiler, connection, **extra)
        return f"cskpi_sketch_merge({sql})", params


class Quantile(MeasureKind):
    """A mergeable quantile state (sparse histogram) of a duration field."""

    name = "quantile"
    store = "sketch"
    # The stored bytes are the state; NULL (a bucket with records but none with the duration) is read as
    # None, which `merge` and `sketch_quantile` take for the empty state.
    read_is_state = True
    # Sketches are the widest states (~130 bins × 4 durations in a busy day): kept in the local-day and
    # local-month cubes, not in the hour cubes. Percentiles by hour, in another zone or by agent × channel
    # by day are aggregated from the raw records (the exact layer) by the database, in the same bins.
    # Month × agent × channel, built from a month of raw records as the counts' is, costs ~65 ms of a
    # recompute of a department with 250,000 interactions a year and 43 MB at 5M (16 MB at 1M); without
    # it p90 by agent × channel by month, beside the counts of the same dashboard (12 ms), scanned a
    # year of raw records (876 ms at 5M). Migration 0021 marks the months to build.
    cubes = frozenset({c.key for c in CUBES if c.local} | {EXACT_CUBE.key})

    def columns(self, measure):
        return {measure.key: models.BinaryField(null=True, blank=True)}

    def build(self, measure):
        return _SketchBuild(F(measure.field), filter=measure.where)

    def rollup(self, measure):
        return _SketchMerge(F(measure.key))

    def load(self, value):
        return b"" if value is None else _sketch_state(value)

    def merge(self, states):
        counts = [0] * (MAX_BIN + 1)  # a list indexed by bin: the hot loop of a year's total
        for state in states:
            if not state:  # None: a cube row read as it is stored, whose bucket had no duration
                continue
            for b, c in zip(*sketch_bins_counts(state), strict=True):
                counts[b] += c
        return sketch_pack(counts)

    def empty(self):
        return b""


class TimeInState(_Additive):
    """Seconds spent in some states (e.g. busy) per bucket, by a record type that holds state.

    A bucket's state is not an aggregate over rows: it is the time the state intervals
    (`ingestion.presence`) spend in it, cut exactly at its edges. The intervals are derived from the raw
    events (`state_intervals_read`) and this kind is handed the seconds per state of each bucket
    (`from_seconds`). Every coarser bucket and every period is a sum, as for `Sum`: periods in any zone
    are unions of UTC quarter-hours, so cutting at quarter-hours is exact.

    The raw events are its exact layer, as a `Count`'s raw records are theirs (`raw_readable`): the
    finest cubes are cut from them in the recompute, and a query no cube fits cuts them in Python
    (metrics.reader). Stored, the quarter-hour × agent layer held 1.57 rows per event (859k rows and
    118 MB for 547k events, before migration 0022).
    """

    name = "time_in_state"
    intervals = True  # built from state intervals, not from an aggregate over the records
    zero = "0.0"

    def __init__(self, *states: str):
        self.states = frozenset(states)

    def field(self):
        return models.FloatField(null=True, blank=True)  # NULL: zero (see _Additive)

    def build(self, measure):
        raise TypeError(f"{measure.key} is built from state intervals (TimeInState.from_seconds), not from rows")

    def from_seconds(self, measure, seconds: dict[str, float]) -> float:
        """The bucket's state from the seconds each state spent in it."""
        return sum(v for state, v in seconds.items() if state in self.states)

    def load(self, value):
        return 0.0 if value is None else float(value)

    def empty(self):
        return 0.0


def state_intervals_read(kind, events: models.QuerySet, *, spans: list[tuple[datetime, datetime]],
                         now: datetime) -> Iterator[tuple[str, str, datetime, datetime]]:
    """The state intervals (owner, state, start, end) of `events` (raw events of one department of `kind`,
    a record type that holds state) that can reach into `spans` (sorted, disjoint). Only events from a
    timeout before each span on are read, in (department, owner, time) order, which the (department,
    agent, at) index serves, and they hold every event's successor that matters: a successor past a span
    only ends the interval outside it. Open states count up to `now`."""
    timeout = presence_timeout()
    owner, anchor = kind.owner, kind.anchor
    windows = merge_intervals((start - timeout, end) for start, end in spans)
    rows = (events.filter(span_filter(anchor, windows))
            .order_by(owner, anchor, "source", "external_id")  # the tie-break is ordered by, not fetched
            .values_list(owner, kind.holds, anchor))
    return state_intervals(rows_stream(rows), now=now, timeout=timeout)


# --- exact distinct sets --------------------------------------------------------------------
# Customers are counted exactly: a bucket's state is the set of its customers' dense integer ids (a
# roaring bitmap: ~2 bytes per id in a dense range, far less in runs), merged by union. The ids come
# from `metrics.CustomerKey` (one per customer string, every department), assigned when the buckets
# holding a customer are first recomputed (`metrics.customers.customer_ids_get`).
#
# Stored in one of two layouts (`set_pack`, migration 0025): roaring's portable serialization, or, where
# it is shorter, a small set as a tag byte and each id as a little-endian uint32, ascending. Roaring pays
# 8 bytes of header and 8 a container (a 16-bit high part of the ids) before 2 bytes an id, so a set of a
# few ids spread over the id space — a fine bucket's customers: an hour of a department, a day of an
# agent — takes 18–50 bytes there and 5–21 here (the 1M benchmark's sets: 38 → 30 MB of bitmaps). A
# roaring serialization starts with its cookie (0x3A or 0x3B), never with the tag.
SET_SMALL_TAG = 0x01
SET_SMALL_MAX = 64  # ids: past this roaring is the shorter for any spread the ids can have at 2^32
_SET_SMALL_PREFIX = bytes((SET_SMALL_TAG,))
_SET_SWAP = sys.byteorder == "big"  # the ids are little-endian


def set_pack(state: BitMap) -> bytes | None:
    """The stored bytes of a set (None: the empty set): the shorter layout."""
    if not state:
        return None
    roaring = state.serialize()
    if len(state) <= SET_SMALL_MAX and 1 + 4 * len(state) < len(roaring):
        ids = array("I", state)
        if _SET_SWAP:
            ids.byteswap()
        return _SET_SMALL_PREFIX + ids.tobytes()
    return roaring


def set_unpack(stored) -> BitMap:
    """The set of stored bytes in either layout (None: the empty set)."""
    if stored is None:
        return BitMap()
    stored = bytes(stored)
    if stored[:1] != _SET_SMALL_PREFIX:
        return BitMap.deserialize(stored)
    ids = array("I")
    ids.frombytes(stored[1:])
    if _SET_SWAP:
        ids.byteswap()
    return BitMap(ids)


def _customer_id(field: str) -> Subquery:
    return Subquery(CustomerKey.objects.filter(customer=OuterRef(field)).values("id")[:1])


class _ValueListField(models.Field):
    """What `ElementList` returns: a list (PostgreSQL arrays come as lists; SQLite's JSON text is decoded)."""

    def from_db_value(self, value, expression, connection):
        return json.loads(value) if isinstance(value, str) else value


class ElementList(models.Aggregate):
    """The values of an expression over a group's rows, as a list (None for a null value: the caller
    skips them, so a costly expression is evaluated once per row): PostgreSQL's array_agg, SQLite's
    json_group_array."""

    function = "array_agg"
    output_field = _ValueListField()

    def as_sqlite(self, compiler, connection, **extra):
        native = self.copy()
        native.function = "json_group_array"
        return super(ElementList, native).as_sql(compiler, connection, **extra)


class DistinctSet(MeasureKind):
    """The exact set of distinct values of a string field (`measure.field`, e.g. customer) of the
    records that match, as a roaring bitmap of their dense ids; value = its cardinality."""

    name = "set"
    store = "set"
    sql_merge = False
    # A set row costs what a count row does plus the bitmap; the cubes kept serve the dashboards'
    # groupings (department, channel, agent, region) by day and by month, and the department in
    # whole-hour zones (UTC hours); anything else reads the raw records (the exact layer).
    cubes = frozenset({"month", "month_channel", "month_agent", "month_region_segment",
                       "day", "day_channel", "day_agent", "day_region_segment", "hour", EXACT_CUBE.key})

    def columns(self, measure):
        return {measure.key: models.BinaryField(null=True, blank=True)}

    def elements(self, measure) -> Q:
        """Which raw rows add their element."""
        has = Q(**{f"{measure.field}__isnull": False})
        return has if measure.where is None else has & measure.where

    def build(self, measure):
        return Case(When(self.elements(measure), then=_customer_id(measure.field)), default=Value(None),
                    output_field=models.IntegerField())

    def rollup(self, measure):  # pragma: no cover - merged in Python (sql_merge False)
        raise NotImplementedError("distinct sets are merged in Python")

    def load(self, value):
        return set_unpack(value)

    def dump(self, state):
        return set_pack(state)

    def merge(self, states):
        states = [s for s in states if s]
        if not states:
            return BitMap()
        return states[0] if len(states) == 1 else BitMap.union(*states)

    def empty(self):
        return BitMap()

    def of_elements(self, elements: Iterable[int | None]) -> BitMap:
        """The state of a bucket from its records' elements (`build`, one per record; repeats allowed, None
        adds nothing)."""
        return BitMap(e for e in elements if e is not None)

    def prepare(self, measure, *, department, source, spans, previous):
        customer_keys_assign(source=source.filter(self.elements(measure)), field=measure.field)
        return []


class FirstContactSet(DistinctSet):
    """The customers whose first record (by anchor time) with the department falls in the bucket:
    the set holds a customer in the bucket of that first record only. Read department-wide, so
    |customers of a group ∩ first contacts of the department| over a range is the group's customers
    new to the department in the range. The first contact per (department, customer) is kept in
    `metrics.CustomerFirstContact` and moved by the recompute of any bucket a customer enters or
    leaves (a backfill of older history moves it earlier; both quarters are recomputed)."""

    name = "first_contact_set"
    store = "first_contact"  # its own store: read department-wide, it keeps three cubes without a dimension
    department_wide = True
    prepare_previous = True
    cubes = frozenset({"month", "day", "hour", EXACT_CUBE.key})  # the exact layer: the raw records

    def build(self, measure):
        anchor = SPEC_BY_TYPE[measure.record_type].anchor
        first_at = Subquery(CustomerFirstContact.objects.filter(
            department_id=OuterRef("department_id"), customer__customer=OuterRef(measure.field),
        ).values("first_at")[:1])
        return Case(When(self.elements(measure) & Q(**{anchor: first_at}), then=_customer_id(measure.field)),
                    default=Value(None), output_field=models.IntegerField())

    def prepare(self, measure, *, department, source, spans, previous):
        super().prepare(measure, department=department, source=source, spans=spans, previous=previous)
        return customer_first_contacts_refresh(
            record_type=measure.record_type, department=department, field=measure.field,
            where=self.elements(measure), source=source, spans=spans, previous=previous,
        )



# --- stocks ------------------------------------------------------------------------------------
# A stock counts records that enter at one instant and leave at another (a customer from started_at
# to ended_at). Per bucket it keeps ins and outs; the level at a boundary t is every in before t less
# every out before t, so with half-open buckets a record leaving exactly at t is still in the level
# at t (it is active "just before t") and counts as an out of the bucket that t opens.
#
# Retention and churn also need how many of the outs of a span of periods entered inside that same
# span: a two-dimensional condition no sum of per-bucket numbers gives. So the stock's table holds,
# besides the level rows (`since` null: ins and outs of the bucket), pair rows keyed by the bucket of
# the out and, in `since`, the bucket (same cube, same grain) where the record came in. Read per
# period, the pair rows say in which period each out came in, which is exact for any span of the
# query's periods, since every period boundary is a bucket boundary of the cube that serves it.
BEFORE_RANGE = -1  # the period index of an in before the range


@dataclass(frozen=True, slots=True)
class StockState:
    """A stock over a span of periods: the level before its first period, the ins and outs inside it,
    and the outs by the period index where they came in (`BEFORE_RANGE` before the range)."""

    first: int
    opening: int | Decimal
    ins: int | Decimal
    outs: int | Decimal
    outs_by_entry: tuple[tuple[int, int | Decimal], ...] = ()

    @property
    def closing(self):
        """The level at the end of the span: opening + ins − outs."""
        return self.opening + self.ins - self.outs

    @property
    def outs_entered_within(self):
        """Outs of records that also came in within the span (counted in ins and outs, not in opening)."""
        return sum((v for k, v in self.outs_by_entry if k >= self.first), self.ins * 0)

    @property
    def outs_of_opening(self):
        """Outs of the records in the opening level (those there at the span's start who left in it)."""
        return self.outs - self.outs_entered_within


_NO_PERIOD = 2**62  # the `first` of an empty state: any real period comes before it


class Stock(MeasureKind):
    """Records entering at a start time and leaving at an end time, counted (`field` None) or weighted
    by a decimal field (MRR); a level at t is everything before t (`opening`)."""

    name = "stock"
    store = "stock"
    raw_readable = False

    def columns(self, measure):
        field = (lambda: models.BigIntegerField(default=0)) if measure.field is None else (
            lambda: models.DecimalField(max_digits=38, decimal_places=6, default=0))
        return {f"{measure.key}_in": field(), f"{measure.key}_out": field()}

    def build(self, measure):
        """The weight of the raw records of one bucket (the engine groups them by the bucket of their
        start for ins and of their end for outs)."""
        if measure.field is None:
            return CountAgg("pk", filter=measure.where) if measure.where is not None else CountAgg("pk")
        return SumAgg(measure.field, filter=measure.where, default=Decimal(0),
                      output_field=models.DecimalField(max_digits=38, decimal_places=6))

    def rollup(self, measure):
        raise NotImplementedError("a stock's state is two columns: see rollups()")

    def rollups(self, measure) -> dict[str, Expression]:
        """The aggregates merging finer cube rows into a coarser one, per column (ins, outs)."""
        return {f"{measure.key}_{side}": SumAgg(f"{measure.key}_{side}") for side in ("in", "out")}

    def number(self, measure, value):
        """A summed weight as the database returns it, exact (SQLite gives floats: back to 6 decimals)."""
        if value is None:
            return 0 if measure.field is None else Decimal(0)
        if measure.field is None:
            return int(value)
        if not isinstance(value, Decimal):
            return Decimal(repr(float(value))).quantize(STOCK_PLACES)
        # PostgreSQL's numeric sums keep 6 places. SQLite's converter makes a Decimal of a float sum's 15
        # digits, unrounded: a level of 10.5 + 0.000001 in and out came back as -1.8E-15, not 0 (a rate
        # of -0.0 where the definition has none). Back to 6 places (at most 15 digits: within precision).
        return value.quantize(STOCK_PLACES) if value.as_tuple().exponent < -6 else value

    def load(self, value):
        return value if isinstance(value, StockState) else self.empty()

    def merge(self, states):
        states = [s for s in states if s.first != _NO_PERIOD]
        if not states:
            return self.empty()
        first = min(s.first for s in states)
        by_entry: dict[int, object] = {}
        for state in states:
            for k, v in state.outs_by_entry:
                by_entry[k] = by_entry.get(k, 0) + v
        return StockState(
            first=first,
            opening=sum((s.opening for s in states if s.first == first), states[0].opening * 0),
            ins=sum((s.ins for s in states), states[0].ins * 0),
            outs=sum((s.outs for s in states), states[0].outs * 0),
            outs_by_entry=tuple(sorted(by_entry.items())),
        )

    def empty(self):
        return StockState(_NO_PERIOD, 0, 0, 0)

    def opening(self) -> bool:
        return True

    def carry(self, *, opening, periods: int, ins: dict[int, object], outs: dict[int, object],
              outs_by_entry: dict[int, dict[int, object]]) -> dict[int, StockState]:
        """The state of each period 0..periods-1 from the level before the range and the ins, outs and
        outs by entry period read per period: the opening of a period is the prefix sum before it."""
        level, out = opening, {}
        zero = opening * 0
        for i in range(periods):
            state = StockState(i, level, ins.get(i, zero), outs.get(i, zero),
                               tuple(sorted(outs_by_entry.get(i, {}).items())))
            out[i] = state
            level = state.closing
        return out


STOCK_PLACES = Decimal("0.000001")

COUNT = Count()
SUM = Sum()
QUANTILE = Quantile()
DISTINCT_SET = DistinctSet()
FIRST_CONTACT_SET = FirstContactSet()
STOCK = Stock()


# --- SQLite twins of the PostgreSQL sketch SQL -----------------------------------------------
def sqlite_sketch_bin(value):
    return None if value is None else sketch_bin(float(value))


class SqliteSketchBuild:
    def __init__(self):
        self.counts: dict[int, int] = {}

    def step(self, bin_index):
        if bin_index is not None:
            self.counts[bin_index] = self.counts.get(bin_index, 0) + 1

    def finalize(self):
        return sketch_pack(self.counts) if self.counts else None


class SqliteSketchMerge:
    def __init__(self):
        self.counts: dict[int, int] = {}
        self.seen = False

    def step(self, stored):
        if stored is not None:
            self.seen = True
            sketch_counts(stored, self.counts)

    def finalize(self):
        return sketch_pack(self.counts) if self.seen else None


# The PostgreSQL sketch functions (migration 0023), on the stored form (either layout). `_PACKED` packs the
# (bin, total) rows of a subquery in the layout `sketch_pack` chooses, inline in each function (a nested
# SQL function is a call per state). A merge gathers the group's states (array_agg) and decodes them all in
# one set-based pass (`cskpi_sketch_fold`), once per group: O(total pairs), as fast as 0019's aggregate that
# concatenated them row by row in PL/pgSQL. A group of one state (a day read from the day cube) is returned
# as stored.
_PACKED = f"""
  SELECT CASE WHEN max(total) <= {COMPACT_COUNT_MAX}
    THEN '\\x{COMPACT_TAG:02x}'::bytea
         || string_agg(substring(int4send(b * 64 + least(total, {COMPACT_COUNT_MAX})::int - 1) FROM 3), '' ORDER BY b)
    ELSE string_agg(CASE WHEN total <= {PAIR_MAX} THEN int2send(b::int2) || int2send(total::int2)
      ELSE decode(repeat(lpad(to_hex(b), 4, '0') || '{PAIR_MAX:04x}', ((total - 1) / {PAIR_MAX})::int), 'hex')
           || int2send(b::int2) || int2send((total - (total - 1) / {PAIR_MAX} * {PAIR_MAX})::int2) END, '' ORDER BY b)
    END
  FROM (%s) grouped WHERE total > 0
  HAVING count(*) > 0
"""
PG_SKETCH_SQL = (
    # Raw values' bins (int[], from array_agg) -> the stored form (NULL: no bin).
    "CREATE OR REPLACE FUNCTION cskpi_sketch_of_bins(bins int[]) RETURNS bytea "
    "LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$"
    + _PACKED % "SELECT b, count(*) AS total FROM unnest(bins) AS b WHERE b IS NOT NULL GROUP BY b"
    + "$$",
    # Stored states of either layout (no NULL) -> their counts added per bin, in the stored form.
    "CREATE OR REPLACE FUNCTION cskpi_sketch_fold(states bytea[]) RETURNS bytea "
    "LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$"
    + _PACKED % (
        # A wide state's pairs start at 0, 4, 8, ...; a compact state's words at 1, 3, 5, ...
        "SELECT CASE WHEN compact THEN get_byte(s, i) * 4 + get_byte(s, i + 1) / 64"
        " ELSE get_byte(s, i) * 256 + get_byte(s, i + 1) END AS b,"
        " sum(CASE WHEN compact THEN get_byte(s, i + 1) % 64 + 1"
        " ELSE get_byte(s, i + 2) * 256 + get_byte(s, i + 3) END) AS total"
        f" FROM (SELECT s, substring(s FROM 1 FOR 1) = '\\x{COMPACT_TAG:02x}'::bytea AS compact FROM unnest(states) AS s) u"
        " CROSS JOIN LATERAL generate_series(CASE WHEN compact THEN 1 ELSE 0 END, length(s) - 2,"
        " CASE WHEN compact THEN 2 ELSE 4 END) AS i"
        " GROUP BY 1")
    + "$$",
    # A group's states (array_agg: NULLs in it) -> their merge; one state as it is stored. A bare expression,
    # so PostgreSQL inlines it into the calling query (a day × agent read by month: 95 → 46 ms for 300
    # groups, as 0019's aggregate took): only a group of several states calls a function.
    "CREATE OR REPLACE FUNCTION cskpi_sketch_merge(states bytea[]) RETURNS bytea "
    "LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$"
    "  SELECT CASE WHEN cardinality(array_remove(array_remove(states, NULL), '\\x'::bytea)) <= 1"
    "    THEN (array_remove(array_remove(states, NULL), '\\x'::bytea))[1]"
    "    ELSE cskpi_sketch_fold(array_remove(array_remove(states, NULL), '\\x'::bytea)) END"
    "$$",
)
PG_SKETCH_DROP_SQL = (
    "DROP FUNCTION IF EXISTS cskpi_sketch_merge(bytea[])",
    "DROP FUNCTION IF EXISTS cskpi_sketch_fold(bytea[])",
    "DROP FUNCTION IF EXISTS cskpi_sketch_of_bins(int[])",
)
