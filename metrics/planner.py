"""The query planner: what a KPI query asks for, and which cube serves each part of it."""

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from cskpi.models import Department
from ingestion.fields import SPEC_BY_TYPE as RECORD_KINDS
from metrics.catalog import Kpi
from metrics.cubes import AGENT, CHANNEL, CUBES, CUSTOMER_REGION, DIMENSIONS, SEGMENT, TOPIC, Cube
from metrics.periods import Granularity, boundaries_get

DEPARTMENT = "department"
WEEKDAY = "weekday"  # ISO weekday of the record's time in the query zone, 1 = Monday … 7
HOUR_OF_DAY = "hour_of_day"  # 0-23 in the query zone
# Time dimensions: the local grain every bucket read must fit inside.
TIME_DIMENSIONS = {WEEKDAY: Granularity.DAY, HOUR_OF_DAY: Granularity.HOUR}
GROUP_DIMENSIONS = (AGENT, CHANNEL, TOPIC, DEPARTMENT, WEEKDAY, HOUR_OF_DAY, CUSTOMER_REGION, SEGMENT)

# The dimensions each record type declares (a cube row of a type without one holds '' there).
RECORD_DIMENSIONS: dict[str, frozenset[str]] = {
    record_type: frozenset(d for d in DIMENSIONS if d in kind.dimensions)
    for record_type, kind in RECORD_KINDS.items()
}


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

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    @property
    def record_types(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t for k in self.kpis for t in k.record_types))


def kpi_dimensions_missing(*, kpi: Kpi, dimensions: set[str]) -> dict[str, list[str]]:
    """{dimension: [record types lacking it]} for a KPI combining record types: grouping or filtering
    such a KPI by a dimension one of its sides lacks has no meaning (a one-type KPI keeps the usual
    rule: records without the dimension form the group null)."""
    if len(kpi.record_types) < 2:
        return {}
    missing: dict[str, list[str]] = {}
    for dimension in sorted(dimensions & set(DIMENSIONS)):
        lacking = [t for t in kpi.record_types if dimension not in RECORD_DIMENSIONS[t]]
        if lacking:
            missing[dimension] = lacking
    return missing


def cube_choose(*, needed: set[str], boundaries: list[datetime], department_zone: str, query_zone: str,
                granularity: str, nesting: dict[str, list[datetime]] | None = None) -> Cube:
    """The cheapest cube holding the `needed` dimensions whose buckets fit every boundary, and lie
    inside one local day/hour of the query zone for each grain in `nesting` (grain -> its boundaries).

    Local-day cubes fit when every boundary is a local midnight of the department: certainly between
    the ends of day/week/month periods in the department's own zone (so only the ends, which may clip
    a period, are checked); otherwise each boundary is checked.
    """
    dept_tz = ZoneInfo(department_zone)
    for cube in CUBES:
        if not needed <= cube.dims:
            continue
        if nesting and not all(cube.nests_in(grain, query_zone=query_zone, department_zone=department_zone,
                                             boundaries=grain_boundaries)
                               for grain, grain_boundaries in nesting.items()):
            continue
        if cube.local_day and query_zone == department_zone and granularity in Granularity.DAILY:
            if cube.aligned(boundaries[0], dept_tz) and cube.aligned(boundaries[-1], dept_tz):
                return cube
            continue
        if all(cube.aligned(b, dept_tz) for b in boundaries):
            return cube
    raise ValueError("no cube fits the query")  # unreachable: the quarter cube fits every quarter-aligned range


def dimensions_needed(query: KpiQuery, scope: DepartmentScope) -> set[str]:
    needed = {d for d in query.group_by if d in DIMENSIONS}
    if query.agents or scope.agent:
        needed.add(AGENT)
    if query.channels:
        needed.add(CHANNEL)
    if query.topics:
        needed.add(TOPIC)
    return needed


def scope_cube_choose(*, query: KpiQuery, scope: DepartmentScope, boundaries: list[datetime],
                      granularity: str) -> Cube:
    start, end = boundaries[0], boundaries[-1]
    nesting = {grain: boundaries_get(start=start, end=end, zone=query.tz, granularity=grain)
               for dimension, grain in TIME_DIMENSIONS.items() if dimension in query.group_by}
    return cube_choose(needed=dimensions_needed(query, scope), boundaries=boundaries,
                       department_zone=scope.department.timezone, query_zone=query.zone, granularity=granularity,
                       nesting=nesting)


def query_plan(*, query: KpiQuery) -> dict[tuple[str, str], str]:
    """{(record type, department slug): cube key} — which cube serves which part of the query."""
    boundaries = boundaries_get(start=query.start, end=query.end, zone=query.tz, granularity=query.granularity)
    return {
        (record_type, scope.department.slug): scope_cube_choose(
            query=query, scope=scope, boundaries=boundaries, granularity=query.granularity).key
        for record_type in query.record_types
        for scope in query.scopes
    }
