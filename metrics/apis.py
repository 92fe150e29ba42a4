from django.utils.translation import get_language_from_request
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from cskpi.access import request_access
from cskpi.params import query_params_read
from cskpi.renderers import CsvNegotiationMixin, FiniteJSONRenderer
from cskpi.schema import CSV_FORMAT_PARAMETER, error_response, standard_errors
from metrics.renderers import KpiSeriesCsvRenderer
from metrics.selectors import kpi_catalog_list, kpi_series_get, recompute_status_get
from metrics.serializers import (
    KpiCatalogEntrySerializer,
    KpiQueryInputSerializer,
    KpiSeriesSerializer,
    RecomputeStatusSerializer,
)

_SERIES_EXAMPLE = {
    "start": "2026-05-01T00:00:00+07:00", "end": "2026-05-03T00:00:00+07:00", "timezone": "Asia/Ho_Chi_Minh",
    "granularity": "day", "as_of": "2026-05-03T02:00:00+00:00",
    "results": [{
        "kpi": "fcr_rate", "unit": "percent", "group": {"agent": "a-7"}, "value": 81.25, "sample_size": 160,
        "series": [{"start": "2026-05-01T00:00:00+07:00", "value": 80.0, "sample_size": 100},
                   {"start": "2026-05-02T00:00:00+07:00", "value": 83.33333333333333, "sample_size": 60}],
        "previous": {"start": "2026-04-29T00:00:00+07:00", "end": "2026-05-01T00:00:00+07:00", "value": 77.5,
                     "sample_size": 150},
        "change": 3.75,
    }],
}


class KpiSeriesApi(CsvNegotiationMixin, APIView):
    renderer_classes = [FiniteJSONRenderer, KpiSeriesCsvRenderer]
    list_parameters = ("kpi", "department", "group_by", "agent", "channel", "topic", "check", "customer_region")

    @extend_schema(
        operation_id="metrics_get",
        tags=["metrics"],
        summary="KPI values per period, per group, over a range (exact, from precomputed aggregates)",
        description=(
            "One result per KPI and group. `series` lists every period of the range in order, empty ones "
            "included (counts 0, other KPIs null with sample_size 0). `value` is computed over the whole range "
            "from summed numerators and denominators. Agents see only themselves; viewers cannot group or "
            "filter by agent; a department outside the caller's grants is 403. `Accept: text/csv` or "
            "`format=csv` answers CSV: one row per KPI, group and period (columns kpi, unit, the group_by "
            "dimensions, period_start, period_end, value, sample_size), the same numbers as the JSON answer."
        ),
        parameters=[KpiQueryInputSerializer, CSV_FORMAT_PARAMETER],
        responses={
            (200, "application/json"): KpiSeriesSerializer,
            (200, "text/csv"): OpenApiTypes.STR,
            **standard_errors(),
            400: error_response(
                "A parameter is wrong; `errors[].field` names it (codes: unknown_kpi, unaligned, "
                "end_before_start, range_too_long, invalid_timezone, not_permitted, ...).",
                "invalid", "end: The range is longer than 31 days, the most for granularity 'hour'.",
                [{"field": "end", "code": "range_too_long",
                  "message": "The range is longer than 31 days, the most for granularity 'hour'."}],
            ),
        },
        examples=[OpenApiExample("fcr by agent with comparison", value=_SERIES_EXAMPLE, response_only=True)],
    )
    def get(self, request):
        # A plain dict: with a QueryDict DRF reads `start=` as "not given" instead of refusing it as blank.
        params = query_params_read(request.query_params, lists=self.list_parameters)
        serializer = KpiQueryInputSerializer(data=params,
                                             context={"access": request_access(request)})
        serializer.is_valid(raise_exception=True)
        return Response(kpi_series_get(query=serializer.validated_data["query"]))


class KpiCatalogApi(APIView):
    @extend_schema(
        operation_id="kpis_list",
        tags=["metrics"],
        summary="The KPI catalog: keys, labels (Accept-Language: en or vi), units, formulas",
        parameters=[OpenApiParameter("Accept-Language", str, OpenApiParameter.HEADER, required=False,
                                     enum=["en", "vi"], description="Language of `label`.")],
        responses={200: KpiCatalogEntrySerializer(many=True), **standard_errors()},
        examples=[OpenApiExample("one entry", response_only=True, value=[{
            "key": "fcr_rate", "label": "Giải quyết ngay lần đầu (FCR)",
            "labels": {"en": "First contact resolution (FCR)", "vi": "Giải quyết ngay lần đầu (FCR)"},
            "unit": "percent", "higher_is_better": True,
            "formula": "resolved with contact_count = 1 / resolved × 100", "formula_kind": "ratio",
            "components": ["resolved_first_contact", "resolved"], "record_type": "interaction",
            "record_types": ["interaction"], "anchor": "created_at",
        }])],
    )
    def get(self, request):
        language = "vi" if get_language_from_request(request).startswith("vi") else "en"
        return Response(kpi_catalog_list(language=language), headers={"Content-Language": language})


class RecomputeStatusApi(APIView):
    @extend_schema(
        operation_id="status_get",
        tags=["metrics"],
        summary="Freshness: buckets waiting for recompute, the oldest waiting change, the last recompute",
        description="Scoped to the departments the caller holds a grant on (staff: all).",
        responses={200: RecomputeStatusSerializer, **standard_errors()},
        examples=[OpenApiExample("drained", response_only=True, value={
            "pending_buckets": 0, "failed_buckets": 0, "oldest_pending_at": None,
            "newest_mark_at": None, "last_error": None,
            "last_recompute": {"completed_at": "2026-05-03T02:00:00Z", "record_type": "interaction",
                               "department": "cskh-hn", "buckets": 12, "duration_ms": 8.5},
        })],
    )
    def get(self, request):
        return Response(RecomputeStatusSerializer(recompute_status_get(access=request_access(request))).data)
