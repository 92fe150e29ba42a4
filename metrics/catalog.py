"""The KPI catalog: additive components per record type, and every KPI as one declaration over them.

A component is a COUNT or a SUM over the raw records of one type, restricted by a filter. Aggregate
tables store components per bucket; a KPI's value over any range is a formula over the summed
components (never an average of per-period values). Adding a KPI is adding an entry to `KPIS`.
"""

from dataclasses import dataclass, field

from django.db.models import Q

from ingestion.choices import CashoutStatus, InteractionStatus, RecordType, SurveyKind


@dataclass(frozen=True)
class Component:
    key: str
    kind: str  # COUNT or SUM
    where: Q | None = None
    value: str | None = None  # the summed field, for SUM

    @property
    def is_count(self) -> bool:
        return self.kind == COUNT


COUNT = "count"
SUM = "sum"


def _count(key: str, where: Q | None = None) -> Component:
    return Component(key, COUNT, where)


def _sum(key: str, value: str, where: Q | None = None) -> Component:
    return Component(key, SUM, where, value)


_RESOLVED = Q(status=InteractionStatus.RESOLVED)
_SETTLED = Q(status__in=[CashoutStatus.SUCCEEDED, CashoutStatus.FAILED])


def _has(field_name: str) -> Q:
    return Q(**{f"{field_name}__isnull": False})


COMPONENTS: dict[str, tuple[Component, ...]] = {
    RecordType.INTERACTION: (
        _count("n"),
        _count("resolved", _RESOLVED),
        _sum("frt_sum", "first_response_seconds", _has("first_response_seconds")),
        _count("frt_n", _has("first_response_seconds")),
        _sum("res_sum", "resolution_seconds", _RESOLVED & _has("resolution_seconds")),
        _count("res_n", _RESOLVED & _has("resolution_seconds")),
        _count("fcr_n", _RESOLVED & Q(contact_count=1)),
        _count("abandoned", Q(status=InteractionStatus.ABANDONED)),
        _sum("wait_sum", "wait_seconds", _has("wait_seconds")),
        _count("wait_n", _has("wait_seconds")),
        _sum("handle_sum", "handle_seconds", _has("handle_seconds")),
        _count("handle_n", _has("handle_seconds")),
        _count("self_service", Q(self_service=True)),
        _count("missed", Q(status=InteractionStatus.MISSED)),
    ),
    RecordType.SURVEY: (
        _count("csat_n", Q(kind=SurveyKind.CSAT)),
        _count("csat_pos", Q(kind=SurveyKind.CSAT, score__gte=4)),
        _sum("csat_sum", "score", Q(kind=SurveyKind.CSAT)),
        _count("nps_n", Q(kind=SurveyKind.NPS)),
        _count("nps_promoters", Q(kind=SurveyKind.NPS, score__gte=9)),
        _count("nps_detractors", Q(kind=SurveyKind.NPS, score__lte=6)),
        _sum("ces_sum", "score", Q(kind=SurveyKind.CES)),
        _count("ces_n", Q(kind=SurveyKind.CES)),
        _sum("qa_sum", "score", Q(kind=SurveyKind.QA)),
        _count("qa_n", Q(kind=SurveyKind.QA)),
    ),
    RecordType.CASHOUT: (
        _count("n"),
        _count("settled", _SETTLED),
        _count("succeeded", Q(status=CashoutStatus.SUCCEEDED)),
        _count("failed", Q(status=CashoutStatus.FAILED)),
        _sum("proc_sum", "processing_seconds", _SETTLED & _has("processing_seconds")),
        _count("proc_n", _SETTLED & _has("processing_seconds")),
        _sum("resp_sum", "response_seconds", _has("response_seconds")),
        _count("resp_n", _has("response_seconds")),
    ),
}


class Unit:
    COUNT = "count"
    SECONDS = "seconds"
    PERCENT = "percent"
    SCORE = "score"

    ALL = (COUNT, SECONDS, PERCENT, SCORE)


@dataclass(frozen=True)
class Formula:
    """How a KPI's value and sample size come out of summed components.

    count(c): value c, sample c.  ratio(num, den): num / den × 100, sample den.
    mean(sum, n): sum / n, sample n.  nps(promoters, detractors, n): (p − d) / n × 100, sample n.
    A zero denominator gives null.
    """

    kind: str
    parts: tuple[str, ...]

    def evaluate(self, totals: dict[str, float]) -> tuple[float | int | None, int]:
        values = [totals.get(p, 0) for p in self.parts]
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


ANCHORS = {
    RecordType.INTERACTION: "created_at",
    RecordType.SURVEY: "submitted_at",
    RecordType.CASHOUT: "requested_at",
}


@dataclass(frozen=True)
class Kpi:
    key: str
    label_en: str
    label_vi: str
    unit: str
    higher_is_better: bool
    formula_text: str
    record_type: str
    formula: Formula
    anchor: str = field(default="")

    def __post_init__(self):
        if not self.anchor:
            object.__setattr__(self, "anchor", ANCHORS[self.record_type])

    @property
    def components(self) -> tuple[str, ...]:
        return self.formula.parts

    def label(self, language: str) -> str:
        return self.label_vi if language == "vi" else self.label_en


_I, _S, _C = RecordType.INTERACTION, RecordType.SURVEY, RecordType.CASHOUT

KPIS: dict[str, Kpi] = {
    k.key: k
    for k in (
        Kpi("interactions", "Interactions", "Số lượng yêu cầu", Unit.COUNT, True,
            "count of interactions", _I, count("n")),
        Kpi("tickets_handled", "Tickets handled", "Số yêu cầu đã xử lý", Unit.COUNT, True,
            "count of interactions with status resolved", _I, count("resolved")),
        Kpi("first_response_time", "First response time (FRT)", "Thời gian phản hồi lần đầu (FRT)",
            Unit.SECONDS, False, "mean(first_response_at − created_at) over interactions with a first response",
            _I, mean("frt_sum", "frt_n")),
        Kpi("resolution_time", "Resolution time", "Thời gian giải quyết", Unit.SECONDS, False,
            "mean(resolved_at − created_at) over resolved interactions", _I, mean("res_sum", "res_n")),
        Kpi("fcr_rate", "First contact resolution (FCR)", "Giải quyết ngay lần đầu (FCR)", Unit.PERCENT, True,
            "resolved with contact_count = 1 / resolved × 100", _I, ratio("fcr_n", "resolved")),
        Kpi("abandonment_rate", "Abandonment rate", "Tỷ lệ bỏ cuộc", Unit.PERCENT, False,
            "abandoned / interactions × 100", _I, ratio("abandoned", "n")),
        Kpi("average_wait_time", "Average wait time", "Thời gian chờ trung bình", Unit.SECONDS, False,
            "mean(wait_seconds) over interactions with it", _I, mean("wait_sum", "wait_n")),
        Kpi("average_handle_time", "Average handle time (AHT)", "Thời gian xử lý trung bình (AHT)",
            Unit.SECONDS, False, "mean(handle_seconds) over interactions with it", _I,
            mean("handle_sum", "handle_n")),
        Kpi("self_service_rate", "Self-service rate", "Tỷ lệ tự phục vụ", Unit.PERCENT, True,
            "self_service / interactions × 100", _I, ratio("self_service", "n")),
        Kpi("missed_calls", "Missed calls", "Cuộc gọi nhỡ", Unit.COUNT, False,
            "count of interactions with status missed", _I, count("missed")),
        Kpi("csat", "Customer satisfaction (CSAT)", "Mức độ hài lòng (CSAT)", Unit.PERCENT, True,
            "csat responses with score ≥ 4 / csat responses × 100", _S, ratio("csat_pos", "csat_n")),
        Kpi("csat_score", "Average satisfaction score", "Điểm hài lòng trung bình", Unit.SCORE, True,
            "mean csat score (1–5)", _S, mean("csat_sum", "csat_n")),
        Kpi("nps", "Net promoter score (NPS)", "Chỉ số khuyến nghị (NPS)", Unit.SCORE, True,
            "% nps scores 9–10 − % nps scores 0–6 (−100..100)", _S,
            nps("nps_promoters", "nps_detractors", "nps_n")),
        Kpi("ces", "Customer effort score (CES)", "Chỉ số nỗ lực khách hàng (CES)", Unit.SCORE, False,
            "mean ces score (1–7)", _S, mean("ces_sum", "ces_n")),
        Kpi("qa_score", "Quality review score", "Chất lượng tư vấn", Unit.SCORE, True,
            "mean qa score (0–100)", _S, mean("qa_sum", "qa_n")),
        Kpi("cashout_requests", "Cashout requests", "Số yêu cầu rút tiền", Unit.COUNT, True,
            "count of cashouts", _C, count("n")),
        Kpi("cashout_processing_time", "Cashout processing time", "Thời gian xử lý rút tiền", Unit.SECONDS,
            False, "mean(completed_at − requested_at) over succeeded or failed cashouts", _C,
            mean("proc_sum", "proc_n")),
        Kpi("cashout_response_time", "Cashout response time", "Thời gian phản hồi khách hàng", Unit.SECONDS,
            False, "mean(first_response_at − requested_at) over cashouts with a first response", _C,
            mean("resp_sum", "resp_n")),
        Kpi("cashout_success_rate", "Cashout success rate", "Tỷ lệ thành công", Unit.PERCENT, True,
            "succeeded / (succeeded + failed) × 100", _C, ratio("succeeded", "settled")),
        Kpi("cashout_error_rate", "Cashout error rate", "Tỷ lệ lỗi", Unit.PERCENT, False,
            "failed / (succeeded + failed) × 100", _C, ratio("failed", "settled")),
    )
}


def component_keys(record_type: str) -> tuple[str, ...]:
    return tuple(c.key for c in COMPONENTS[record_type])
