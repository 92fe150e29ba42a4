"""The aggregate cubes: which grain and which dimensions each stores, and bucket arithmetic.

Every cube row holds the state of every measure of one record type for one bucket × department ×
dimension values. `bucket_start` is the UTC instant where the bucket starts. Cubes are listed
cheapest first; the planner reads the first one that has the dimensions a query needs and whose
buckets fit every period boundary of the query.
"""

import json
import re
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache, reduce
from math import gcd
from operator import or_
from zoneinfo import ZoneInfo

from django.db.models import DateTimeField, Func, IntegerField, Q

from ingestion.choices import QUARTER_SECONDS  # the exact layer keeps the change log's grain

AGENT = "agent"
CHANNEL = "channel"
TOPIC = "topic"
CHECK = "check"
CUSTOMER_REGION = "customer_region"
SEGMENT = "segment"
# Record columns a cube may keep (a record type that does not declare one as a dimension: '').
DIMENSIONS = (AGENT, CHANNEL, TOPIC, CHECK, CUSTOMER_REGION, SEGMENT)
# The column holding each dimension, in the raw records and in the cubes. `check` is `check_name`: a
# model field named `check` would hide Django's `Model.check()`, which the system-check framework calls.
DIMENSION_COLUMNS = {AGENT: "agent", CHANNEL: "channel", TOPIC: "topic", CHECK: "check_name",
                     CUSTOMER_REGION: "customer_region", SEGMENT: "segment"}


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant where local `day` starts in `zone` (a midnight in a DST gap: the gap's end)."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def is_local_midnight(moment: datetime, zone: ZoneInfo) -> bool:
    return moment == local_midnight(moment.astimezone(zone).date(), zone)


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


@dataclass(frozen=True)
class Cube:
    key: str
    dims: frozenset[str]
    # A UTC-aligned grain of this many seconds; None: the department's local day (or local month).
    seconds: int | None
    description: str
    monthly: bool = False  # local months of the department (seconds None)
    # A UTC grain's buckets start this many seconds past a multiple of `seconds` (hours from :30, for
    # half-hour zones such as Asia/Kolkata, whose local hours and days start at :30 UTC).
    offset: int = 0
    # The cube whose rows this one is merged from (None: the exact layer — the raw records themselves
    # for a table that stores none; a table that does not keep the source merges from that one's
    # source, metrics.cubes.cube_source). A month cube sums ~30 rows of its day cube per group; the
    # day cube sums its day by channel (6 rows where the day has ~700 records).
    source: str | None = None
    # Kept only by a record type that holds state (agent status events): its exact layer, the raw events,
    # is cut into intervals in Python (a year of one department's 547k events: 2.4 s, where its hour ×
    # agent rows are read in 0.26 s), so by agent in UTC and half-hour zones is kept in SQL. A count table
    # would pay ~0.9 rows per record for it at 1M interactions a year (most agent-hours hold one or none).
    holds_only: bool = False

    @property
    def local_day(self) -> bool:
        return self.seconds is None and not self.monthly

    @property
    def local(self) -> bool:
        """Cut at the department's local midnights (day and month cubes): a new zone cuts them again."""
        return self.seconds is None

    def bucket_start(self, expression, zone: str) -> "BucketStart":
        """SQL for the start of this cube's bucket holding `expression` (a timestamp column)."""
        return BucketStart(expression, seconds=self.seconds, zone=zone, month=self.monthly, offset=self.offset)

    def on_grain(self, boundary: datetime) -> bool:
        """Whether `boundary` is a bucket start of this UTC grain."""
        return boundary.microsecond == 0 and (int(boundary.timestamp()) - self.offset) % self.seconds == 0

    def bucket_span(self, moment: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """[start, end) of the bucket holding `moment` for a department in `zone`."""
        if self.seconds is not None:
            ts = (int(moment.timestamp()) - self.offset) // self.seconds * self.seconds + self.offset
            start = datetime.fromtimestamp(ts, tz=UTC)
            return start, start + timedelta(seconds=self.seconds)
        day = moment.astimezone(zone).date()
        if self.monthly:
            first = day.replace(day=1)
            return local_midnight(first, zone), local_midnight(_next_month(first), zone)
        return local_midnight(day, zone), local_midnight(day + timedelta(days=1), zone)

    def on_grain_all(self, boundaries: tuple[datetime, ...]) -> bool:
        """Whether every boundary is a bucket start of this UTC grain: from one pass over the boundaries, cached
        (`_epochs_spread`), where checking each costs a pass per cube (a 10-year hour-of-day grouping checks 87k
        local hours)."""
        spread = _epochs_spread(boundaries)
        return spread is not None and (spread[0] - self.offset) % self.seconds == 0 and spread[1] % self.seconds == 0

    def nests_in(self, local_grain: str, *, query_zone: str, department_zone: str,
                 boundaries: tuple[datetime, ...]) -> bool:
        """Whether every bucket lies inside one local hour/day of the query zone (for grouping by hour
        of day or weekday): `boundaries` are that grain's boundaries over the range."""
        if self.monthly:
            return False
        if self.local_day:
            return local_grain == "day" and query_zone == department_zone
        return self.on_grain_all(boundaries)

    def aligned(self, boundary: datetime, zone: ZoneInfo) -> bool:
        """Whether `boundary` is a bucket start of this cube for a department in `zone`."""
        if self.seconds is not None:
            return self.on_grain(boundary)
        if self.monthly:
            return boundary == local_midnight(boundary.astimezone(zone).date().replace(day=1), zone)
        return is_local_midnight(boundary, zone)

    def spans(self, intervals: list[tuple[datetime, datetime]], zone: ZoneInfo) -> list[tuple[datetime, datetime]]:
        """The intervals widened to whole buckets of this cube, merged, in order."""
        widened = []
        for start, end in intervals:
            first, _ = self.bucket_span(start, zone)
            last_start, last_end = self.bucket_span(end - timedelta(microseconds=1), zone)
            widened.append((first, max(last_end, first)))
        return merge_intervals(widened)


# Boundaries and what is derived from them are cached per range (dashboards repeat theirs), but a long tuple
# of them — an hour-of-day grouping over years: 87,600 local hours, ~5 MB — only among a few: a cache of 512
# such ranges grew a process by 2.7 GB (540 MB for 100 of them, measured).
LONG_BOUNDARIES = 1_000
LONG_CACHED = 4


def _epochs_spread_compute(boundaries: tuple[datetime, ...]) -> tuple[int, int] | None:
    if any(b.microsecond for b in boundaries):
        return None
    first = int(boundaries[0].timestamp())
    return first, gcd(*(int(b.timestamp()) - first for b in boundaries))


_epochs_spread_short = lru_cache(maxsize=512)(_epochs_spread_compute)
_epochs_spread_long = lru_cache(maxsize=LONG_CACHED)(_epochs_spread_compute)


def _epochs_spread(boundaries: tuple[datetime, ...]) -> tuple[int, int] | None:
    """(the first boundary's epoch second, the gcd of every boundary's distance from it), None when one has
    microseconds: every boundary lies on a grain of `seconds` from `offset` exactly when the first does and the
    gcd is a multiple of `seconds`. Cached (`LONG_BOUNDARIES`)."""
    long = len(boundaries) > LONG_BOUNDARIES
    return (_epochs_spread_long if long else _epochs_spread_short)(boundaries)


def merge_intervals(intervals) -> list[tuple[datetime, datetime]]:
    merged: list[list[datetime]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def span_filter(field_name: str, spans) -> Q:
    """The rows whose `field_name` lies in one of `spans` ([start, end) pairs)."""
    return reduce(or_, (Q(**{f"{field_name}__gte": s, f"{field_name}__lt": e}) for s, e in spans))



# Cheapest first. The month cubes serve month/total queries whose ends are local month starts in
# the department's zone (a year by month, by agent × channel: 12 rows per group where a day cube
# would read 365); each is merged from its day cube, or built from the raw records when no day cube
# keeps its dimensions (agent × channel). The day cubes are cut at the department's local midnights:
# the default query (department zone, day/week/month/total) reads one row per day and group. The
# hour cubes serve hour granularity and the other zones, without a dimension: `hour` whole-hour zones
# (UTC, New York), `hour_30` the hours from half past of half-hour zones (Asia/Kolkata): 24 rows a day. The quarter-hour cube is the exact layer: every
# period boundary of every zone (45-minute offsets included) is a UTC quarter-hour, so it answers any
# query. A table whose kinds are all aggregates of each record on its own (`MeasureKind.raw_readable`:
# counts, sums, sketches, sets) does not store it: the raw records are its exact layer, read on demand
# for a query no smaller cube fits (agent × channel by day, channel by hour, any dimension in another
# zone), and its finest cubes are built from them. No cube is as large as the raw rows: a day × agent
# × channel or hour × channel cube held ~0.2 rows per record even at 5M interactions a year.
CUBES: tuple[Cube, ...] = (
    Cube("month", frozenset(), None, "local month × department", monthly=True, source="day"),
    Cube("month_channel", frozenset({CHANNEL}), None, "local month × department × channel", monthly=True,
         source="day_channel"),
    Cube("month_region_segment", frozenset({CUSTOMER_REGION, SEGMENT}), None,
         "local month × department × customer region × segment", monthly=True, source="day_region_segment"),
    Cube("month_agent", frozenset({AGENT}), None, "local month × department × agent", monthly=True,
         source="day_agent"),
    Cube("month_agent_channel", frozenset({AGENT, CHANNEL}), None, "local month × department × agent × channel",
         monthly=True),
    Cube("day", frozenset(), None, "local day × department", source="day_channel"),
    Cube("day_channel", frozenset({CHANNEL}), None, "local day × department × channel"),
    Cube("day_topic", frozenset({TOPIC}), None, "local day × department × topic"),
    Cube("day_check", frozenset({CHECK}), None, "local day × department × check"),
    Cube("day_region_segment", frozenset({CUSTOMER_REGION, SEGMENT}), None,
         "local day × department × customer region × segment"),
    Cube("day_agent", frozenset({AGENT}), None, "local day × department × agent"),
    Cube("hour", frozenset(), 3600, "UTC hour × department"),
    Cube("hour_30", frozenset(), 3600, "UTC hour from half past × department", offset=1800),
    Cube("hour_agent", frozenset({AGENT}), 3600, "UTC hour × department × agent (time in state)", holds_only=True),
    Cube("hour_30_agent", frozenset({AGENT}), 3600, "UTC hour from half past × department × agent (time in state)",
         offset=1800, holds_only=True),
    # Zones with a 45-minute offset (Asia/Kathmandu), whose hours no hour cube holds: ~35k rows a year per
    # department where the raw events of a year are ~547k to cut in Python.
    Cube("quarter_department", frozenset(), QUARTER_SECONDS, "UTC quarter-hour × department (time in state)",
         holds_only=True),
    # Keeps every dimension. Its key is short because every row and index entry holds it: it was
    # "quarter_agent_channel_topic" until migration 0020 (20 bytes more per row and per index entry,
    # 36 MB of the agent events' 164 MB at 1M interactions).
    Cube("quarter", frozenset(DIMENSIONS), QUARTER_SECONDS,
         "UTC quarter-hour × department × every dimension (agent, channel, topic, check, customer region, segment)"),
)
CUBES_BY_KEY = {c.key: c for c in CUBES}


def cube_depth(cube: Cube) -> int:
    """How many merges away from the exact layer a cube is built (0: the exact layer): building in
    this order builds every cube's source before it."""
    depth, key = 0, cube.key
    while key != EXACT_CUBE.key:
        depth += 1
        key = CUBES_BY_KEY[key].source or EXACT_CUBE.key
    return depth


def cube_source(cube: Cube, kept) -> Cube:
    """The cube `cube` is merged from in a table keeping the cube keys `kept`: its declared source, or
    that one's source when the table does not keep it, …, else the exact layer."""
    key = cube.source
    while key is not None and key not in kept:
        key = CUBES_BY_KEY[key].source
    return CUBES_BY_KEY[key] if key else EXACT_CUBE
# Built from the raw records where a table stores it (time in state, stocks, gaps: what is not an
# aggregate of each record on its own); every other cube of such a table is merged from it. Keeping
# every dimension costs it little: a quarter-hour × agent × channel rarely holds more than one record.
EXACT_CUBE = CUBES_BY_KEY["quarter"]
CUBE_CHOICES = [(c.key, c.description) for c in CUBES]

_ZONE_NAME = re.compile(r"^[A-Za-z0-9_+\-/]+$")


_SQLITE_MONTH = -1  # the grain argument of cskpi_bucket_start for a local month (0: a local day)


class BucketStart(Func):
    """SQL for the start of the bucket holding a timestamp: a UTC grain, or a local day (or month) in
    a zone.

    PostgreSQL computes it natively (date_bin; date_trunc in the zone and back). SQLite calls a
    Python function registered on every connection (metrics.apps).
    """

    output_field = DateTimeField()

    def __init__(self, expression, *, seconds: int | None, zone: str, month: bool = False, offset: int = 0):
        if not _ZONE_NAME.match(zone):
            raise ValueError(f"bad zone name {zone!r}")
        if month and seconds is not None:
            raise ValueError("a month is a local grain")
        self.seconds, self.zone, self.month, self.offset = seconds, zone, month, int(offset)
        super().__init__(expression)

    def as_postgresql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        if self.seconds is not None:
            origin = (datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=self.offset)).isoformat(sep=" ")
            return f"date_bin(INTERVAL '{int(self.seconds)} seconds', {sql}, TIMESTAMPTZ '{origin}')", params
        unit = "month" if self.month else "day"
        return f"(date_trunc('{unit}', ({sql}) AT TIME ZONE '{self.zone}') AT TIME ZONE '{self.zone}')", params

    def as_sqlite(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        grain = _SQLITE_MONTH if self.month else int(self.seconds or 0)
        return f"cskpi_bucket_start({sql}, {grain}, '{self.zone}', {self.offset})", params

    def as_sql(self, compiler, connection, **extra):  # pragma: no cover - other vendors unsupported
        raise NotImplementedError(f"BucketStart has no SQL for {connection.vendor}")


class LocalPart(Func):
    """SQL for the ISO weekday (1 = Monday) or the hour of day of a bucket start in a zone (a
    parameter, so the compiled SQL is reused across zones)."""

    output_field = IntegerField()
    _PG = {"weekday": "ISODOW", "hour_of_day": "HOUR"}

    def __init__(self, expression, *, part: str, zone: str):
        self.part, self.zone = part, zone
        super().__init__(expression)

    def as_postgresql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"CAST(EXTRACT({self._PG[self.part]} FROM ({sql}) AT TIME ZONE %s) AS integer)", [*params, self.zone]

    def as_sqlite(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"cskpi_local_part({sql}, %s, %s)", [*params, self.part, self.zone]

    def as_sql(self, compiler, connection, **extra):  # pragma: no cover - other vendors unsupported
        raise NotImplementedError(f"LocalPart has no SQL for {connection.vendor}")


def sqlite_local_part(stored: str | None, part: str, zone: str) -> int | None:
    if stored is None:
        return None
    local = datetime.fromisoformat(stored).replace(tzinfo=UTC).astimezone(ZoneInfo(zone))
    return local.isoweekday() if part == "weekday" else local.hour


class PeriodIndex(Func):
    """SQL for the 1-based index of the period holding a bucket start, given sorted boundaries.

    Lets the database sum buckets per period (fewer rows, no timestamps to parse in Python).
    PostgreSQL: width_bucket of the epoch second over an array of the boundaries' epochs; SQLite: a
    registered Python function.
    """

    output_field = IntegerField()

    def __init__(self, expression, *, boundaries: list[datetime], exact: bool = False):
        # `exact`: the expression is any instant (a raw record's time), not a whole second: floored.
        self.boundaries, self.exact = boundaries, exact
        super().__init__(expression)

    @staticmethod
    def param(connection, boundaries: tuple[datetime, ...]) -> str:
        """The boundaries as the one SQL parameter of the expression (metrics.selectors binds it
        itself when it reuses the compiled SQL)."""
        if connection.vendor == "postgresql":
            return _epochs_literal(boundaries)
        return json.dumps([connection.ops.adapt_datetimefield_value(b) for b in boundaries])

    def as_postgresql(self, compiler, connection, **extra):
        # Epoch seconds: an int array costs far less to send and parse than timestamptz literals
        # (every boundary is a whole second: periods start on quarter-hours). One text parameter
        # (binding 366 array items client-side costs more), so the SQL text does not depend on the
        # range and metrics.selectors can reuse it across queries of the same shape.
        # A bucket start (a whole second): date_part's float8 epoch is that integer exactly, and costs
        # half of EXTRACT's numeric (an hourly month: 744 rows, 0.28 -> 0.15 ms in PostgreSQL). A raw
        # record's instant stays numeric until floored.
        sql, params = compiler.compile(self.source_expressions[0])
        epoch = f"floor(EXTRACT(EPOCH FROM {sql}))" if self.exact else f"date_part('epoch', {sql})"
        return (f"width_bucket(CAST({epoch} AS bigint), CAST(%s AS bigint[]))",
                [*params, self.param(connection, tuple(self.boundaries))])

    def as_sqlite(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"cskpi_period_index({sql}, %s)", [*params, self.param(connection, tuple(self.boundaries))]

    def as_sql(self, compiler, connection, **extra):  # pragma: no cover - other vendors unsupported
        raise NotImplementedError(f"PeriodIndex has no SQL for {connection.vendor}")


@lru_cache(maxsize=512)  # dashboards repeat the same ranges; a year by day is 366 conversions
def _epochs_literal(boundaries: tuple[datetime, ...]) -> str:
    return "{" + ",".join(str(int(b.timestamp())) for b in boundaries) + "}"



@lru_cache(maxsize=64)
def _stored_boundaries(encoded: str) -> list[str]:
    return json.loads(encoded)


def sqlite_period_index(stored: str | None, encoded: str) -> int | None:
    """SQLite twin of width_bucket: Django's stored UTC text sorts like the instants it holds."""
    if stored is None:
        return None
    return bisect_right(_stored_boundaries(encoded), stored)


def sqlite_bucket_start(stored: str | None, seconds: int, zone: str, offset: int = 0) -> str | None:
    """SQLite twin of BucketStart: takes and returns Django's stored UTC text form. `seconds`: a UTC
    grain (its buckets starting `offset` seconds past its multiples); 0 a local day, -1 a local month
    of `zone`."""
    if stored is None:
        return None
    moment = datetime.fromisoformat(stored).replace(tzinfo=UTC)
    if seconds > 0:
        start = datetime.fromtimestamp((int(moment.timestamp()) - offset) // seconds * seconds + offset, tz=UTC)
    else:
        tz = ZoneInfo(zone)
        day = moment.astimezone(tz).date()
        start = local_midnight(day.replace(day=1) if seconds == _SQLITE_MONTH else day, tz)
    return start.replace(tzinfo=None).isoformat(sep=" ")
