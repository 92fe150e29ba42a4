"""The KPI catalog: the measures of each record type, and every KPI as one declaration over them.

A measure is a COUNT, a SUM, a quantile sketch, a gap to the predecessor, a time in state or an exact distinct set over the raw records of one type, restricted by a
filter (`metrics.measures`). Cube tables store one state per measure per bucket; a KPI's value over
any range is a formula over the merged states (never an average of per-period values). A formula
may combine measures of several record types. Adding a KPI is adding an entry to `KPIS`.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property

from django.db.models import Q
from pyroaring import BitMap

from cskpi.choices import ReadLevel
from ingestion.choices import (
    AgentStatus,
    CashoutStatus,
    CheckOutcome,
    InteractionStatus,
    RecordType,
    SlaState,
    SurveyKind,
)
from ingestion.fields import SPEC_BY_TYPE
from metrics.measures import (
    COUNT,
    DISTINCT_SET,
    FIRST_CONTACT_SET,
    QUANTILE,
    STOCK,
    SUM,
    GapCount,
    GapSum,
    Measure,
    StockState,
    TimeInState,
    sketch_quantile,
)

_I, _S, _C = RecordType.INTERACTION, RecordType.SURVEY, RecordType.CASHOUT
_A, _K, _U = RecordType.AGENT_EVENT, RecordType.SYSTEM_CHECK, RecordType.CUSTOMER

_RESOLVED = Q(status=InteractionStatus.RESOLVED)
_SETTLED = Q(status__in=[CashoutStatus.SUCCEEDED, CashoutStatus.FAILED])


def _has(field_name: str) -> Q:
    return Q(**{f"{field_name}__isnull": False})


def _count(record_type, key, where=None, doc=""):
    return Measure(key, record_type, COUNT, None, where, doc)


def _sum(record_type, key, field, where=None, doc=""):
    return Measure(key, record_type, SUM, field, where, doc)


def _sketch(record_type, key, field, where=None, doc=""):
    return Measure(key, record_type, QUANTILE, field, where, doc)


def _time_in(record_type, key, *states, doc=""):
    return Measure(key, record_type, TimeInState(*states), "status", Q(status__in=states), doc)


# Durations: the same filter for the mean's sum and count and for the quantile sketch.
_FIRST_RESPONSE = _has("first_response_seconds")
_RESOLUTION = _RESOLVED & _has("resolution_seconds")
_WAIT = _has("wait_seconds")
_HANDLE = _has("handle_seconds")
_PROCESSING = _SETTLED & _has("processing_seconds")
# A system check's predecessor: the previous run of the same check in the department (its series).
_CHECK_SERIES = {"model": SPEC_BY_TYPE[_K].model, "anchor": SPEC_BY_TYPE[_K].anchor, "series": SPEC_BY_TYPE[_K].series}
_RESPONSE = _has("response_seconds")
# Business-hours durations: the mean's count is the calendar duration's (every record with a first
# response, or resolved, has both).


def _sla(key: str, state: str) -> Q:
    return Q(**{f"{key}_sla": state})

MEASURES: dict[str, tuple[Measure, ...]] = {
    _I: (
        _count(_I, "interactions", doc="interactions"),
        _count(_I, "resolved", _RESOLVED, "status resolved"),
        _sum(_I, "first_response_seconds_sum", "first_response_seconds", _FIRST_RESPONSE),
        _count(_I, "first_responses", _FIRST_RESPONSE, "with a first response"),
        _sketch(_I, "first_response_seconds_sketch", "first_response_seconds", _FIRST_RESPONSE),
        _sum(_I, "resolution_seconds_sum", "resolution_seconds", _RESOLUTION),
        _count(_I, "resolutions", _RESOLUTION, "resolved, with resolved_at"),
        _sketch(_I, "resolution_seconds_sketch", "resolution_seconds", _RESOLUTION),
        _count(_I, "resolved_first_contact", _RESOLVED & Q(contact_count=1), "resolved on the 1st contact"),
        _count(_I, "resolved_second_contact", _RESOLVED & Q(contact_count=2), "resolved on the 2nd contact"),
        _count(_I, "resolved_third_contact", _RESOLVED & Q(contact_count=3), "resolved on the 3rd contact"),
        _count(_I, "resolved_later_contact", _RESOLVED & Q(contact_count__gte=4), "resolved on the 4th or later"),
        _count(_I, "unresolved", Q(status__in=[InteractionStatus.OPEN, InteractionStatus.PENDING]),
               "status open or pending"),
        _count(_I, "abandoned", Q(status=InteractionStatus.ABANDONED), "status abandoned"),
        _sum(_I, "wait_seconds_sum", "wait_seconds", _WAIT),
        _count(_I, "waits", _WAIT, "with wait_seconds"),
        _sketch(_I, "wait_seconds_sketch", "wait_seconds", _WAIT),
        _sum(_I, "handle_seconds_sum", "handle_seconds", _HANDLE),
        _count(_I, "handles", _HANDLE, "with handle_seconds"),
        _sketch(_I, "handle_seconds_sketch", "handle_seconds", _HANDLE),
        _count(_I, "self_served", Q(self_service=True), "self_service true"),
        _count(_I, "missed", Q(status=InteractionStatus.MISSED), "status missed"),
        Measure("customers", _I, DISTINCT_SET, "customer", doc="distinct customers (interactions with one)"),
        Measure("first_contact_customers", _I, FIRST_CONTACT_SET, "customer",
                doc="customers whose first interaction with the department is in the bucket (department-wide)"),
        _sum(_I, "first_response_business_seconds_sum", "first_response_business_seconds", _FIRST_RESPONSE),
        _sum(_I, "resolution_business_seconds_sum", "resolution_business_seconds", _RESOLUTION),
        _count(_I, "sla_first_response_met", _sla("first_response", SlaState.MET), "first response within target"),
        _count(_I, "sla_first_response_breached", _sla("first_response", SlaState.BREACHED),
               "first response late, or none and overdue"),
        _count(_I, "sla_resolution_met", _sla("resolution", SlaState.MET), "resolved within target"),
        _count(_I, "sla_resolution_breached", _sla("resolution", SlaState.BREACHED),
               "resolved late, or unresolved and overdue"),
    ),
    _S: (
        _count(_S, "csat_responses", Q(kind=SurveyKind.CSAT)),
        _count(_S, "csat_satisfied", Q(kind=SurveyKind.CSAT, score__gte=4), "csat score >= 4"),
        _sum(_S, "csat_score_sum", "score", Q(kind=SurveyKind.CSAT)),
        _count(_S, "nps_responses", Q(kind=SurveyKind.NPS)),
        _count(_S, "nps_promoters", Q(kind=SurveyKind.NPS, score__gte=9), "nps score 9-10"),
        _count(_S, "nps_detractors", Q(kind=SurveyKind.NPS, score__lte=6), "nps score 0-6"),
        _sum(_S, "ces_score_sum", "score", Q(kind=SurveyKind.CES)),
        _count(_S, "ces_responses", Q(kind=SurveyKind.CES)),
        _sum(_S, "qa_score_sum", "score", Q(kind=SurveyKind.QA)),
        _count(_S, "qa_reviews", Q(kind=SurveyKind.QA)),
    ),
    _C: (
        _count(_C, "cashouts"),
        _count(_C, "settled", _SETTLED, "succeeded or failed"),
        _count(_C, "succeeded", Q(status=CashoutStatus.SUCCEEDED)),
        _count(_C, "failed", Q(status=CashoutStatus.FAILED)),
        _sum(_C, "processing_seconds_sum", "processing_seconds", _PROCESSING),
        _count(_C, "processed", _PROCESSING, "settled, with completed_at"),
        _sketch(_C, "processing_seconds_sketch", "processing_seconds", _PROCESSING),
        _sum(_C, "response_seconds_sum", "response_seconds", _RESPONSE),
        _count(_C, "responses", _RESPONSE, "with a first response"),
        _sketch(_C, "response_seconds_sketch", "response_seconds", _RESPONSE),
        _count(_C, "cashout_response_met", _sla("response", SlaState.MET), "first response within target"),
        _count(_C, "cashout_response_breached", _sla("response", SlaState.BREACHED),
               "first response late, or none and overdue"),
    ),
    _A: (
        _time_in(_A, "available_seconds", AgentStatus.AVAILABLE, doc="seconds agents spent available"),
        _time_in(_A, "busy_seconds", AgentStatus.BUSY, doc="seconds agents spent busy"),
        _time_in(_A, "away_seconds", AgentStatus.AWAY, doc="seconds agents spent away"),
    ),
    _K: (
        _count(_K, "system_checks"),
        _count(_K, "system_checks_failed", Q(outcome=CheckOutcome.FAILED), "outcome failed"),
        # Each check's gap to the previous run of the same check (metrics.measures.predecessor_gap).
        Measure("check_interval_seconds_sum", _K, GapSum(**_CHECK_SERIES),
                doc="seconds since the previous run of the check"),
        Measure("check_intervals", _K, GapCount(**_CHECK_SERIES), doc="checks with a previous run of the same check"),
    ),
    # The registry: each customer is in from started_at, out at ended_at (a stock, counted and by MRR).
    _U: (
        Measure("registry_customers", _U, STOCK, None, None, "customers: in at started_at, out at ended_at"),
        Measure("mrr", _U, STOCK, "mrr", None, "the customers' mrr: in at started_at, out at ended_at"),
    ),
}
MEASURES_BY_KEY: dict[str, Measure] = {m.key: m for measures in MEASURES.values() for m in measures}
assert len(MEASURES_BY_KEY) == sum(map(len, MEASURES.values())), "measure keys are unique across record types"


class Unit:
    COUNT = "count"
    SECONDS = "seconds"
    PERCENT = "percent"
    SCORE = "score"
    AGENTS = "agents"  # an average number of agents
    PER_HOUR = "per_hour"
    MONEY = "money"  # in the departments' reporting currency

    ALL = (COUNT, SECONDS, PERCENT, SCORE, AGENTS, PER_HOUR, MONEY)


@dataclass(frozen=True)
class Formula:
    """How a KPI's value and sample size come out of merged measure states.

    count(c): value c, sample c.  ratio(num, den): num / den × 100, sample den.
    mean(sum, n): sum / n, sample n.  nps(promoters, detractors, n): (p − d) / n × 100, sample n.
    quantile(sketch, q): the nearest-rank q-quantile (⌈q·n⌉-th smallest), sample n.
    total(sum, n): the sum itself, sample n.  seconds(s…): s summed, sample its whole seconds.
    share(part, others…): part / (part + others) × 100, sample the sum (whole seconds for durations;
    met against met + breached for SLA attainment).
    per_hour(c, s…): c / (Σs / 3600), sample c.  per_span(s…): Σs / the seconds of the period elapsed
    until now (a period wholly to come: null), sample the whole seconds of Σs.
    distinct(set): |set|, sample the same.  intersection(a, b): |a ∩ b|.  difference(a, b): |a − b|.
    Over stocks (`parts` = the stock, then the counted stock giving the sample size):
    level: the level at the end (closing), sample the count at the end. entered / left: the ins /
    outs within the range. kept: (opening − outs of the opening) / opening × 100; lost: outs of the
    opening / opening × 100, sample the count at the start.
    A zero denominator (or an empty sketch) gives null.
    """

    kind: str
    parts: tuple[str, ...]
    q: float | None = None

    def evaluate(self, states: dict, span_seconds: float | None = None) -> tuple[float | int | None, int]:
        """Value and sample size; `span_seconds` is how long the period (or range) evaluated lasts, up
        to now (only `per_span` reads it)."""
        return self.evaluator(states, span_seconds)

    @cached_property
    def evaluator(self) -> Callable[[Mapping, float | None], tuple[float | int | None, int]]:
        """`evaluate` with the kind and the parts decided once: a series evaluates it per cell (a
        year by day of 150 groups and 4 KPIs: 219,000 cells)."""
        on_values = self.on_values
        if on_values is None:
            return _evaluator(self.kind, self.parts, self.q)
        parts = self.parts
        return lambda states, span=None: on_values(tuple([states.get(p, 0) for p in parts]), span)

    @cached_property
    def on_values(self) -> Callable[[tuple, float | None], tuple[float | int | None, int]] | None:
        """For a formula over additive parts (counts, sums, seconds): the function of (the parts' values in
        `parts` order, span seconds) giving (value, sample size), so a reader holding a row of values can
        hand them over without a mapping per cell (asking the kind and building the values per cell was
        most of a large answer's Python time). None for the other kinds (sketches, sets, stocks)."""
        return _on_values(self.kind)

    @cached_property
    def on_columns(self) -> Callable[[tuple, tuple], tuple[list, list]] | None:
        """`on_values` over a whole series at once: (the parts' columns, each a sequence over the periods in
        `parts` order, the periods' span seconds) -> (values, sample sizes), lists over the periods. The
        same arithmetic per cell as `on_values` (a test holds them equal), in list comprehensions: a
        function call per cell was most of an hourly month's evaluation. None where `on_values` is."""
        return _on_columns(self.kind)


def _on_columns(kind: str):
    """The function of (columns, spans) for an additive formula `kind`, else None (see `on_values`)."""
    if kind == "count":
        def count_columns(columns, spans):
            counts = list(map(int, columns[0]))
            return counts, list(counts)
        return count_columns
    if kind == "total":
        return lambda columns, spans: (list(map(float, columns[0])), list(map(int, columns[1])))
    if kind in ("seconds", "share", "per_hour", "per_span"):
        scalar = _on_values(kind)

        def cell_columns(columns, spans):  # rare in long series: the scalar formula per cell
            cells = [scalar(values, span) for values, span in zip(zip(*columns, strict=True), spans, strict=True)]
            return [c[0] for c in cells], [c[1] for c in cells]
        return cell_columns
    if kind not in ("ratio", "mean", "nps"):
        return None

    def denominator_columns(columns, spans):  # over the last part, a count: null when zero
        denominators = list(map(int, columns[-1]))
        if kind == "ratio":
            values = [a / d * 100 if d else None for a, d in zip(columns[0], denominators, strict=True)]
        elif kind == "mean":
            values = [a / d if d else None for a, d in zip(columns[0], denominators, strict=True)]
        else:
            values = [(p - m) / d * 100 if d else None
                      for p, m, d in zip(columns[0], columns[1], denominators, strict=True)]
        return values, denominators
    return denominator_columns


def _evaluator(kind: str, parts: tuple[str, ...], q: float | None):
    """The function of (states, span seconds) giving (value, sample size), for the kinds whose parts
    are not additive numbers."""
    if kind == "quantile":
        [sketch] = parts
        return lambda states, span=None: sketch_quantile(states.get(sketch), q)
    if kind in _SET_FORMULAS:
        measure = _SET_FORMULAS[kind]

        def on_sets(states, span=None):
            n = measure(*(states.get(p) or _NO_SET for p in parts))
            return n, n
        return on_sets
    if kind in _STOCK_FORMULAS:
        measure = _STOCK_FORMULAS[kind]
        return lambda states, span=None: measure(*(states.get(p) or _NO_STOCK for p in parts))
    raise ValueError(f"unknown formula kind {kind}")


def _on_values(kind: str):
    """The function of (values, span seconds) for an additive formula `kind`, else None."""
    if kind == "count":
        def on_count(values, span=None):
            count = int(values[0])
            return count, count
        return on_count
    if kind == "total":
        return lambda values, span=None: (float(values[0]), int(values[1]))
    if kind == "seconds":
        def on_seconds(values, span=None):
            total = float(sum(values))
            return total, int(total)
        return on_seconds
    if kind == "share":
        def on_share(values, span=None):
            whole = float(sum(values))
            return (values[0] / whole * 100, int(whole)) if whole > 0 else (None, 0)
        return on_share
    if kind == "per_hour":
        def on_per_hour(values, span=None):
            online = float(sum(values[1:]))
            return (values[0] / online * 3600, int(values[0])) if online > 0 else (None, 0)
        return on_per_hour
    if kind == "per_span":
        def on_per_span(values, span=None):
            total = float(sum(values))
            return (total / span, int(total)) if span else (None, 0)
        return on_per_span
    if kind not in ("ratio", "mean", "nps"):
        return None

    def on_denominator(values, span=None):  # over the last part, a count: null when zero
        denominator = int(values[-1])
        if denominator == 0:
            return None, 0
        if kind == "ratio":
            return values[0] / denominator * 100, denominator
        if kind == "mean":
            return values[0] / denominator, denominator
        return (values[0] - values[1]) / denominator * 100, denominator
    return on_denominator


_NO_SET = BitMap()
_SET_FORMULAS = {
    "distinct": len,
    "intersection": lambda a, b: a.intersection_cardinality(b),
    "difference": lambda a, b: len(a) - a.intersection_cardinality(b),
}


def count(c: str) -> Formula:
    return Formula("count", (c,))


def ratio(numerator: str, denominator: str) -> Formula:
    return Formula("ratio", (numerator, denominator))


def mean(total: str, n: str) -> Formula:
    return Formula("mean", (total, n))


def nps(promoters: str, detractors: str, n: str) -> Formula:
    return Formula("nps", (promoters, detractors, n))


def quantile(sketch: str, q: float) -> Formula:
    return Formula("quantile", (sketch,), q)


def total(amount: str, n: str) -> Formula:
    return Formula("total", (amount, n))


def seconds(*parts: str) -> Formula:
    return Formula("seconds", parts)


def share(part: str, *others: str) -> Formula:
    return Formula("share", (part, *others))


def per_hour(amount: str, *seconds_parts: str) -> Formula:
    return Formula("per_hour", (amount, *seconds_parts))


def per_span(*parts: str) -> Formula:
    return Formula("per_span", parts)




def distinct(members: str) -> Formula:
    return Formula("distinct", (members,))


def intersection(members: str, of: str) -> Formula:
    return Formula("intersection", (members, of))


def difference(members: str, without: str) -> Formula:
    return Formula("difference", (members, without))


_NO_STOCK = StockState(0, 0, 0, 0)


def _number(value) -> int | float:
    return value if isinstance(value, int) else float(value)


def _stock_level(stock: StockState, counted: StockState | None = None):
    counted = counted or stock
    return _number(stock.closing), int(counted.closing)


def _stock_rate(numerator, stock: StockState, counted: StockState | None):
    counted = counted or stock
    if stock.opening == 0 or counted.opening == 0:
        return None, 0
    return float(numerator) / float(stock.opening) * 100, int(counted.opening)


_STOCK_FORMULAS = {
    "level": _stock_level,
    "entered": lambda stock: (_number(stock.ins), int(stock.ins)),
    "left": lambda stock: (_number(stock.outs), int(stock.outs)),
    "kept": lambda stock, counted=None: _stock_rate(stock.opening - stock.outs_of_opening, stock, counted),
    "lost": lambda stock, counted=None: _stock_rate(stock.outs_of_opening, stock, counted),
}


def level(stock: str, counted: str | None = None) -> Formula:
    return Formula("level", (stock, counted) if counted else (stock,))


def entered(stock: str) -> Formula:
    return Formula("entered", (stock,))


def left(stock: str) -> Formula:
    return Formula("left", (stock,))


def kept(stock: str, counted: str | None = None) -> Formula:
    return Formula("kept", (stock, counted) if counted else (stock,))


def lost(stock: str, counted: str | None = None) -> Formula:
    return Formula("lost", (stock, counted) if counted else (stock,))


FORMULA_KINDS = ("count", "ratio", "mean", "nps", "quantile", "total", "seconds", "share", "per_hour", "per_span",
                 "distinct", "intersection", "difference", "level", "entered", "left", "kept", "lost")


# The time that places a record in a period, as each record type declares it (ingestion.fields); a
# stock is placed by its start and its end.
ANCHORS = {record_type: spec.anchor or f"{spec.start}, {spec.end}" for record_type, spec in SPEC_BY_TYPE.items()}


@dataclass(frozen=True)
class Kpi:
    key: str
    label_en: str
    label_vi: str
    unit: str
    higher_is_better: bool
    formula_text: str
    formula: Formula

    @property
    def components(self) -> tuple[str, ...]:
        return self.formula.parts

    @cached_property
    def record_types(self) -> tuple[str, ...]:
        """The record types its measures come from, in formula order."""
        return tuple(dict.fromkeys(MEASURES_BY_KEY[p].record_type for p in self.formula.parts))

    @property
    def record_type(self) -> str:
        return self.record_types[0]

    @property
    def anchor(self) -> str:
        return ANCHORS[self.record_type]

    def label(self, language: str) -> str:
        return self.label_vi if language == "vi" else self.label_en

    @cached_property
    def read_level(self) -> ReadLevel:
        """The read level a caller needs for this KPI: the highest any field it reads is redacted below
        on the records (MRR: managers and staff, like the field on registry records)."""
        levels = [ReadLevel.AGENT]
        for part in self.formula.parts:
            measure = MEASURES_BY_KEY[part]
            spec_field = SPEC_BY_TYPE[measure.record_type].field_named(measure.field) if measure.field else None
            if spec_field is not None and spec_field.redacted_below is not None:
                levels.append(spec_field.redacted_below)
        return max(levels)

    @property
    def stock(self) -> bool:
        """A level over time (its value at a period's end holds everything before it)."""
        return any(MEASURES_BY_KEY[p].kind.opening() for p in self.formula.parts)


_BASE = (
    Kpi("interactions", "Interactions", "Số lượng yêu cầu", Unit.COUNT, True,
        "count of interactions", count("interactions")),
    Kpi("tickets_handled", "Tickets handled", "Số yêu cầu đã xử lý", Unit.COUNT, True,
        "count of interactions with status resolved", count("resolved")),
    Kpi("first_response_time", "First response time (FRT)", "Thời gian phản hồi lần đầu (FRT)",
        Unit.SECONDS, False, "mean(first_response_at − created_at) over interactions with a first response",
        mean("first_response_seconds_sum", "first_responses")),
    Kpi("resolution_time", "Resolution time", "Thời gian giải quyết", Unit.SECONDS, False,
        "mean(resolved_at − created_at) over resolved interactions",
        mean("resolution_seconds_sum", "resolutions")),
    Kpi("fcr_rate", "First contact resolution (FCR)", "Giải quyết ngay lần đầu (FCR)", Unit.PERCENT, True,
        "resolved with contact_count = 1 / resolved × 100", ratio("resolved_first_contact", "resolved")),
    Kpi("abandonment_rate", "Abandonment rate", "Tỷ lệ bỏ cuộc", Unit.PERCENT, False,
        "abandoned / interactions × 100", ratio("abandoned", "interactions")),
    Kpi("average_wait_time", "Average wait time", "Thời gian chờ trung bình", Unit.SECONDS, False,
        "mean(wait_seconds) over interactions with it", mean("wait_seconds_sum", "waits")),
    Kpi("average_handle_time", "Average handle time (AHT)", "Thời gian xử lý trung bình (AHT)",
        Unit.SECONDS, False, "mean(handle_seconds) over interactions with it", mean("handle_seconds_sum", "handles")),
    Kpi("self_service_rate", "Self-service rate", "Tỷ lệ tự phục vụ", Unit.PERCENT, True,
        "self_service / interactions × 100", ratio("self_served", "interactions")),
    Kpi("missed_calls", "Missed calls", "Cuộc gọi nhỡ", Unit.COUNT, False,
        "count of interactions with status missed", count("missed")),
    Kpi("csat", "Customer satisfaction (CSAT)", "Mức độ hài lòng (CSAT)", Unit.PERCENT, True,
        "csat responses with score ≥ 4 / csat responses × 100", ratio("csat_satisfied", "csat_responses")),
    Kpi("csat_score", "Average satisfaction score", "Điểm hài lòng trung bình", Unit.SCORE, True,
        "mean csat score (1–5)", mean("csat_score_sum", "csat_responses")),
    Kpi("nps", "Net promoter score (NPS)", "Chỉ số khuyến nghị (NPS)", Unit.SCORE, True,
        "% nps scores 9–10 − % nps scores 0–6 (−100..100)", nps("nps_promoters", "nps_detractors", "nps_responses")),
    Kpi("ces", "Customer effort score (CES)", "Chỉ số nỗ lực khách hàng (CES)", Unit.SCORE, False,
        "mean ces score (1–7)", mean("ces_score_sum", "ces_responses")),
    Kpi("qa_score", "Quality review score", "Chất lượng tư vấn", Unit.SCORE, True,
        "mean qa score (0–100)", mean("qa_score_sum", "qa_reviews")),
    Kpi("cashout_requests", "Cashout requests", "Số yêu cầu rút tiền", Unit.COUNT, True,
        "count of cashouts", count("cashouts")),
    Kpi("cashout_processing_time", "Cashout processing time", "Thời gian xử lý rút tiền", Unit.SECONDS,
        False, "mean(completed_at − requested_at) over succeeded or failed cashouts",
        mean("processing_seconds_sum", "processed")),
    Kpi("cashout_response_time", "Cashout response time", "Thời gian phản hồi khách hàng", Unit.SECONDS,
        False, "mean(first_response_at − requested_at) over cashouts with a first response",
        mean("response_seconds_sum", "responses")),
    Kpi("cashout_success_rate", "Cashout success rate", "Tỷ lệ thành công", Unit.PERCENT, True,
        "succeeded / (succeeded + failed) × 100", ratio("succeeded", "settled")),
    Kpi("cashout_error_rate", "Cashout error rate", "Tỷ lệ lỗi", Unit.PERCENT, False,
        "failed / (succeeded + failed) × 100", ratio("failed", "settled")),
)

# The contact-attempt split of resolved interactions, and those still open (the service dashboard).
_CONTACT_SPLIT = (
    Kpi("resolved_contact_1", "Resolved on the 1st contact", "Giải quyết ở lần liên hệ thứ 1", Unit.COUNT, True,
        "count of resolved interactions with contact_count = 1", count("resolved_first_contact")),
    Kpi("resolved_contact_2", "Resolved on the 2nd contact", "Giải quyết ở lần liên hệ thứ 2", Unit.COUNT, True,
        "count of resolved interactions with contact_count = 2", count("resolved_second_contact")),
    Kpi("resolved_contact_3", "Resolved on the 3rd contact", "Giải quyết ở lần liên hệ thứ 3", Unit.COUNT, True,
        "count of resolved interactions with contact_count = 3", count("resolved_third_contact")),
    Kpi("resolved_contact_4_plus", "Resolved on the 4th contact or later", "Giải quyết từ lần liên hệ thứ 4",
        Unit.COUNT, False, "count of resolved interactions with contact_count ≥ 4", count("resolved_later_contact")),
    Kpi("unresolved", "Unresolved", "Chưa giải quyết", Unit.COUNT, False,
        "count of interactions with status open or pending", count("unresolved")),
)

# Percentiles of every duration KPI: the nearest-rank value, within max(1 %, 1 s).
_PERCENTILES = (50, 90, 95, 99)
_DURATIONS = (
    ("first_response_time", "first_response_seconds_sketch", "First response time", "Thời gian phản hồi lần đầu"),
    ("resolution_time", "resolution_seconds_sketch", "Resolution time", "Thời gian giải quyết"),
    ("average_wait_time", "wait_seconds_sketch", "Wait time", "Thời gian chờ"),
    ("average_handle_time", "handle_seconds_sketch", "Handle time", "Thời gian xử lý"),
    ("cashout_processing_time", "processing_seconds_sketch", "Cashout processing time",
     "Thời gian xử lý rút tiền"),
    ("cashout_response_time", "response_seconds_sketch", "Cashout response time", "Thời gian phản hồi khách hàng"),
)
_PERCENTILE_KPIS = tuple(
    Kpi(f"{key}_p{p}", f"{label_en}, {p}th percentile", f"{label_vi}, phân vị thứ {p}", Unit.SECONDS, False,
        f"{p}th percentile (nearest rank: the ⌈{p / 100:g}·n⌉-th smallest) of the durations {key} averages; "
        "within max(1 %, 1 s)", quantile(sketch, p / 100))
    for key, sketch, label_en, label_vi in _DURATIONS
    for p in _PERCENTILES
)

# System checks: how often the probes run (per period: the check frequency), how often they fail,
# and the mean time between consecutive runs of one check.
_SYSTEM_CHECKS = (
    Kpi("system_checks", "System checks", "Số lần kiểm tra hệ thống", Unit.COUNT, True,
        "count of system checks", count("system_checks")),
    Kpi("system_check_failure_rate", "System check failure rate", "Tỷ lệ kiểm tra hệ thống thất bại",
        Unit.PERCENT, False, "checks with outcome failed / checks × 100", ratio("system_checks_failed", "system_checks")),
    Kpi("system_check_interval", "System check interval", "Khoảng cách giữa các lần kiểm tra hệ thống",
        Unit.SECONDS, False, "mean seconds between consecutive checks of the same check in the same department, "
        "counted in the period of the later one (the first check ever of a check has none)",
        mean("check_interval_seconds_sum", "check_intervals")),
)

# Across record types: csat surveys returned per resolved interaction.
_ACROSS = (
    Kpi("survey_response_rate", "CSAT survey response rate", "Tỷ lệ phản hồi khảo sát CSAT", Unit.PERCENT, True,
        "csat responses / resolved interactions × 100 (surveys by submitted_at, interactions by created_at)",
        ratio("csat_responses", "resolved")),
)

# Agent presence: time in state from the status events (cut exactly at period edges), and with interactions.
_ONLINE = ("available_seconds", "busy_seconds", "away_seconds")
_PRESENCE = (
    Kpi("agent_online_time", "Agent online time", "Thời gian trực tuyến", Unit.SECONDS, True,
        "seconds agents spent available, busy or away, summed over agents", seconds(*_ONLINE)),
    Kpi("agent_available_time", "Agent available time", "Thời gian sẵn sàng", Unit.SECONDS, True,
        "seconds agents spent available, summed over agents", seconds("available_seconds")),
    Kpi("agent_busy_time", "Agent busy time", "Thời gian bận", Unit.SECONDS, True,
        "seconds agents spent busy, summed over agents", seconds("busy_seconds")),
    Kpi("agent_away_time", "Agent away time", "Thời gian tạm vắng", Unit.SECONDS, False,
        "seconds agents spent away, summed over agents", seconds("away_seconds")),
    Kpi("occupancy", "Occupancy", "Tỷ lệ sử dụng", Unit.PERCENT, True,
        "busy seconds / (busy + available seconds) × 100", share("busy_seconds", "available_seconds")),
    Kpi("average_agents_online", "Average agents online", "Số nhân viên trực tuyến trung bình", Unit.AGENTS,
        True, "online seconds / seconds of the period (up to now)", per_span(*_ONLINE)),
    Kpi("talk_time", "Talk time", "Tổng thời gian đàm thoại", Unit.SECONDS, True,
        "total handle_seconds of interactions (by created_at)", total("handle_seconds_sum", "handles")),
    Kpi("contacts_per_online_hour", "Contacts handled per online hour", "Số yêu cầu xử lý mỗi giờ trực tuyến",
        Unit.PER_HOUR, True, "resolved interactions / online hours (interactions by created_at, online time "
        "from the agents' status events)", per_hour("resolved", *_ONLINE)),
)

# Distinct customers, exact. A customer counts once per group and once overall; new = first interaction
# with the department (over all history) inside the range, so grouped, new in every group used.
_CUSTOMERS = (
    Kpi("customers", "Customers", "Số khách hàng", Unit.COUNT, True,
        "distinct customers with at least one interaction in the range (interactions without a customer "
        "not counted)", distinct("customers")),
    Kpi("new_customers", "New customers", "Khách hàng mới", Unit.COUNT, True,
        "distinct customers of the range whose first interaction with the department (over all history) "
        "falls in the range", intersection("customers", "first_contact_customers")),
    Kpi("returning_customers", "Returning customers", "Khách hàng quay lại", Unit.COUNT, True,
        "customers − new_customers: customers of the range who interacted with the department before it",
        difference("customers", "first_contact_customers")),
)

# Business hours and SLA attainment (the department's calendar and policy; docs/calendars.md).
_SERVICE_LEVELS = (
    Kpi("first_response_time_business", "First response time (business hours)",
        "Thời gian phản hồi lần đầu (giờ làm việc)", Unit.SECONDS, False,
        "mean business seconds from created_at to first_response_at (the open hours of the department's "
        "calendar in between) over interactions with a first response",
        mean("first_response_business_seconds_sum", "first_responses")),
    Kpi("resolution_time_business", "Resolution time (business hours)", "Thời gian giải quyết (giờ làm việc)",
        Unit.SECONDS, False, "mean business seconds from created_at to resolved_at over resolved interactions",
        mean("resolution_business_seconds_sum", "resolutions")),
    Kpi("sla_first_response_rate", "First response SLA attainment", "Tỷ lệ đạt SLA phản hồi lần đầu",
        Unit.PERCENT, True, "met / (met + breached) × 100 against the first-response target; breached: "
        "answered late, or unanswered past the deadline", share("sla_first_response_met",
                                                                "sla_first_response_breached")),
    Kpi("sla_resolution_rate", "Resolution SLA attainment", "Tỷ lệ đạt SLA giải quyết", Unit.PERCENT, True,
        "met / (met + breached) × 100 against the resolution target; breached: resolved late, or unresolved "
        "past the deadline", share("sla_resolution_met", "sla_resolution_breached")),
    Kpi("sla_first_response_breaches", "First response SLA breaches", "Số lần vi phạm SLA phản hồi lần đầu",
        Unit.COUNT, False, "count of interactions answered late or unanswered past the deadline",
        count("sla_first_response_breached")),
    Kpi("sla_resolution_breaches", "Resolution SLA breaches", "Số lần vi phạm SLA giải quyết", Unit.COUNT, False,
        "count of interactions resolved late or unresolved past the deadline", count("sla_resolution_breached")),
    Kpi("cashout_on_time_response_rate", "Cashout on-time response rate", "Tỷ lệ phản hồi rút tiền đúng hạn",
        Unit.PERCENT, True, "met / (met + breached) × 100 of cashouts against cashout_response_seconds (business "
        "or calendar clock); breached: answered late, or unanswered past the deadline",
        share("cashout_response_met", "cashout_response_breached")),
)

# The customer registry: active at t ⇔ started_at < t and (no ended_at or ended_at ≥ t).
_REGISTRY = (
    Kpi("customer_base", "Customer base", "Số khách hàng hiện có", Unit.COUNT, True,
        "customers active at the end of the range (of each period): started_at < end and (no ended_at or "
        "ended_at ≥ end)", level("registry_customers")),
    Kpi("customers_started", "Customers started", "Khách hàng mới", Unit.COUNT, True,
        "count of customers with started_at in the range", entered("registry_customers")),
    Kpi("customers_churned", "Customers churned", "Khách hàng rời bỏ", Unit.COUNT, False,
        "count of customers with ended_at in the range", left("registry_customers")),
    Kpi("retention_rate", "Customer retention rate", "Tỷ lệ giữ chân khách hàng", Unit.PERCENT, True,
        "(customers active at the end − those of them who started in the range) / customers active at the "
        "start × 100", kept("registry_customers")),
    Kpi("churn_rate", "Customer churn rate", "Tỷ lệ khách hàng rời bỏ", Unit.PERCENT, False,
        "customers active at the start who ended in the range / customers active at the start × 100",
        lost("registry_customers")),
    Kpi("mrr", "Monthly recurring revenue (MRR)", "Doanh thu định kỳ hàng tháng (MRR)", Unit.MONEY, True,
        "sum of mrr of the customers active at the end of the range (of each period), in the reporting "
        "currency; sample size: those customers", level("mrr", "registry_customers")),
    Kpi("revenue_churn_rate", "Revenue churn rate", "Tỷ lệ doanh thu rời bỏ", Unit.PERCENT, False,
        "mrr of the customers active at the start who ended in the range / mrr of the customers active at "
        "the start × 100", lost("mrr", "registry_customers")),
)

KPIS: dict[str, Kpi] = {k.key: k for k in (*_BASE, *_CONTACT_SPLIT, *_PERCENTILE_KPIS, *_SYSTEM_CHECKS, *_ACROSS,
                                       *_PRESENCE, *_CUSTOMERS, *_SERVICE_LEVELS, *_REGISTRY)}

