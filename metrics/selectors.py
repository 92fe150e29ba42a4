"""Reads of the KPI engine: KPI series assembled from merged measure states, the catalog, the status.

The planner (`metrics.planner`) picks a cube per record type and department; the reader
(`metrics.reader`) returns merged measure states per group and period; this module merges them
across departments, record types and periods with each measure's kind, and evaluates the formulas.
"""

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from operator import attrgetter, itemgetter
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from cskpi.access import Access
from cskpi.db import hot_rows
from ingestion.models import RecordChange, ServiceLevelRemeasure
from metrics.catalog import KPIS, MEASURES_BY_KEY
from metrics.models import RecomputeStamp
from metrics.periods import Granularity, boundaries_get, period_starts_iso, previous_range
from metrics.planner import DEPARTMENT, GROUP_DIMENSIONS, DepartmentScope, KpiQuery, query_plan
from metrics.reader import (
    GroupKey,
    PeriodRows,
    Read,
    States,
    department_states_read,
    measure_states_read_many,
    periods_writable,
    total_read_pays,
)

__all__ = ["GROUP_DIMENSIONS", "DepartmentScope", "KpiQuery", "kpi_catalog_list", "kpi_series_get", "query_plan",
           "recompute_status_get"]


def _states_read(*, query: KpiQuery, start: datetime, end: datetime, granularity: str,
                 boundaries: list[datetime]) -> dict[str, Read]:
    """Per record type: merged measure states per group and period, over all departments of the query."""
    by_type: dict[str, dict[str, None]] = defaultdict(dict)
    for kpi in query.kpis:
        for part in kpi.components:
            by_type[MEASURES_BY_KEY[part].record_type][part] = None
    merged: dict[str, Read] = {}
    for record_type, keys in by_type.items():
        measures = [MEASURES_BY_KEY[k] for k in keys]
        grouped = [m for m in measures if not m.kind.department_wide]
        reads = measure_states_read_many(measures=grouped, query=query, scopes=query.scopes, start=start, end=end,
                                         granularity=granularity, boundaries=boundaries)
        merged[record_type] = reads[0] if len(reads) == 1 else _merge_reads(reads)
        wide = [m for m in measures if m.kind.department_wide]
        if wide:
            _department_states_spread(merged[record_type], query=query, measures=wide, start=start, end=end,
                                      granularity=granularity, boundaries=boundaries)
    return merged


def _department_states_spread(read: Read, *, query: KpiQuery, measures, start: datetime, end: datetime,
                              granularity: str, boundaries: list[datetime]) -> None:
    """Hand department-wide states to every group of `read`, in every period (also one where the group has
    no records: a group's range value merges the periods it has, and must see the whole range's). A group
    of one department (grouped by department) sees that department's; any other group, the states of every
    department of the query merged, like the group's own states are."""
    by_slug = {scope.department.slug: department_states_read(
        measures=measures, query=query, scope=scope, start=start, end=end, granularity=granularity,
        boundaries=boundaries) for scope in query.scopes}
    if DEPARTMENT in query.group_by:
        place = query.group_by.index(DEPARTMENT)
        spread = {key: by_slug[key[place]] for key in read}
    else:
        collected: dict[int, list[States]] = defaultdict(list)
        for periods in by_slug.values():
            for index, states in periods.items():
                collected[index].append(states)
        merged = {index: _merge_states(many) for index, many in collected.items()}
        spread = {key: merged for key in (list(read) or ([()] if not query.group_by else []))}
    for key, periods in spread.items():
        by_period = periods_writable(read, key)
        for index, states in periods.items():
            # The group's own states may be a read-only StateRow: a new mapping with both.
            by_period[index] = {**by_period.get(index, {}), **states}


def _merge_reads(reads: list[Read]) -> Read:
    """One read from several departments' (the same group and period merged with each measure's kind).
    A group only one department has (every group, grouped by department) is taken as it is."""
    seen = Counter(key for read in reads for key in read)
    merged: Read = {}
    collected: dict[GroupKey, dict[int, list[States]]] = defaultdict(lambda: defaultdict(list))
    for read in reads:
        for key, periods in read.items():
            if seen[key] == 1:
                merged[key] = periods
                continue
            for index, states in periods.items():
                collected[key][index].append(states)
    merged.update({key: {index: _merge_states(many) for index, many in periods.items()}
                   for key, periods in collected.items()})
    return merged


def _merge_states(many: list[States], keys=None) -> States:
    """The states merged measure by measure (each measure's kind); `keys`: only these measures."""
    if len(many) == 1:
        return many[0]
    if keys is None:
        keys = dict.fromkeys(k for states in many for k in states)
    return {k: MEASURES_BY_KEY[k].kind.merge(found) for k in keys if (found := [s[k] for s in many if k in s])}


def _kpi_read(kpi, reads: dict[str, Read]) -> Read:
    """The states a KPI's formula needs, per group and period: one record type's read, or the union of
    several (a formula across record types sees both sides' states for the same group and period)."""
    if len(kpi.record_types) == 1:
        return reads[kpi.record_type]
    combined: Read = defaultdict(lambda: defaultdict(dict))
    for record_type in kpi.record_types:
        for key, periods in reads[record_type].items():
            for index, states in periods.items():
                combined[key][index].update(states)
    return combined


def _sort_key(key: GroupKey) -> tuple:
    return tuple("" if v is None else v for v in key)


def kpi_series_get(*, query: KpiQuery) -> dict:
    """The KPI values of the query: per KPI and group, over the range and per period, exact.

    Every value is a formula over measure states merged in SQL from the cheapest fitting cube, per
    period: the boundaries (computed in Python with zoneinfo, so DST and half-hour zones are
    exact) go to the database, which places each bucket start among them (width_bucket); the
    periods' states are merged again (each measure's kind) for the value over the whole range.
    """
    tz = query.tz
    current = _range_read(query=query, start=query.start, end=query.end)
    previous = None
    if query.compare:
        p_start, p_end = previous_range(start=query.start, end=query.end, zone=tz,
                                        granularity=query.granularity, compare=query.compare)
        previous = _range_read(query=query, start=p_start, end=p_end)
    results = []
    for kpi in query.kpis:
        groups = _kpi_read(kpi, current.reads)
        keys = sorted(groups, key=_sort_key) if query.group_by else [()]
        p_groups = _kpi_read(kpi, previous.reads) if previous else {}
        for key in keys:
            value, sample, series = current.evaluate(kpi, groups.get(key, {}), key)
            result = {
                "kpi": kpi.key,
                "unit": kpi.unit,
                "group": dict(zip(query.group_by, key, strict=True)),
                "value": value,
                "sample_size": sample,
            }
            if series is not None:
                result["series"] = series
            if previous is not None:
                p_value, p_sample, p_series = previous.evaluate(kpi, p_groups.get(key, {}), key)
                result["previous"] = {"start": _iso(previous.start, tz), "end": _iso(previous.end, tz),
                                      "value": p_value, "sample_size": p_sample}
                if p_series is not None:  # period by period: the i-th previous period beside the i-th
                    result["previous"]["series"] = p_series
                result["change"] = None if value is None or p_value is None else value - p_value
            results.append(result)
    return {
        "start": _iso(query.start, tz),
        "end": _iso(query.end, tz),
        "timezone": query.zone,
        "granularity": query.granularity,
        "as_of": _as_of(query).astimezone(UTC).isoformat(),
        "results": results,
    }


def _as_of(query: KpiQuery) -> datetime:
    """Now, or the oldest change of a calendar, policy or zone whose records are still being measured
    again (the answer may hold numbers from before it)."""
    if not query.scopes:
        return timezone.now()
    # Raw SQL, prepared: the ORM's aggregate compiled on every request cost as much as the cube read of
    # a small answer.
    [(waiting,)] = hot_rows(connection, f"SELECT min(requested_at) FROM {ServiceLevelRemeasure._meta.db_table} "
                                        f"WHERE department_id IN ({', '.join(['%s'] * len(query.scopes))})",
                            [s.department.id for s in query.scopes])
    if waiting is not None and not isinstance(waiting, datetime):  # SQLite: Django's stored text
        waiting = datetime.fromisoformat(waiting).replace(tzinfo=UTC)
    return waiting or timezone.now()


@dataclass(frozen=True)
class _RangeRead:
    start: datetime
    end: datetime
    starts: tuple[str, ...] | None  # the periods' starts (ISO, query zone); None for granularity total
    reads: dict[str, Read]
    boundaries: tuple[datetime, ...]
    now: datetime
    totals: dict[str, Read] | None = None  # the range's own states of the _RANGE_READ_KINDS formulas' measures

    def range_states(self, kpi, key: GroupKey) -> States | None:
        """The group's states over the whole range when they were read on their own, else None."""
        if self.totals is None or kpi.formula.kind not in _RANGE_READ_KINDS:
            return None
        return _kpi_read(kpi, self.totals).get(key, {}).get(0, {})

    def _elapsed(self, start: datetime, end: datetime) -> float:
        """Seconds of [start, end) up to now: what a formula per second of the period divides by."""
        return max((min(end, self.now) - start).total_seconds(), 0.0)

    @cached_property
    def spans(self) -> tuple[float, ...]:
        """Seconds of each period up to now (`_elapsed`), computed once for every cell of the read."""
        bounds = self.boundaries
        return tuple(self._elapsed(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1))

    @cached_property
    def _no_spans(self) -> tuple[None, ...]:
        return (None,) * (len(self.boundaries) - 1)

    def spans_for(self, formula) -> tuple[float | None, ...]:
        """`spans` for a formula that reads them (per span), else Nones: the zone-aware arithmetic
        of 744 hours cost more than the rest of an hourly series' cells."""
        return self.spans if formula.kind == "per_span" else self._no_spans

    def evaluate(self, kpi, by_period: dict[int, States], key: GroupKey = ()) -> tuple:
        """(value over the range, its sample size, the series or None) of one KPI for one group."""
        formula = kpi.formula
        range_span = self._elapsed(self.start, self.end) if formula.kind == "per_span" else None
        if formula.on_values is not None:
            return self._evaluate_additive(formula, by_period, range_span)
        evaluate = formula.evaluator
        # Over the range: the range's own states, or the periods' states of this KPI's measures only (a
        # read of four KPIs holds the states of all of them; merging every one for each KPI was half of a
        # grouped answer's time).
        whole = self.range_states(kpi, key)
        if whole is None:
            whole = _merge_states(list(by_period.values()), formula.parts) if by_period else {}
        value, sample = evaluate(whole, range_span)
        if self.starts is None:
            return value, sample, None
        get, empty = by_period.get, {}
        return value, sample, self._series(evaluate(get(i, empty), span)
                                           for i, span in enumerate(self.spans_for(formula)))

    def _evaluate_additive(self, formula, by_period: dict[int, States], range_span: float | None) -> tuple:
        """`evaluate` for a formula over additive parts: the parts' columns picked from the periods' rows at
        C speed (rows of one read share their measure positions), the range's values their column sums
        (what merging the periods' states gives), the series by the formula over columns; no mapping asked
        per part per cell and no function called per cell."""
        parts = formula.parts
        columns = _part_columns(by_period, parts)
        totals = tuple(map(sum, columns))
        value, sample = formula.on_values(totals, range_span)
        if self.starts is None:
            return value, sample, None
        spans = self.spans_for(formula)
        periods = list(by_period)
        if periods != list(range(len(spans))):  # periods missing or out of order: each value to its period
            placed = []
            for column in columns:
                full = [0] * len(spans)
                for i, v in zip(periods, column, strict=True):
                    full[i] = v
                placed.append(full)
            columns = placed
        values, samples = formula.on_columns(columns, spans)
        return value, sample, Series(self.starts, values, samples)

    def _series(self, cells) -> "Series":
        """The series of (value, sample size) cells, one per period in order."""
        values, samples = [], []
        add_value, add_sample = values.append, samples.append
        for value, sample in cells:
            add_value(value)
            add_sample(sample)
        return Series(self.starts, values, samples)


_POSITIONS, _VALUES = attrgetter("positions"), attrgetter("values")


def _part_columns(by_period: Mapping[int, States], parts: tuple[str, ...]) -> list[list]:
    """Per part, its values in the periods' states, in their order."""
    if isinstance(by_period, PeriodRows) and (columns := by_period.columns(parts)) is not None:
        return columns
    rows = by_period.values()
    try:  # every row a StateRow of one read (a dict, merged from several, has no positions)
        shared = len(set(map(id, map(_POSITIONS, rows)))) == 1
    except AttributeError:
        shared = False
    if shared:
        positions = next(iter(rows)).positions
        if all(p in positions for p in parts):
            values = list(map(_VALUES, rows))
            return [list(map(itemgetter(positions[p]), values)) for p in parts]
    return [[row.get(p, 0) for row in rows] for p in parts]


# Formula kinds whose range value is read on its own, from the coarsest cube that fits the range, when
# the query has a series: merging a year of day sketches in Python (~50,000 bins) cost more than the
# rest of the answer, where the range's month sketches merge in SQL in a millisecond. (Counts and
# sums add up in no time; sets union in C.)
_RANGE_READ_KINDS = frozenset({"quantile"})


def _range_read(*, query: KpiQuery, start: datetime, end: datetime) -> _RangeRead:
    tz = query.tz
    boundaries = boundaries_get(start=start, end=end, zone=tz, granularity=query.granularity)
    reads = _states_read(query=query, start=start, end=end, granularity=query.granularity, boundaries=boundaries)
    starts = None if query.granularity == Granularity.TOTAL else period_starts_iso(tuple(boundaries), tz)
    totals = None
    ranged = tuple(k for k in query.kpis if k.formula.kind in _RANGE_READ_KINDS)
    if starts is not None and ranged:
        total = replace(query, kpis=ranged, granularity=Granularity.TOTAL)
        measures = [MEASURES_BY_KEY[part] for kpi in ranged for part in kpi.components]
        # Read on its own only where a coarser cube serves the range; otherwise the periods' states are
        # merged, which is exact as they tile the range: a read of the same cube or of the raw records
        # again would cost more (p90 by agent × channel by month at 5M, from the raw records: 560 of
        # 1,340 ms).
        if total_read_pays(measures=measures, series=query, total=total, boundaries=boundaries):
            totals = _states_read(query=total, start=start, end=end, granularity=Granularity.TOTAL,
                                  boundaries=[start, end])
    return _RangeRead(start, end, starts, reads, tuple(boundaries), timezone.now(), totals)


_POINT = ("start", "value", "sample_size")


class Series(Sequence):
    """A KPI's series, column by column: the periods' starts (one tuple shared by every series of the
    answer), the values and the sample sizes.

    Read as the list of points it stands for (`series[i]["value"]`, iteration, slices, equal to that
    list of dicts). The JSON renderer writes it through `as_json`, a list of plain dicts made while it
    writes: orjson wrote the slotted point objects this replaced at ~0.75 µs each (5.4 ms for 7,200
    points, more than building them), plain dicts at ~0.1 µs. Held between the read and the renderer,
    two list slots per period take less than a point object did.
    """

    __slots__ = ("starts", "values", "samples")

    def __init__(self, starts: tuple[str, ...], values: list, samples: list):
        self.starts, self.values, self.samples = starts, values, samples

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [SeriesPoint(*point) for point in zip(self.starts[index], self.values[index], self.samples[index],
                                                         strict=True)]
        return SeriesPoint(self.starts[index], self.values[index], self.samples[index])

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and len(self) == len(other) and all(
            mine == theirs for mine, theirs in zip(self, other, strict=True))

    __hash__ = None

    def __repr__(self) -> str:
        return f"Series({list(map(dict, self))!r})"

    def as_json(self) -> list[dict]:
        return [{"start": start, "value": value, "sample_size": sample}
                for start, value, sample in zip(self.starts, self.values, self.samples, strict=True)]


@dataclass(slots=True, eq=False)
class SeriesPoint(Mapping):
    """One period of a series as `Series` hands it out: `{"start", "value", "sample_size"}`, a view
    made on demand (a series holds its periods column by column). It reads as the mapping it stands
    for (`point["value"]`, `dict(point)`, equal to that dict)."""

    start: str
    value: float | int | None
    sample_size: int

    def __getitem__(self, key: str):
        if key not in _POINT:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self):
        return iter(_POINT)

    def __len__(self) -> int:
        return len(_POINT)


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
            "record_types": list(k.record_types),
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
    marks = scope.filter(RecordChange.objects.all()).aggregate(
        pending=Count("id", filter=Q(failed_at__isnull=True)),
        failed=Count("id", filter=Q(failed_at__isnull=False)),
        oldest=Min("first_marked_at", filter=Q(failed_at__isnull=True)),
    )
    last = scope.filter(RecomputeStamp.objects.all()).order_by("-completed_at").first()
    last_error = (
        scope.filter(RecordChange.objects.filter(failed_at__isnull=False))
        .order_by("-failed_at").values_list("last_error", flat=True).first()
    )
    newest = scope.filter(RecordChange.objects.all()).aggregate(newest=Max("marked_at"))["newest"]
    remeasuring = scope.filter(ServiceLevelRemeasure.objects.select_related("department")).order_by("requested_at")
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
        "remeasuring": [{"department": r.department.slug, "since": r.since, "requested_at": r.requested_at,
                         "records_done": r.records_done} for r in remeasuring],
    }
