"""The query planner: what a KPI query asks for, and which cube serves each part of it."""

from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo

from cskpi.models import Department
from ingestion.fields import SPEC_BY_TYPE as RECORD_KINDS
from metrics.catalog import Kpi
from metrics.cubes import (
    AGENT,
    CHANNEL,
    CHECK,
    CUBES,
    CUSTOMER_REGION,
    DIMENSION_COLUMNS,
    DIMENSIONS,
    EXACT_CUBE,
    SEGMENT,
    TOPIC,
    Cube,
)
from metrics.periods import Granularity, boundaries_get, boundaries_tuple

DEPARTMENT = "department"
WEEKDAY = "weekday"  # ISO weekday of the record's time in the query zone, 1 = Monday … 7
HOUR_OF_DAY = "hour_of_day"  # 0-23 in the query zone
# Time dimensions: the local grain every bucket read must fit inside.
TIME_DIMENSIONS = {WEEKDAY: Granularity.DAY, HOUR_OF_DAY: Granularity.HOUR}
GROUP_DIMENSIONS = (AGENT, CHANNEL, TOPIC, CHECK, CUSTOMER_REGION, SEGMENT, DEPARTMENT, WEEKDAY, HOUR_OF_DAY)

# The dimensions each record type declares (a cube row of a type without one holds '' there).
RECORD_DIMENSIONS: dict[str, frozenset[str]] = {
    record_type: frozenset(d for d in DIMENSIONS if DIMENSION_COLUMNS[d] in kind.dimensions)
    for record_type, kind in RECORD_KINDS.items()
}
# Dimensions that only some record types have and that a KPI of a type without them cannot be grouped
# or filtered by, even alone (400): interactions by check has no meaning. Agent, channel and topic
# keep their first rule for a one-type KPI (a type without them is one group, null), which clients
# of cashouts and surveys already read.
STRICT_DIMENSIONS = frozenset({CHECK})


@cache  # asked per table and department on every query; the answer only depends on the declarations
def cubes_kept(record_type: str) -> tuple[Cube, ...]:
    """The cubes kept for a record type: all but those for a strict dimension it lacks (no query can
    read them: 400), and those that would copy another cube of the same grain — a cube keeping a
    dimension the type does not declare holds '' there, the rows of the cube without it (surveys by
    topic are surveys; cashouts by agent, cashouts), and the hour × agent cubes but for a type that holds
    state (`Cube.holds_only`). The exact layer keeps every dimension, '' where a type has none."""
    declared = RECORD_DIMENSIONS[record_type]
    lacking = STRICT_DIMENSIONS - declared
    grains = {(c.seconds, c.monthly, c.dims) for c in CUBES}

    def copies(cube: Cube) -> bool:
        return cube.dims != cube.dims & declared and (cube.seconds, cube.monthly, cube.dims & declared) in grains

    holds = RECORD_KINDS[record_type].holds is not None
    return tuple(c for c in CUBES
                 if c is EXACT_CUBE or not (c.dims & lacking or copies(c) or (c.holds_only and not holds)))


@dataclass(frozen=True)
class DepartmentScope:
    department: Department
    agent: str | None = None  # only this agent's records (the caller's agent role)


@dataclass(frozen=True)
class KpiQuery:
    kpis: tuple[Kpi, ...]
    scopes: tuple[DepartmentScope, ...]
    start: datetime
    end: datetime
    zone: str
    granularity: str = Granularity.DAY
    group_by: tuple[str, ...] = ()
    agents: tuple[str, ...] = ()  # filter: only these agents
    channels: tuple[str, ...] = ()  # filter: only these channels
    compare: str | None = None
    topics: tuple[str, ...] = ()  # filter: only these topics
    checks: tuple[str, ...] = ()  # filter: only these system checks
    customer_regions: tuple[str, ...] = ()  # filter: only these customer regions

    def department_wide(self) -> "KpiQuery":
        """The same range and periods over the whole department: no grouping, no filter (what a
        department-wide measure is read with, whatever the query groups or filters by)."""
        return replace(self, group_by=(), agents=(), channels=(), topics=(), checks=(), customer_regions=())

    def dimension_filters(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """(dimension, values) of each list filter, in one fixed order: every read filters cube rows by
        these and binds their values in this order (the order of the SQL's parameters)."""
        return ((AGENT, self.agents), (CHANNEL, self.channels), (TOPIC, self.topics), (CHECK, self.checks),
                (CUSTOMER_REGION, self.customer_regions))

    def filter_values(self) -> list[str]:
        """The filters' values in the order every read binds them (`dimension_filters`' order)."""
        return [value for _, values in self.dimension_filters() for value in values]

    def filter_lengths(self) -> tuple[int, ...]:
        """How many values each filter has: part of a compiled query's shape (each value is a parameter)."""
        return tuple(len(values) for _, values in self.dimension_filters())

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    @property
    def record_types(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t for k in self.kpis for t in k.record_types))


def kpi_dimensions_missing(*, kpi: Kpi, dimensions: set[str]) -> dict[str, list[str]]:
    """{dimension: [record types lacking it]} for a KPI combining record types: grouping or filtering
    such a KPI by a dimension one of its sides lacks has no meaning (a one-type KPI keeps the usual
    rule: records without the dimension form the group null), and for any KPI whose record type lacks
    one of the STRICT_DIMENSIONS."""
    missing: dict[str, list[str]] = {}
    for dimension in sorted(dimensions & set(DIMENSIONS)):
        if len(kpi.record_types) < 2 and dimension not in STRICT_DIMENSIONS:
            continue
        lacking = [t for t in kpi.record_types if dimension not in RECORD_DIMENSIONS[t]]
        if lacking:
            missing[dimension] = lacking
    return missing


def kpi_dimension_message(kpi: Kpi, lacking: list[str], dimension: str) -> str:
    """Why `kpi` has no `dimension` (the start of a 400 message)."""
    if len(kpi.record_types) > 1:
        return f"{kpi.key} combines {', '.join(kpi.record_types)}; {', '.join(lacking)} records have no {dimension}"
    return f"{kpi.key} counts {kpi.record_type} records, which have no {dimension}"


def cube_choose(*, needed: set[str], boundaries: list[datetime], department_zone: str, query_zone: str,
                granularity: str, nesting: dict[str, tuple[datetime, ...]] | None = None,
                kept: frozenset[str] | None = None) -> Cube:
    """The cheapest cube holding the `needed` dimensions whose buckets fit every boundary, and lie
    inside one local day/hour of the query zone for each grain in `nesting` (grain -> its boundaries).

    `kept`: the cube keys the table read keeps (None: every cube).

    Local-day cubes fit when every boundary is a local midnight of the department: certainly between
    the ends of day/week/month periods in the department's own zone (so only the ends, which may clip
    a period, are checked); local-month cubes likewise between the ends of month periods; otherwise
    each boundary is checked.
    """
    dept_tz = ZoneInfo(department_zone)
    bounds = tuple(boundaries)
    for cube in CUBES:
        if not needed <= cube.dims or (kept is not None and cube.key not in kept):
            continue
        if nesting and not all(cube.nests_in(grain, query_zone=query_zone, department_zone=department_zone,
                                             boundaries=grain_boundaries)
                               for grain, grain_boundaries in nesting.items()):
            continue
        if cube.local and query_zone == department_zone and granularity in (
                (Granularity.MONTH,) if cube.monthly else Granularity.DAILY):
            if cube.aligned(boundaries[0], dept_tz) and cube.aligned(boundaries[-1], dept_tz):
                return cube
            continue
        if cube.seconds is not None:  # one gcd over the epochs (cached) instead of a check per boundary per cube
            if cube.on_grain_all(bounds):
                return cube
            continue
        if all(cube.aligned(b, dept_tz) for b in boundaries):
            return cube
    # Unreachable: the quarter cube fits any periods on the quarter-hours, and the query parser refuses others
    # (metrics.periods.OffGrid).
    raise ValueError("no cube fits the query")


def dimensions_needed(query: KpiQuery, scope: DepartmentScope, record_type: str) -> set[str]:
    """The dimensions a cube must keep to serve the query's records of `record_type`: those it groups or
    filters by, and the agent of an agent-role caller — of those the type declares (every cube holds
    '' in the others, so any cube answers a grouping by them, group null, and a filter on them, none)."""
    needed = {d for d in query.group_by if d in DIMENSIONS} | {d for d, values in query.dimension_filters() if values}
    if scope.agent:
        needed.add(AGENT)
    return needed & RECORD_DIMENSIONS[record_type]


def scope_cube_choose(*, query: KpiQuery, scope: DepartmentScope, record_type: str, boundaries: list[datetime],
                      granularity: str, kept: frozenset[str] | None = None) -> Cube:
    """The cube serving one department's part of the query for `record_type`, among the type's cubes
    (`cubes_kept`) and, when given, the table's (`kept`)."""
    start, end = boundaries[0], boundaries[-1]
    nesting = {grain: boundaries_tuple(start=start, end=end, zone=query.tz, granularity=grain)
               for dimension, grain in TIME_DIMENSIONS.items() if dimension in query.group_by}
    type_cubes = frozenset(c.key for c in cubes_kept(record_type))
    return cube_choose(needed=dimensions_needed(query, scope, record_type), boundaries=boundaries,
                       department_zone=scope.department.timezone, query_zone=query.zone, granularity=granularity,
                       nesting=nesting, kept=type_cubes if kept is None else type_cubes & kept)


def query_plan(*, query: KpiQuery) -> dict[tuple[str, str], str]:
    """{(record type, department slug): cube key} — which cube serves which part of the query."""
    boundaries = boundaries_get(start=query.start, end=query.end, zone=query.tz, granularity=query.granularity)
    return {
        (record_type, scope.department.slug): scope_cube_choose(
            query=query, scope=scope, record_type=record_type, boundaries=boundaries,
            granularity=query.granularity).key
        for record_type in query.record_types
        for scope in query.scopes
    }
