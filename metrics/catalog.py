"""The KPI catalog: the measures of each record type, and every KPI as one declaration over them.

A measure is a COUNT, a SUM or a quantile sketch over the raw records of one type, restricted by a
filter (`metrics.measures`). Cube tables store one state per measure per bucket; a KPI's value over
any range is a formula over the merged states (never an average of per-period values). A formula
may combine measures of several record types. Adding a KPI is adding an entry to `KPIS`.
"""

from dataclasses import dataclass
from functools import cached_property

from django.db.models import Q

from cskpi.choices import ReadLevel
from ingestion.choices import CashoutStatus, InteractionStatus, RecordType, SurveyKind
from ingestion.fields import SPEC_BY_TYPE
from metrics.measures import COUNT, QUANTILE, STOCK, SUM, Measure, StockState, sketch_quantile

_I, _S, _C, _U = RecordType.INTERACTION, RecordType.SURVEY, RecordType.CASHOUT, RecordType.CUSTOMER

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


# Durations: the same filter for the mean's sum and count and for the quantile sketch.
_FIRST_RESPONSE = _has("first_response_seconds")
_RESOLUTION = _RESOLVED & _has("resolution_seconds")
_WAIT = _has("wait_seconds")
_HANDLE = _has("handle_seconds")
_PROCESSING = _SETTLED & _has("processing_seconds")
_RESPONSE = _has("response_seconds")

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
    ),
    # The registry: each customer is in from started_at, out at ended_at (a stock, counted and by MRR).
    _U: (
        Measure("customers", _U, STOCK, None, None, "customers: in at started_at, out at ended_at"),
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
    MONEY = "money"  # in the departments' reporting currency

    ALL = (COUNT, SECONDS, PERCENT, SCORE, MONEY)


@dataclass(frozen=True)
class Formula:
    """How a KPI's value and sample size come out of merged measure states.

    count(c): value c, sample c.  ratio(num, den): num / den × 100, sample den.
    mean(sum, n): sum / n, sample n.  nps(promoters, detractors, n): (p − d) / n × 100, sample n.
    quantile(sketch, q): the nearest-rank q-quantile (⌈q·n⌉-th smallest), sample n.
    Over stocks (`parts` = the stock, then the counted stock giving the sample size):
    level: the level at the end (closing), sample the count at the end. entered / left: the ins /
    outs within the range. kept: (opening − outs of the opening) / opening × 100; lost: outs of the
    opening / opening × 100, sample the count at the start.
    A zero denominator (or an empty sketch) gives null.
    """

    kind: str
    parts: tuple[str, ...]
    q: float | None = None

    def evaluate(self, states: dict) -> tuple[float | int | None, int]:
        if self.kind == "quantile":
            return sketch_quantile(states.get(self.parts[0]) or [], self.q)
        if self.kind in _STOCK_FORMULAS:
            return _STOCK_FORMULAS[self.kind](*(states.get(p) or _NO_STOCK for p in self.parts))
        values = [states.get(p, 0) for p in self.parts]
        if self.kind == "count":
            count = int(values[0])
            return count, count
        denominator = int(values[-1])
        if denominator == 0:
            return None, 0
        if self.kind == "ratio":
            return values[0] / denominator * 100, denominator
        if self.kind == "mean":
            return values[0] / denominator, denominator
        if self.kind == "nps":
            return (values[0] - values[1]) / denominator * 100, denominator
        raise ValueError(f"unknown formula kind {self.kind}")


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

# Across record types: csat surveys returned per resolved interaction.
_ACROSS = (
    Kpi("survey_response_rate", "CSAT survey response rate", "Tỷ lệ phản hồi khảo sát CSAT", Unit.PERCENT, True,
        "csat responses / resolved interactions × 100 (surveys by submitted_at, interactions by created_at)",
        ratio("csat_responses", "resolved")),
)

# The customer registry: active at t ⇔ started_at < t and (no ended_at or ended_at ≥ t).
_REGISTRY = (
    Kpi("customer_base", "Customer base", "Số khách hàng hiện có", Unit.COUNT, True,
        "customers active at the end of the range (of each period): started_at < end and (no ended_at or "
        "ended_at ≥ end)", level("customers")),
    Kpi("customers_started", "Customers started", "Khách hàng mới", Unit.COUNT, True,
        "count of customers with started_at in the range", entered("customers")),
    Kpi("customers_churned", "Customers churned", "Khách hàng rời bỏ", Unit.COUNT, False,
        "count of customers with ended_at in the range", left("customers")),
    Kpi("retention_rate", "Customer retention rate", "Tỷ lệ giữ chân khách hàng", Unit.PERCENT, True,
        "(customers active at the end − those of them who started in the range) / customers active at the "
        "start × 100", kept("customers")),
    Kpi("churn_rate", "Customer churn rate", "Tỷ lệ khách hàng rời bỏ", Unit.PERCENT, False,
        "customers active at the start who ended in the range / customers active at the start × 100",
        lost("customers")),
    Kpi("mrr", "Monthly recurring revenue (MRR)", "Doanh thu định kỳ hàng tháng (MRR)", Unit.MONEY, True,
        "sum of mrr of the customers active at the end of the range (of each period), in the reporting "
        "currency; sample size: those customers", level("mrr", "customers")),
    Kpi("revenue_churn_rate", "Revenue churn rate", "Tỷ lệ doanh thu rời bỏ", Unit.PERCENT, False,
        "mrr of the customers active at the start who ended in the range / mrr of the customers active at "
        "the start × 100", lost("mrr", "customers")),
)

KPIS: dict[str, Kpi] = {k.key: k for k in (*_BASE, *_CONTACT_SPLIT, *_PERCENTILE_KPIS, *_ACROSS, *_REGISTRY)}

