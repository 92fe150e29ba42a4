"""Input parsing of the KPI query (into a frozen KpiQuery, access rules applied) and output shapes."""

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, serializers

from cskpi.access import Access, agent_detail_check, read_level_check, read_scopes_resolve
from cskpi.models import Department
from cskpi.serializers import QueryParametersSerializer
from cskpi.validators import zone_get
from metrics.catalog import FORMULA_KINDS, KPIS, Unit
from metrics.cubes import AGENT, local_midnight
from metrics.limits import result_cells_check
from metrics.periods import (
    Compare,
    Granularity,
    OffGrid,
    add_months,
    boundaries_tuple,
    is_quarter,
    previous_range,
)
from metrics.planner import (
    GROUP_DIMENSIONS,
    TIME_DIMENSIONS,
    DepartmentScope,
    KpiQuery,
    kpi_dimension_message,
    kpi_dimensions_missing,
)

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Far from datetime's limits, so comparisons a year earlier and zone shifts never overflow.
_EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
_LATEST = datetime(3000, 1, 1, tzinfo=UTC)
_MAX_FILTER_VALUES = 200
# "+07:00" arrives as " 07:00" when a client forgets to percent-encode the "+" in a query string.
_SPACE_OFFSET = re.compile(r" (\d{2}(:?\d{2})?)$")


def _invalid(field: str, message: str, code: str) -> serializers.ValidationError:
    return serializers.ValidationError({field: [exceptions.ErrorDetail(message, code=code)]})


_BLANK_ITEM = "An empty value in the list (nothing, or only spaces, between commas)."


def _split(value: str) -> list[str]:
    """A list parameter's comma list (KPI keys, group dimensions, department slugs), each item stripped; none may
    be empty, since no item of the parameter's OpenAPI enum or pattern is."""
    parts = [part.strip() for part in value.split(",")]
    if not all(parts):
        raise serializers.ValidationError(_BLANK_ITEM, code="blank")
    return parts


# What a filter value is stripped of: the ASCII spaces, which the parameter's OpenAPI pattern names one by one
# (metrics.schema) — a regex's `\s` and `str.strip()` disagree between flavours (U+0085, U+001C…U+001F).
FILTER_SPACES = " \t\n\r\x0b\x0c"


def _filter_values(value: str) -> tuple[str, ...]:
    """A filter's comma list: each value stripped of surrounding ASCII spaces (`FILTER_SPACES`); none may be
    empty (nothing, or only spaces, between commas), as the OpenAPI pattern of the parameter says."""
    parts = [part.strip(FILTER_SPACES) for part in value.split(",")]
    if not all(parts):
        raise serializers.ValidationError(_BLANK_ITEM, code="blank")
    values = tuple(dict.fromkeys(parts))
    if len(values) > _MAX_FILTER_VALUES:
        raise serializers.ValidationError(f"At most {_MAX_FILTER_VALUES} values.", code="too_many")
    return values


class KpiQueryInputSerializer(QueryParametersSerializer):
    kpi = serializers.CharField(help_text="Comma list of KPI keys (see `GET /api/v1/kpis`), e.g. `fcr_rate,csat`.")
    department = serializers.CharField(
        required=False, help_text="Comma list of department slugs. Default: every department the caller can read."
    )
    start = serializers.CharField(
        required=False,
        help_text="Inclusive start: an ISO date (local midnight in `timezone`) or a datetime with offset "
                  "(encode `+` as `%2B`). Must be a period boundary of `granularity` (total: a quarter-hour). "
                  "Default: a recent window ending with the current period.",
    )
    end = serializers.CharField(required=False, help_text="Exclusive end; same forms and alignment as `start`.")
    granularity = serializers.ChoiceField(choices=Granularity.ALL, default=Granularity.DAY,
                                          help_text="Length of each period of `series`; `total` gives no series.")
    timezone = serializers.CharField(
        required=False,
        help_text="IANA zone the periods are cut in. Default: the departments' zone when they share one, "
                  "else the service default.",
    )
    group_by = serializers.CharField(
        required=False,
        help_text="Comma list of `agent`, `channel`, `topic`, `check` (system-check KPIs only), `customer_region`, "
                  "`segment` (the customer registry's), `department`, `weekday` (ISO, 1 = Monday … 7) and "
                  "`hour_of_day` (0–23); weekday and hour of day are those of the records' time in `timezone` "
                  "(combine them for a weekday × hour heatmap; not for the registry's levels).",
    )
    # Filters: stripped value by value (`_filter_values`), not as a whole.
    agent = serializers.CharField(required=False, trim_whitespace=False,
                                  help_text="Comma list: only these agents (not for viewers).")
    channel = serializers.CharField(required=False, trim_whitespace=False, help_text="Comma list: only these channels.")
    topic = serializers.CharField(required=False, trim_whitespace=False,
                                  help_text="Comma list: only these topics (interactions).")
    check = serializers.CharField(required=False, trim_whitespace=False,
                                  help_text="Comma list: only these system checks (system-check KPIs only).")
    customer_region = serializers.CharField(required=False, trim_whitespace=False,
                                            help_text="Comma list: only these customer regions (interactions).")
    compare = serializers.ChoiceField(choices=Compare.ALL, required=False,
                                      help_text="Add `previous` and `change` for the range this names.")


    def validate_kpi(self, value):
        keys = _split(value)
        unknown = [k for k in keys if k not in KPIS]
        if unknown:
            raise serializers.ValidationError(
                f"Unknown KPI: {', '.join(unknown)}; see GET /api/v1/kpis.", code="unknown_kpi"
            )
        return tuple(KPIS[k] for k in dict.fromkeys(keys))

    def validate_group_by(self, value):
        dims = _split(value)
        bad = [d for d in dims if d not in GROUP_DIMENSIONS]
        if bad:
            raise serializers.ValidationError(
                f"Cannot group by {', '.join(bad)}; use {', '.join(GROUP_DIMENSIONS)}.", code="invalid_choice"
            )
        return tuple(dict.fromkeys(dims))

    def validate_timezone(self, value):
        if zone_get(value) is None:
            raise serializers.ValidationError(f"'{value}' is not an IANA time zone.", code="invalid_timezone")
        return value

    def validate_agent(self, value):
        return _filter_values(value)

    def validate_channel(self, value):
        return _filter_values(value)

    def validate_topic(self, value):
        return _filter_values(value)

    def validate_check(self, value):
        return _filter_values(value)

    def validate_customer_region(self, value):
        return _filter_values(value)

    def validate(self, attrs):
        access: Access = self.context["access"]
        scopes = self._scopes(access, attrs.get("department"))
        zone_name = attrs.get("timezone") or self._default_zone([s.department for s in scopes])
        zone = ZoneInfo(zone_name)
        granularity = attrs["granularity"]
        start, end = self._range(attrs.get("start"), attrs.get("end"), zone, granularity)
        group_by = attrs.get("group_by", ())
        agents = attrs.get("agent", ())
        scopes = self._agent_rules(access, scopes, group_by, agents)
        read_level_check(scopes=[access.get(s.department.slug) for s in scopes], field="kpi",
                         needed={k.key: k.read_level for k in attrs["kpi"]})
        self._dimension_rules(attrs["kpi"], group_by, agents, attrs.get("channel", ()), attrs.get("topic", ()),
                              attrs.get("check", ()), attrs.get("customer_region", ()))
        self._stock_rules(attrs["kpi"], group_by, [s.department for s in scopes])
        query = KpiQuery(
            kpis=attrs["kpi"], scopes=tuple(scopes), start=start, end=end, zone=zone_name, granularity=granularity,
            group_by=group_by, agents=agents, channels=attrs.get("channel", ()), compare=attrs.get("compare"),
            topics=attrs.get("topic", ()), checks=attrs.get("check", ()),
            customer_regions=attrs.get("customer_region", ()),
        )
        self._grid_check(query)
        result_cells_check(query=query)
        return {"query": query}

    @staticmethod
    def _dimension_rules(kpis, group_by, agents, channels, topics, checks, regions) -> None:
        """A KPI across record types cannot be grouped or filtered by a dimension one side lacks, nor
        any KPI by a strict dimension (check) its record type lacks."""
        asked = {"group_by": set(group_by), "agent": {"agent"} if agents else set(),
                 "channel": {"channel"} if channels else set(), "topic": {"topic"} if topics else set(),
                 "check": {"check"} if checks else set(),
                 "customer_region": {"customer_region"} if regions else set()}
        for kpi in kpis:
            for field_name, dimensions in asked.items():
                for dimension, lacking in kpi_dimensions_missing(kpi=kpi, dimensions=dimensions).items():
                    raise _invalid(field_name, f"{kpi_dimension_message(kpi, lacking, dimension)}, so it cannot be "
                                   f"grouped or filtered by {dimension}.", "dimension_not_shared")

    @staticmethod
    def _grid_check(query: KpiQuery) -> None:
        """400 `unaligned` naming the timezone when a period the answer cuts — of the range, of its weekdays or
        hours of day, or of the range it is compared with — would not start on a UTC quarter-hour, the finest
        grain the aggregates keep: the zone's UTC offset then was not a whole number of quarter-hours."""
        ranges = [(query.start, query.end)]
        if query.compare:
            ranges.append(previous_range(start=query.start, end=query.end, zone=query.tz,
                                         granularity=query.granularity, compare=query.compare))
        grains = dict.fromkeys([query.granularity, *(TIME_DIMENSIONS[d] for d in query.group_by
                                                     if d in TIME_DIMENSIONS)])
        try:
            for start, end in ranges:
                for edge in (start, end):
                    if not is_quarter(edge):
                        raise OffGrid(edge, query.tz)
                for grain in grains:
                    boundaries_tuple(start=start, end=end, zone=query.tz, granularity=grain)
        except OffGrid as off:
            local = off.moment.astimezone(query.tz)
            raise _invalid("timezone", f"{query.zone}'s local hours and days around {local.isoformat()} do not "
                           "start on quarter-hours (:00, :15, :30, :45 UTC), the finest grain the aggregates keep: "
                           "its UTC offset then was not a whole number of quarter-hours. Choose another zone or "
                           "range.", "unaligned") from None

    @staticmethod
    def _stock_rules(kpis, group_by, departments: list[Department]) -> None:
        """A level over time (customer base, MRR) has no weekday or hour of day; money is summed only
        across departments that report in one currency."""
        for kpi in kpis:
            if not kpi.stock:
                continue
            for dimension in group_by:
                if dimension in TIME_DIMENSIONS:
                    raise _invalid("group_by", f"{kpi.key} is a level over time; it cannot be grouped by "
                                   f"{dimension}.", "invalid_choice")
            currencies = sorted({d.currency for d in departments})
            if kpi.unit == Unit.MONEY and len(currencies) > 1:
                raise _invalid("department", f"{kpi.key} is money: the departments report in "
                               f"{', '.join(currencies)}; query one currency at a time.", "mixed_currencies")

    # --- departments and access ---------------------------------------------------------

    @staticmethod
    def _scopes(access: Access, departments: str | None) -> list[DepartmentScope]:
        try:
            slugs = [] if departments is None else _split(departments)
        except serializers.ValidationError as error:
            raise serializers.ValidationError({"department": error.detail}) from None
        readable = read_scopes_resolve(access=access, slugs=slugs)
        return [DepartmentScope(a.department, a.agent) for a in readable]

    @staticmethod
    def _agent_rules(access: Access, scopes: list[DepartmentScope], group_by, agents) -> list[DepartmentScope]:
        agent_detail_check(scopes=[access.get(s.department.slug) for s in scopes],
                           group_by_agent=AGENT in group_by, agents=agents)
        return scopes

    @staticmethod
    def _default_zone(departments: list[Department]) -> str:
        zones = {d.timezone for d in departments}
        return zones.pop() if len(zones) == 1 else settings.CSKPI_DEFAULT_TIMEZONE

    # --- range ---------------------------------------------------------------------------

    def _range(self, start_text, end_text, zone: ZoneInfo, granularity: str) -> tuple[datetime, datetime]:
        start = self._moment("start", start_text, zone, granularity) if start_text else None
        end = self._moment("end", end_text, zone, granularity) if end_text else None
        if start is None and end is None:
            end = _current_period_end(zone, granularity)
        if start is None:
            start = _default_start(end, zone, granularity)
        if end is None:
            end = _default_end(start, zone, granularity)
        if end <= start:
            raise _invalid("end", "`end` must be after `start` (the range is half-open).", "end_before_start")
        limit = settings.CSKPI_MAX_RANGE_DAYS[granularity]
        if end - start > timedelta(days=limit):
            raise _invalid("end", f"The range is longer than {limit} days, the most for granularity "
                           f"'{granularity}'.", "range_too_long")
        return start, end

    @staticmethod
    def _moment(field: str, text: str, zone: ZoneInfo, granularity: str) -> datetime:
        text = text.strip()
        try:
            if _DATE.match(text):
                moment = local_midnight(date.fromisoformat(text), zone)
            else:
                parsed = datetime.fromisoformat(_SPACE_OFFSET.sub(r"+\1", text))
                if parsed.tzinfo is None:
                    raise _invalid(field, "A datetime needs an offset, e.g. 2026-05-01T00:00:00+07:00.",
                                   "offset_required")
                moment = parsed.astimezone(UTC)
        except (ValueError, OverflowError):
            raise _invalid(field, "Enter an ISO date (YYYY-MM-DD) or a datetime with offset.", "invalid") from None
        if not _EARLIEST <= moment < _LATEST:
            raise _invalid(field, "Dates must fall between 1900 and 2999.", "out_of_range")
        if not is_quarter(moment):
            # The exact layer's grain: any quarter-hour can start or end a range (a first or last period
            # that is not whole is clipped to it); a finer edge cannot be answered exactly.
            raise _invalid(field, "It must fall on a quarter-hour (:00, :15, :30, :45 and whole seconds), the "
                           "finest grain the aggregates keep.", "unaligned")
        return moment


_DEFAULT_PERIODS = {"hour": 24, "day": 30, "week": 12, "month": 12, "total": 30}


def _current_period_end(zone: ZoneInfo, granularity: str) -> datetime:
    now = timezone.now().astimezone(zone)
    if granularity == Granularity.HOUR:
        floor = now.replace(minute=0, second=0, microsecond=0)
        return floor.astimezone(UTC) + timedelta(hours=1)
    today = now.date()
    if granularity == Granularity.WEEK:
        return local_midnight(today + timedelta(days=7 - today.weekday()), zone)
    if granularity == Granularity.MONTH:
        return local_midnight(add_months(today.replace(day=1), 1), zone)
    return local_midnight(today + timedelta(days=1), zone)


def _shift(moment: datetime, zone: ZoneInfo, granularity: str, periods: int) -> datetime:
    if granularity == Granularity.HOUR:
        return moment + timedelta(hours=periods)
    day = moment.astimezone(zone).date()
    if granularity == Granularity.MONTH:
        return local_midnight(add_months(day, periods), zone)
    days = periods * (7 if granularity == Granularity.WEEK else 1)
    if granularity == Granularity.TOTAL:
        return moment + timedelta(days=days)
    return local_midnight(day + timedelta(days=days), zone)


def _default_start(end: datetime, zone: ZoneInfo, granularity: str) -> datetime:
    return _shift(end, zone, granularity, -_DEFAULT_PERIODS[granularity])


def _default_end(start: datetime, zone: ZoneInfo, granularity: str) -> datetime:
    return _shift(start, zone, granularity, _DEFAULT_PERIODS[granularity])


# --- output (documentation of the response shapes) -------------------------------------------


class PointSerializer(serializers.Serializer):
    start = serializers.DateTimeField(help_text="Period start, in the query zone.")
    value = serializers.FloatField(allow_null=True, help_text="Null when the denominator is 0 (counts: 0).")
    sample_size = serializers.IntegerField(help_text="The denominator, or the count for counts.")


class PreviousSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    value = serializers.FloatField(allow_null=True)
    sample_size = serializers.IntegerField()
    series = PointSerializer(many=True, required=False,
                             help_text="The previous range's periods (not for granularity total), in order: the "
                                       "i-th beside the i-th period of `series`. Ranges of unequal length (months) "
                                       "may have one period more or less.")


@extend_schema_field({"anyOf": [{"type": "string"}, {"type": "integer"}], "nullable": True})  # OpenAPI 3.0
class _GroupValueField(serializers.Field):
    """A group's value of one dimension, as the answer holds it: a string (department, agent, channel, …), an
    integer for the time dimensions (weekday 1–7, hour_of_day 0–23), or null."""


class KpiResultSerializer(serializers.Serializer):
    kpi = serializers.CharField()
    unit = serializers.ChoiceField(choices=Unit.ALL)
    group = serializers.DictField(
        child=_GroupValueField(allow_null=True),
        help_text=("The group's dimension values (`{}` without group_by; a record without agent/channel: null; "
                   "weekday 1 = Monday … 7 and hour_of_day 0–23 as integers)."),
    )
    value = serializers.FloatField(allow_null=True, help_text="Over the whole range, from summed components.")
    sample_size = serializers.IntegerField()
    series = PointSerializer(many=True, required=False, help_text="Every period of the range (not for total).")
    previous = PreviousSerializer(required=False, help_text="Only with `compare`.")
    change = serializers.FloatField(allow_null=True, required=False, help_text="value − previous.value.")


class KpiSeriesSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    timezone = serializers.CharField()
    granularity = serializers.ChoiceField(choices=Granularity.ALL)
    as_of = serializers.DateTimeField(help_text=(
        "When the answer was computed; earlier while a department of the query is being measured again after a "
        "calendar, SLA policy or zone change: the time of that change (its records may still show the numbers "
        "from before it; /status shows the progress)."))
    results = KpiResultSerializer(many=True)


class KpiCatalogEntrySerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField(help_text="In the language of `Accept-Language` (en or vi).")
    labels = serializers.DictField(child=serializers.CharField())
    unit = serializers.ChoiceField(choices=Unit.ALL)
    higher_is_better = serializers.BooleanField()
    formula = serializers.CharField()
    formula_kind = serializers.ChoiceField(choices=FORMULA_KINDS)
    components = serializers.ListField(child=serializers.CharField(),
                                       help_text="The measures the formula reads (cube columns).")
    record_type = serializers.CharField(help_text="The record type of its first measure.")
    record_types = serializers.ListField(child=serializers.CharField(),
                                         help_text="Every record type its measures come from.")
    anchor = serializers.CharField(help_text="The record time that places a record in a period.")


class LastRecomputeSerializer(serializers.Serializer):
    completed_at = serializers.DateTimeField()
    record_type = serializers.CharField()
    department = serializers.CharField()
    buckets = serializers.IntegerField()
    duration_ms = serializers.FloatField()


class RemeasureSerializer(serializers.Serializer):
    department = serializers.CharField()
    since = serializers.DateTimeField(allow_null=True, help_text="Records anchored from here on (null: all).")
    requested_at = serializers.DateTimeField(help_text="When the change was made.")
    records_done = serializers.IntegerField(help_text="Records measured again so far in the current pass.")


class RecomputeStatusSerializer(serializers.Serializer):
    pending_buckets = serializers.IntegerField(help_text="Quarter-hour buckets waiting for recompute.")
    failed_buckets = serializers.IntegerField(help_text="Buckets parked after too many failed attempts.")
    oldest_pending_at = serializers.DateTimeField(allow_null=True, help_text="First mark of the oldest waiting bucket.")
    newest_mark_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField(allow_null=True)
    last_recompute = LastRecomputeSerializer(allow_null=True)
    remeasuring = RemeasureSerializer(many=True, help_text=(
        "Departments whose records are being measured again with a changed calendar, SLA policy or zone; "
        "meanwhile their KPIs answer from the previous numbers (`as_of`)."))
