"""Reads of the KPI engine: KPI series from the cubes, the catalog, the recompute status."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from django.db import connections, router
from django.db.models import Count, F, Max, Min, Q, Sum
from django.utils import timezone

from cskpi.access import Access
from cskpi.models import Department
from metrics.catalog import KPIS, Kpi
from metrics.cubes import AGENT, CHANNEL, CUBES, Cube, PeriodIndex
from metrics.models import BUCKET_MODELS, DirtyBucket, RecomputeStamp
from metrics.periods import Granularity, boundaries_get, period_starts_iso, previous_range

DEPARTMENT = "department"
GROUP_DIMENSIONS = (AGENT, CHANNEL, DEPARTMENT)


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

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)


# --- planner --------------------------------------------------------------------------------


def cube_choose(*, needed: set[str], boundaries: list[datetime], department_zone: str, query_zone: str,
                granularity: str) -> Cube:
    """The cheapest cube holding the `needed` dimensions whose buckets fit every boundary.

    Local-day cubes fit when every boundary is a local midnight of the department: certainly for
    day/week/month periods in the department's own zone; otherwise each boundary is checked.
    """
    dept_tz = ZoneInfo(department_zone)
    for cube in CUBES:
        if not needed <= cube.dims:
            continue
        if cube.local_day and query_zone == department_zone and granularity in Granularity.DAILY:
            return cube
        if all(cube.aligned(b, dept_tz) for b in boundaries):
            return cube
    raise ValueError("no cube fits the query")  # unreachable: Q fits every quarter-aligned range


def _needed(query: KpiQuery, scope: DepartmentScope) -> set[str]:
    needed = {d for d in query.group_by if d in (AGENT, CHANNEL)}
    if query.agents or scope.agent:
        needed.add(AGENT)
    if query.channels:
        needed.add(CHANNEL)
    return needed


def query_plan(*, query: KpiQuery) -> dict[tuple[str, str], str]:
    """{(record type, department slug): cube key} — which cube serves which part of the query."""
    boundaries = boundaries_get(start=query.start, end=query.end, zone=query.tz, granularity=query.granularity)
    plan = {}
    for record_type in dict.fromkeys(k.record_type for k in query.kpis):
        for scope in query.scopes:
            plan[(record_type, scope.department.slug)] = cube_choose(
                needed=_needed(query, scope), boundaries=boundaries, department_zone=scope.department.timezone,
                query_zone=query.zone, granularity=query.granularity,
            ).key
    return plan


# --- reading --------------------------------------------------------------------------------

GroupKey = tuple
Totals = dict[str, float]


def _components_read(*, record_type: str, components: list[str], query: KpiQuery, scope: DepartmentScope,
                     start: datetime, end: datetime, granularity: str,
                     boundaries: list[datetime]) -> dict[GroupKey, dict[int, Totals]]:
    """Summed components per group and period index, for one department, from the chosen cube."""
    cube = cube_choose(needed=_needed(query, scope), boundaries=boundaries,
                       department_zone=scope.department.timezone, query_zone=query.zone, granularity=granularity)
    dims = [d for d in query.group_by if d in (AGENT, CHANNEL)]
    series = granularity != Granularity.TOTAL
    names = (["k_period"] if series else []) + dims
    if names:
        fetched = _grouped_read(record_type=record_type, components=components, cube=cube, query=query,
                                scope=scope, start=start, end=end, boundaries=boundaries, names=names)
    else:
        rows = _cube_rows(record_type=record_type, cube=cube, query=query, scope=scope, start=start, end=end)
        fetched = [tuple(rows.aggregate(**{f"s_{c}": Sum(c) for c in components}).values())]
    out: dict[GroupKey, dict[int, Totals]] = defaultdict(dict)
    offset = 1 if series else 0
    first_component = offset + len(dims)
    # Where each group_by entry comes from: a fetched dimension column, or the department itself.
    key_parts = [(None if d == DEPARTMENT else offset + dims.index(d)) for d in query.group_by]
    slug = scope.department.slug
    for row in fetched:
        if not names and row[0] is None:
            continue  # no rows at all
        key = tuple(slug if i is None else (row[i] or None) for i in key_parts)
        # SQL grouped by (period, dimensions): each (key, period) arrives once.
        out[key][row[0] - 1 if series else 0] = dict(zip(components, row[first_component:], strict=True))
    return out


def _cube_rows(*, record_type: str, cube: Cube, query: KpiQuery, scope: DepartmentScope, start: datetime,
               end: datetime):
    rows = BUCKET_MODELS[record_type].objects.filter(
        cube=cube.key, department_id=scope.department.id, bucket_start__gte=start, bucket_start__lt=end
    )
    if scope.agent:
        rows = rows.filter(agent=scope.agent)
    if query.agents:
        rows = rows.filter(agent__in=query.agents)
    if query.channels:
        rows = rows.filter(channel__in=query.channels)
    return rows


# Compiled SQL of the grouped read, per query shape. Why: compiling the queryset in the ORM costs
# about a millisecond, a third of the engine's time on the commonest dashboard query, while the
# SQL text only depends on the shape (every value, the boundaries included, is a parameter). The
# parameters are bound here in the ORM's order; the first compilation of each shape checks that
# order against the ORM's own parameters, and a shape that does not match is never reused.
_GROUPED_SQL: dict[tuple, str | None] = {}


def _grouped_read(*, record_type: str, components: list[str], cube: Cube, query: KpiQuery, scope: DepartmentScope,
                  start: datetime, end: datetime, boundaries: list[datetime], names: list[str]) -> list[tuple]:
    """Rows of (period index?, dimensions..., summed components...) — as the ORM's values_list gives them."""
    series = names[0] == "k_period"
    db = router.db_for_read(BUCKET_MODELS[record_type])
    connection = connections[db]
    ops = connection.ops
    params = [  # filter(**kwargs) sorts the keyword arguments: bucket_start, cube, department
        ops.adapt_datetimefield_value(start), ops.adapt_datetimefield_value(end), cube.key, scope.department.id,
        *([scope.agent] if scope.agent else []), *query.agents, *query.channels,
    ]
    if series:  # the select list (PeriodIndex) comes before the WHERE clause
        params.insert(0, PeriodIndex.param(connection, tuple(boundaries)))
    shape = (db, record_type, cube.key, tuple(components), tuple(names), bool(scope.agent), len(query.agents),
             len(query.channels))
    sql = _GROUPED_SQL.get(shape, False)
    if sql is None:  # a shape the check refused
        return list(_grouped_rows(record_type=record_type, components=components, cube=cube, query=query,
                                  scope=scope, start=start, end=end, boundaries=boundaries, names=names))
    if sql is False:
        fetched = _grouped_rows(record_type=record_type, components=components, cube=cube, query=query,
                                scope=scope, start=start, end=end, boundaries=boundaries, names=names)
        compiled, orm_params = fetched.query.get_compiler(db).as_sql()
        _GROUPED_SQL[shape] = sql = compiled if list(orm_params) == params else None
        if sql is None:
            return list(fetched)
    # The ORM's converters, for the summed columns: SUM(bigint) is numeric (Decimal) in PostgreSQL.
    model = BUCKET_MODELS[record_type]
    convert = [int if model._meta.get_field(c).get_internal_type().endswith("IntegerField") else float
               for c in components]
    first = len(names)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(*row[:first], *(None if v is None else f(v) for f, v in zip(convert, row[first:], strict=True)))
                for row in cursor.fetchall()]


def _grouped_rows(*, record_type: str, components: list[str], cube: Cube, query: KpiQuery, scope: DepartmentScope,
                  start: datetime, end: datetime, boundaries: list[datetime], names: list[str]):
    """The grouped read as a queryset: the source of the SQL that _grouped_read reuses."""
    rows = _cube_rows(record_type=record_type, cube=cube, query=query, scope=scope, start=start, end=end)
    if names[0] == "k_period":
        rows = rows.annotate(k_period=PeriodIndex(F("bucket_start"), boundaries=boundaries))
    sums = {f"s_{c}": Sum(c) for c in components}
    return rows.values(*names).annotate(**sums).order_by().values_list(*names, *sums)


def _totals_read(*, query: KpiQuery, start: datetime, end: datetime, granularity: str,
                 boundaries: list[datetime]) -> dict[str, dict[GroupKey, dict[int, Totals]]]:
    """Per record type: summed components per group and period, all departments of the query."""
    by_type: dict[str, list[str]] = defaultdict(list)
    for kpi in query.kpis:
        for part in kpi.components:
            if part not in by_type[kpi.record_type]:
                by_type[kpi.record_type].append(part)
    merged: dict[str, dict[GroupKey, dict[int, Totals]]] = {}
    for record_type, components in by_type.items():
        groups: dict[GroupKey, dict[int, Totals]] = defaultdict(dict)
        for scope in query.scopes:
            read = _components_read(record_type=record_type, components=components, query=query, scope=scope,
                                    start=start, end=end, granularity=granularity, boundaries=boundaries)
            if len(query.scopes) == 1:
                groups = read
                break
            for key, periods in read.items():
                for index, totals in periods.items():
                    target = groups[key].setdefault(index, defaultdict(float))
                    for name, value in totals.items():
                        target[name] += value
        merged[record_type] = groups
    return merged


def _sum_periods(periods: dict[int, Totals]) -> Totals:
    total: Totals = defaultdict(float)
    for totals in periods.values():
        for name, value in totals.items():
            total[name] += value
    return total


def _sort_key(key: GroupKey) -> tuple:
    return tuple("" if v is None else v for v in key)


def kpi_series_get(*, query: KpiQuery) -> dict:
    """The KPI values of the query: per KPI and group, over the range and per period, exact.

    Every value is a formula over components summed in SQL from the cheapest fitting cube, per
    period: the boundaries (computed in Python with zoneinfo, so DST and half-hour zones are
    exact) go to the database, which places each bucket start among them (width_bucket).
    """
    tz = query.tz
    boundaries = boundaries_get(start=query.start, end=query.end, zone=tz, granularity=query.granularity)
    periods = len(boundaries) - 1
    current = _totals_read(query=query, start=query.start, end=query.end, granularity=query.granularity,
                           boundaries=boundaries)
    previous = None
    if query.compare:
        p_start, p_end = previous_range(start=query.start, end=query.end, zone=tz,
                                        granularity=query.granularity, compare=query.compare)
        previous = (p_start, p_end, _totals_read(query=query, start=p_start, end=p_end,
                                                 granularity=Granularity.TOTAL, boundaries=[p_start, p_end]))
    starts = period_starts_iso(tuple(boundaries), tz)
    results = []
    for kpi in query.kpis:
        groups = current[kpi.record_type]
        keys = sorted(groups, key=_sort_key) if query.group_by else [()]
        for key in keys:
            by_period = groups.get(key, {})
            value, sample = kpi.formula.evaluate(_sum_periods(by_period))
            result = {
                "kpi": kpi.key,
                "unit": kpi.unit,
                "group": dict(zip(query.group_by, key, strict=True)),
                "value": value,
                "sample_size": sample,
            }
            if query.granularity != Granularity.TOTAL:
                evaluate, empty = kpi.formula.evaluate, {}
                result["series"] = [
                    dict(zip(_POINT, (starts[i], *evaluate(by_period.get(i, empty))), strict=True))
                    for i in range(periods)
                ]
            if previous is not None:
                p_start, p_end, p_groups = previous
                p_value, p_sample = kpi.formula.evaluate(_sum_periods(p_groups[kpi.record_type].get(key, {})))
                result["previous"] = {"start": _iso(p_start, tz), "end": _iso(p_end, tz), "value": p_value,
                                      "sample_size": p_sample}
                result["change"] = None if value is None or p_value is None else value - p_value
            results.append(result)
    return {
        "start": _iso(query.start, tz),
        "end": _iso(query.end, tz),
        "timezone": query.zone,
        "granularity": query.granularity,
        "as_of": timezone.now().astimezone(UTC).isoformat(),
        "results": results,
    }


_POINT = ("start", "value", "sample_size")


def _iso(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).isoformat()


# --- catalog and status ---------------------------------------------------------------------


def kpi_catalog_list(*, language: str) -> list[dict]:
    return [
        {
            "key": k.key,
            "label": k.label(language),
            "labels": {"en": k.label_en, "vi": k.label_vi},
            "unit": k.unit,
            "higher_is_better": k.higher_is_better,
            "formula": k.formula_text,
            "formula_kind": k.formula.kind,
            "components": list(k.components),
            "record_type": k.record_type,
            "anchor": k.anchor,
        }
        for k in KPIS.values()
    ]


@dataclass(frozen=True)
class _Scope:
    department_ids: list[int] | None = field(default=None)  # None: every department

    def filter(self, queryset):
        return queryset if self.department_ids is None else queryset.filter(department_id__in=self.department_ids)


def recompute_status_get(*, access: Access) -> dict:
    """The recompute backlog and the last completed recompute, for the caller's departments."""
    scope = _Scope(None if access.is_staff else [a.department.id for a in access.by_slug.values()])
    marks = scope.filter(DirtyBucket.objects.all()).aggregate(
        pending=Count("id", filter=Q(failed_at__isnull=True)),
        failed=Count("id", filter=Q(failed_at__isnull=False)),
        oldest=Min("first_marked_at", filter=Q(failed_at__isnull=True)),
    )
    last = scope.filter(RecomputeStamp.objects.all()).order_by("-completed_at").first()
    last_error = (
        scope.filter(DirtyBucket.objects.filter(failed_at__isnull=False))
        .order_by("-failed_at").values_list("last_error", flat=True).first()
    )
    newest = scope.filter(DirtyBucket.objects.all()).aggregate(newest=Max("marked_at"))["newest"]
    return {
        "pending_buckets": marks["pending"],
        "failed_buckets": marks["failed"],
        "oldest_pending_at": marks["oldest"],
        "newest_mark_at": newest,
        "last_error": last_error,
        "last_recompute": None if last is None else {
            "completed_at": last.completed_at,
            "record_type": last.record_type,
            "department": last.department.slug,
            "buckets": last.buckets,
            "duration_ms": last.duration_ms,
        },
    }
