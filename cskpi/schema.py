"""Shared OpenAPI pieces: the error body every 4xx/5xx uses, and response sets for endpoints."""

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers


class ErrorItemSerializer(serializers.Serializer):
    index = serializers.IntegerField(required=False, help_text="Batch item, for batch requests.")
    field = serializers.CharField(allow_null=True, help_text="Dotted path of the field, or null.")
    code = serializers.CharField(help_text="Stable machine-readable code.")
    message = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. `invalid`, `permission_denied`.")
    detail = serializers.CharField(help_text="Human-readable summary.")
    errors = ErrorItemSerializer(many=True, help_text="At most CSKPI_MAX_ERRORS (100) entries.")
    errors_not_listed = serializers.IntegerField(
        required=False, help_text="How many more errors there were; present only when some were not listed."
    )


def error_response(description: str, code: str, detail: str, errors: list | None = None) -> OpenApiResponse:
    return OpenApiResponse(
        response=ErrorSerializer,
        description=description,
        examples=[OpenApiExample(code, value={"code": code, "detail": detail, "errors": errors or []})],
    )


UNAUTHORIZED = error_response("Missing or invalid token.", "not_authenticated",
                              "Authentication credentials were not provided.")
FORBIDDEN = error_response("The caller has no grant for a department it named.", "permission_denied",
                           "You do not have permission to perform this action.")
INVALID = error_response(
    "Invalid input; `errors` names each field (and batch item).", "invalid",
    "start: Enter a valid date.", [{"field": "start", "code": "invalid", "message": "Enter a valid date."}],
)
NOT_FOUND = error_response("No such object.", "not_found", "Not found.")
UNAVAILABLE = error_response("The database or broker is unavailable; retry after `Retry-After` seconds.",
                             "service_unavailable", "A backing service is unavailable; retry later.")


def standard_errors(*extra: int) -> dict:
    responses = {400: INVALID, 401: UNAUTHORIZED, 403: FORBIDDEN, 503: UNAVAILABLE}
    if 404 in extra:
        responses[404] = NOT_FOUND
    return responses


HealthSerializer = inline_serializer(
    name="Health",
    fields={
        "status": serializers.ChoiceField(choices=["ok", "degraded"]),
        "database": serializers.CharField(),
        "broker": serializers.CharField(),
        "pending_buckets": serializers.IntegerField(allow_null=True),
    },
)


CSV_FORMAT_PARAMETER = OpenApiParameter(
    "format", str, OpenApiParameter.QUERY, required=False, enum=["json", "csv"],
    description="`csv` answers text/csv (as `Accept: text/csv` does). Default: json.",
)


def closed_service_level_inputs(result, generator, request, public):
    """Calendar and SLA policy bodies refuse unknown fields (`unknown_field`) and are required: say so."""
    schemas = result.get("components", {}).get("schemas", {})
    for name in ("CalendarInputRequest", "CalendarVersionRequest", "WeeklyScheduleRequest", "SlaPolicyInputRequest",
                 "SlaChannelTargetsRequest"):
        if name in schemas:
            schemas[name]["additionalProperties"] = False
    for path, operations in result.get("paths", {}).items():
        if path.endswith(("/calendar", "/sla")) and "requestBody" in operations.get("put", {}):
            operations["put"]["requestBody"]["required"] = True
    return result
