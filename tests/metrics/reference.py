"""An independent, plain-Python recomputation of the KPIs from the raw records.

It does not use the catalog, the cubes or the engine's period code: it iterates the raw rows,
converts each anchor with zoneinfo and truncates it to its local period.
"""

import math
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from cskpi.models import Department, DepartmentCalendar, SlaPolicy
from ingestion.models import Cashout, Interaction, SurveyResponse, SystemCheck
from tests.cskpi import business_hours_reference as business_hours


def _secs(later, anchor):
    return (later - anchor).total_seconds()


def _count(pred):
    def f(rs):
        n = sum(1 for r in rs if pred(r))
        return n, n
    return f


def _ratio(num, den):
    def f(rs):
        base = [r for r in rs if den(r)]
        if not base:
            return None, 0
        return sum(1 for r in base if num(r)) / len(base) * 100, len(base)
    return f


def _mean(value, pred):
    def f(rs):
        values = [value(r) for r in rs if pred(r)]
        if not values:
            return None, 0
        return sum(values) / len(values), len(values)
    return f


def _nps(rs):
    base = [r for r in rs if r.kind == "nps"]
    if not base:
        return None, 0
    promoters = sum(1 for r in base if r.score >= 9)
    detractors = sum(1 for r in base if r.score <= 6)
    return (promoters - detractors) / len(base) * 100, len(base)


def _percentile(value, pred, q):
    """The exact nearest-rank q-quantile: the ⌈q·n⌉-th smallest value."""
    def f(rs):
        values = sorted(value(r) for r in rs if pred(r))
        if not values:
            return None, 0
        rank = max(math.ceil(q * len(values) - 1e-9), 1)
        return values[rank - 1], len(values)
    return f


def _across_ratio(num_model, num, den_model, den):
    def f(rs):
        base = sum(1 for r in rs if isinstance(r, den_model) and den(r))
        if not base:
            return None, 0
        return sum(1 for r in rs if isinstance(r, num_model) and num(r)) / base * 100, base
    return f


_SETTLED = ("succeeded", "failed")

# key -> (model, function of the records in a group/period -> (value, sample_size))
REFERENCE = {
    "interactions": (Interaction, _count(lambda r: True)),
    "tickets_handled": (Interaction, _count(lambda r: r.status == "resolved")),
    "first_response_time": (Interaction, _mean(lambda r: _secs(r.first_response_at, r.created_at),
                                               lambda r: r.first_response_at is not None)),
    "resolution_time": (Interaction, _mean(lambda r: _secs(r.resolved_at, r.created_at),
                                           lambda r: r.status == "resolved" and r.resolved_at is not None)),
    "fcr_rate": (Interaction, _ratio(lambda r: r.contact_count == 1, lambda r: r.status == "resolved")),
    "abandonment_rate": (Interaction, _ratio(lambda r: r.status == "abandoned", lambda r: True)),
    "average_wait_time": (Interaction, _mean(lambda r: r.wait_seconds, lambda r: r.wait_seconds is not None)),
    "average_handle_time": (Interaction, _mean(lambda r: r.handle_seconds,
                                               lambda r: r.handle_seconds is not None)),
    "self_service_rate": (Interaction, _ratio(lambda r: r.self_service, lambda r: True)),
    "missed_calls": (Interaction, _count(lambda r: r.status == "missed")),
    "csat": (SurveyResponse, _ratio(lambda r: r.score >= 4, lambda r: r.kind == "csat")),
    "csat_score": (SurveyResponse, _mean(lambda r: r.score, lambda r: r.kind == "csat")),
    "nps": (SurveyResponse, _nps),
    "ces": (SurveyResponse, _mean(lambda r: r.score, lambda r: r.kind == "ces")),
    "qa_score": (SurveyResponse, _mean(lambda r: r.score, lambda r: r.kind == "qa")),
    "cashout_requests": (Cashout, _count(lambda r: True)),
    "cashout_processing_time": (Cashout, _mean(lambda r: _secs(r.completed_at, r.requested_at),
                                               lambda r: r.status in _SETTLED and r.completed_at is not None)),
    "cashout_response_time": (Cashout, _mean(lambda r: _secs(r.first_response_at, r.requested_at),
                                             lambda r: r.first_response_at is not None)),
    "cashout_success_rate": (Cashout, _ratio(lambda r: r.status == "succeeded", lambda r: r.status in _SETTLED)),
    "cashout_error_rate": (Cashout, _ratio(lambda r: r.status == "failed", lambda r: r.status in _SETTLED)),
}
_RESOLVED = lambda r: r.status == "resolved"  # noqa: E731
REFERENCE.update({
    "resolved_contact_1": (Interaction, _count(lambda r: _RESOLVED(r) and r.contact_count == 1)),
    "resolved_contact_2": (Interaction, _count(lambda r: _RESOLVED(r) and r.contact_count == 2)),
    "resolved_contact_3": (Interaction, _count(lambda r: _RESOLVED(r) and r.contact_count == 3)),
    "resolved_contact_4_plus": (Interaction, _count(lambda r: _RESOLVED(r) and r.contact_count >= 4)),
    "unresolved": (Interaction, _count(lambda r: r.status in ("open", "pending"))),
    "talk_time": (Interaction, lambda rs: (float(sum(r.handle_seconds for r in rs if r.handle_seconds is not None)),
                                           sum(1 for r in rs if r.handle_seconds is not None))),
    "survey_response_rate": ((SurveyResponse, Interaction),
                             _across_ratio(SurveyResponse, lambda r: r.kind == "csat", Interaction, _RESOLVED)),
})
# System checks; `gap` is set on each record by `_gaps_attach` (the seconds since the previous check of
# the same check in the same department, None for the first).
REFERENCE.update({
    "system_checks": (SystemCheck, _count(lambda r: True)),
    "system_check_failure_rate": (SystemCheck, _ratio(lambda r: r.outcome == "failed", lambda r: True)),
    "system_check_interval": (SystemCheck, _mean(lambda r: r.gap, lambda r: r.gap is not None)),
})


def _gaps_attach(records) -> None:
    """Each system check's gap to the one before it in its department and check, in time order (two at
    the same instant: the second has gap 0), from all the checks whatever the query's range."""
    series: dict[tuple, list] = defaultdict(list)
    for record in records:
        if isinstance(record, SystemCheck):
            series[(record.department_id, record.check_name)].append(record)
    for checks in series.values():
        checks.sort(key=lambda r: r.at)
        previous = None
        for record in checks:
            record.gap = None if previous is None else (record.at - previous).total_seconds()
            previous = record.at


# Percentiles: the same values and filters as the means they belong to.
_DURATION_VALUES = {
    "first_response_time": (Interaction, lambda r: _secs(r.first_response_at, r.created_at),
                            lambda r: r.first_response_at is not None),
    "resolution_time": (Interaction, lambda r: _secs(r.resolved_at, r.created_at),
                        lambda r: r.status == "resolved" and r.resolved_at is not None),
    "average_wait_time": (Interaction, lambda r: r.wait_seconds, lambda r: r.wait_seconds is not None),
    "average_handle_time": (Interaction, lambda r: r.handle_seconds, lambda r: r.handle_seconds is not None),
    "cashout_processing_time": (Cashout, lambda r: _secs(r.completed_at, r.requested_at),
                                lambda r: r.status in _SETTLED and r.completed_at is not None),
    "cashout_response_time": (Cashout, lambda r: _secs(r.first_response_at, r.requested_at),
                              lambda r: r.first_response_at is not None),
}
for _key, (_model, _value, _pred) in _DURATION_VALUES.items():
    for _p in (50, 90, 95, 99):
        REFERENCE[f"{_key}_p{_p}"] = (_model, _percentile(_value, _pred, _p / 100))


# Distinct customers: a customer is counted once per group and period (interactions without one are not).
# New: the customer's first interaction with the group's department (grouped by department), else with
# one of the queried departments, over every interaction they hold whatever the query filters, falls in
# the window [lo, hi) of the value.


def _customers_of(rs) -> set:
    return {r.customer for r in rs if r.customer is not None}


def _customers(rs):
    n = len(_customers_of(rs))
    return n, n


def _new_customers(rs, window):
    lo, hi, firsts, departments = window
    departments = departments or {r.department_id for r in rs}
    n = sum(1 for c in _customers_of(rs)
            if any(lo <= first < hi for d, first in firsts.get(c, ()) if d in departments))
    return n, n


def _returning_customers(rs, window):
    n = len(_customers_of(rs)) - _new_customers(rs, window)[0]
    return n, n


REFERENCE.update({
    "customers": (Interaction, _customers),
    "new_customers": (Interaction, _new_customers),
    "returning_customers": (Interaction, _returning_customers),
})
WINDOWED = {"new_customers", "returning_customers"}  # their functions also take (lo, hi, first contacts)


def first_contacts(department_ids) -> dict[str, list[tuple[int, datetime]]]:
    """{customer: [(department id, their first interaction's created_at with it)]}."""
    firsts: dict[tuple, datetime] = {}
    for r in Interaction.objects.filter(department_id__in=list(department_ids), customer__isnull=False):
        key = (r.department_id, r.customer)
        if key not in firsts or r.created_at < firsts[key]:
            firsts[key] = r.created_at
    out: dict[str, list[datetime]] = defaultdict(list)
    for (department_id, customer), first in firsts.items():
        out[customer].append((department_id, first))
    return out


# --- business hours and SLA attainment: each record measured with its department's calendar and
# policy as stored (their JSON bodies), by the plain-Python reference of tests/cskpi.
class SlaClock:
    """The instant unanswered records are judged at (what the engine's clock said when it last
    measured them or swept the overdue ones); set by the tests that use SLA policies."""

    now: datetime | None = None


def _service_levels() -> dict:
    """Per department id (read once per evaluation): its calendar versions, zone and policy."""
    def load(department_id):
        department = Department.objects.get(id=department_id)
        calendar = DepartmentCalendar.objects.filter(department_id=department_id).first()
        policy = SlaPolicy.objects.filter(department_id=department_id).first()
        return ((calendar.versions if calendar else []), ZoneInfo(department.timezone),
                (policy.body if policy else None))

    class Levels(dict):
        def __missing__(self, department_id):
            self[department_id] = load(department_id)
            return self[department_id]
    return Levels()


def _business_mean(stop_field: str, pred):
    def f(rs):
        levels = _service_levels()
        values = []
        for r in rs:
            if pred(r):
                versions, zone, _ = levels[r.department_id]
                values.append(business_hours.business_seconds(versions, zone, r.created_at, getattr(r, stop_field)))
        return (sum(values) / len(values), len(values)) if values else (None, 0)
    return f


def _state(r, key: str, levels) -> str | None:
    versions, zone, policy = levels[r.department_id]
    if isinstance(r, Interaction):
        target, stop = {"first_response": ("first_response_seconds", r.first_response_at),
                        "resolution": ("resolution_seconds", r.resolved_at)}[key]
        exempt = key == "resolution" and r.status in ("abandoned", "missed")
        return business_hours.sla_state(versions=versions, zone=zone, policy=policy, target_name=target,
                                        anchor=r.created_at, stop=stop, channel=r.channel, now=SlaClock.now,
                                        exempt=exempt)
    return business_hours.sla_state(versions=versions, zone=zone, policy=policy,
                                    target_name="cashout_response_seconds", anchor=r.requested_at,
                                    stop=r.first_response_at, channel=r.channel, now=SlaClock.now,
                                    clock=(policy or {}).get("cashout_clock", "business"))


def _share(key: str):
    def f(rs):
        levels = _service_levels()
        states = [_state(r, key, levels) for r in rs]
        met, breached = states.count("met"), states.count("breached")
        return (met / (met + breached) * 100, met + breached) if met + breached else (None, 0)
    return f


def _breaches(key: str):
    def f(rs):
        levels = _service_levels()
        n = sum(1 for r in rs if _state(r, key, levels) == "breached")
        return n, n
    return f


REFERENCE.update({
    "first_response_time_business": (Interaction, _business_mean("first_response_at",
                                                                 lambda r: r.first_response_at is not None)),
    "resolution_time_business": (Interaction, _business_mean(
        "resolved_at", lambda r: r.status == "resolved" and r.resolved_at is not None)),
    "sla_first_response_rate": (Interaction, _share("first_response")),
    "sla_resolution_rate": (Interaction, _share("resolution")),
    "sla_first_response_breaches": (Interaction, _breaches("first_response")),
    "sla_resolution_breaches": (Interaction, _breaches("resolution")),
    "cashout_on_time_response_rate": (Cashout, _share("response")),
})


def is_percentile(kpi: str) -> bool:
    return kpi.rsplit("_", 1)[-1] in ("p50", "p90", "p95", "p99")


ANCHOR = {Interaction: "created_at", SurveyResponse: "submitted_at", Cashout: "requested_at", SystemCheck: "at"}


def period_start(moment: datetime, zone: ZoneInfo, granularity: str, range_start: datetime) -> datetime:
    """The UTC start of the local period holding `moment`."""
    if granularity == "total":
        return range_start
    local = moment.astimezone(zone)
    if granularity == "hour":
        return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    day = local.date()
    if granularity == "week":
        day -= timedelta(days=day.weekday())
    elif granularity == "month":
        day = day.replace(day=1)
    return midnight(day, zone)


def midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def next_boundary(moment: datetime, zone: ZoneInfo, granularity: str) -> datetime:
    if granularity == "total":
        return moment + timedelta(minutes=15)
    if granularity == "hour":
        return moment + timedelta(hours=1)
    day = moment.astimezone(zone).date()
    if granularity == "day":
        return midnight(day + timedelta(days=1), zone)
    if granularity == "week":
        return midnight(day + timedelta(days=7), zone)
    month = day.replace(day=28) + timedelta(days=4)
    return midnight(month.replace(day=1), zone)


def reference_kpi(*, kpi: str, departments: dict, start: datetime, end: datetime, zone: ZoneInfo,
                  granularity: str, group_by=(), agents=(), channels=(), agent_scope: dict | None = None,
                  topics=(), checks=(), regions=()):
    """{group key tuple: {"value", "sample_size", "periods": {period start: (value, sample)}}}.

    departments: {department id: slug}; agent_scope: {department id: the only agent it may see}.
    """
    models, function = REFERENCE[kpi]
    models = models if isinstance(models, tuple) else (models,)
    if kpi in WINDOWED:  # each value sees the window it covers and the first contacts
        windowed, firsts = function, first_contacts(departments)
        starts = period_starts(start, end, zone, granularity)
        ends = dict(zip(starts, [*starts[1:], end], strict=True))
        whole = (start, end)

        # Grouped by department: the group's own (None: read off the group's records); else every one.
        scope = None if "department" in group_by else set(departments)

        def function(rs, span=whole):
            return windowed(rs, (*span, firsts, scope))
    agent_scope = agent_scope or {}
    grouped: dict[tuple, list] = defaultdict(list)
    records = [r for model in models for r in model.objects.filter(department_id__in=list(departments))]
    _gaps_attach(records)
    for record in records:
        moment = getattr(record, ANCHOR[type(record)])
        if not (start <= moment < end):
            continue
        agent = getattr(record, "agent", None) or None
        channel = getattr(record, "channel", None) or None
        if record.department_id in agent_scope and agent != agent_scope[record.department_id]:
            continue
        if agents and agent not in agents:
            continue
        if channels and channel not in channels:
            continue
        topic = getattr(record, "topic", None) or None
        if topics and topic not in topics:
            continue
        check = getattr(record, "check_name", None) or None
        if checks and check not in checks:
            continue
        region = getattr(record, "customer_region", None) or None
        if regions and region not in regions:
            continue
        local = moment.astimezone(zone)
        values = {"agent": agent, "channel": channel, "department": departments[record.department_id],
                  "topic": topic, "check": check, "customer_region": region, "weekday": local.isoweekday(),
                  "hour_of_day": local.hour}
        grouped[tuple(values[g] for g in group_by)].append(record)
    out = {}
    for key, records in grouped.items():
        value, sample = function(records)
        periods: dict[datetime, list] = defaultdict(list)
        for record in records:
            # A first period that is not whole is clipped to the range: it starts at the range start.
            moment = period_start(getattr(record, ANCHOR[type(record)]), zone, granularity, start)
            periods[max(moment, start)].append(record)
        out[key] = {"value": value, "sample_size": sample,
                    "periods": {p: function(rs, (p, ends[p])) if kpi in WINDOWED else function(rs)
                                for p, rs in periods.items()}}
    return out


def period_starts(start: datetime, end: datetime, zone: ZoneInfo, granularity: str) -> list[datetime]:
    """The starts of the range's periods: the range start, then every natural boundary inside it."""
    if granularity == "total":
        return [start]
    starts, moment = [start], period_start(start, zone, granularity, start)
    while (moment := next_boundary(moment, zone, granularity)) < end:
        if moment > starts[-1]:
            starts.append(moment)
    return starts


def empty_value(kpi: str):
    if kpi in WINDOWED:
        return REFERENCE[kpi][1]([], (None, None, {}, set()))
    return REFERENCE[kpi][1]([])
