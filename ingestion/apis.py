"""HTTP entrypoints: POST a batch of records, read records back. Thin: parse, call, render."""

from django.conf import settings
from django.core.validators import RegexValidator
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from cskpi.access import request_access
from cskpi.choices import ReadLevel
from cskpi.errors import InvalidInput, PayloadTooLarge
from cskpi.schema import error_response, standard_errors
from ingestion.fields import RECORD_SPECS, FieldSpec, FieldType, RecordSpec
from ingestion.parsers import FastJSONParser
from ingestion.selectors import RecordQuery, record_get, record_list
from ingestion.serializers import (
    INPUT_SERIALIZERS,
    NO_NUL_VALIDATOR,
    OUTPUT_SERIALIZERS,
    SLUG_VALIDATOR,
    SpecDateTimeField,
    UpsertResultSerializer,
    record_page_serializer,
)
from ingestion.services import record_batch_ingest

_TIME_SPEC = FieldSpec("time", FieldType.DATETIME, "")


def batch_items_read(request) -> list:
    """The body as a list of items: one object or an array of up to CSKPI_MAX_BATCH objects."""
    # Touch request.body first: Django enforces DATA_UPLOAD_MAX_MEMORY_SIZE there (RequestDataTooBig
    # -> 413), while DRF's parser would stream the body past the limit.
    if not request.body.strip():
        # Also what a chunked request looks like under WSGI (no Content-Length: Django reads nothing).
        raise InvalidInput("The body is empty; send a JSON object or array with a Content-Length.", [
            {"field": None, "code": "empty_body", "message": "Expected an object or an array of objects."}
        ])
    data = request.data
    if isinstance(data, dict):
        return [data]
    if not isinstance(data, list):
        raise InvalidInput("The body must be a JSON object or an array of objects.", [
            {"field": None, "code": "invalid_body", "message": "Expected an object or an array of objects."}
        ])
    if not data:
        raise InvalidInput("The batch is empty.", [
            {"field": None, "code": "empty_batch", "message": "Send at least one record."}
        ])
    if len(data) > settings.CSKPI_MAX_BATCH:
        raise PayloadTooLarge(
            f"A batch holds at most {settings.CSKPI_MAX_BATCH} records; got {len(data)}.", code="batch_too_large"
        )
    return data


class RecordFilterSerializer(serializers.Serializer):
    department = serializers.CharField(
        required=False, trim_whitespace=False, validators=[RegexValidator(r"^[-a-zA-Z0-9_]+(,[-a-zA-Z0-9_]+)*$")],
        help_text="Department slugs, comma-separated. Default: every department the caller may read.",
    )
    start = SpecDateTimeField(spec=_TIME_SPEC, required=False, allow_null=False,
                              help_text="Anchor time >= start (ISO 8601 with offset).")
    end = SpecDateTimeField(spec=_TIME_SPEC, required=False, allow_null=False,
                            help_text="Anchor time < end (ISO 8601 with offset).")
    cursor = serializers.CharField(required=False, trim_whitespace=False, validators=[NO_NUL_VALIDATOR],
                                   help_text="From the `next` link of the previous page.")
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=settings.CSKPI_MAX_PAGE_SIZE,
                                         default=100)

    def to_internal_value(self, data):
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: [serializers.ErrorDetail(
                f"Unknown parameter; use one of {', '.join(self.fields)}.", code="unknown_parameter")]
                for name in unknown})
        return super().to_internal_value(data)

    def validate(self, attrs):
        if attrs.get("start") and attrs.get("end") and attrs["end"] <= attrs["start"]:
            raise serializers.ValidationError({"end": ["end must be after start."]})
        return attrs


def _filter_field(field: FieldSpec) -> serializers.Field:
    """The query parameter of a filterable field: exact match, in the form the field is sent in."""
    if field.type is FieldType.CHOICE:
        return serializers.ChoiceField(choices=list(field.choices or ()), required=False)
    if field.type is FieldType.SLUG:
        return serializers.CharField(required=False, max_length=field.max_length, trim_whitespace=False,
                                     validators=[SLUG_VALIDATOR])
    if field.type is FieldType.STR:
        return serializers.CharField(
            required=False, max_length=field.max_length, trim_whitespace=False, validators=[NO_NUL_VALIDATOR],
            help_text="Needs a manager or agent grant on the departments." if field.owner else "",
        )
    raise ValueError(f"{field.name}: a {field.type} field cannot be a record-list filter (yet)")


def _filter_serializer(spec: RecordSpec) -> type[RecordFilterSerializer]:
    extra = {field.name: _filter_field(field) for field in spec.filters}
    name = spec.record_type.value.capitalize()
    return type(f"{name}FilterSerializer", (RecordFilterSerializer,), extra)


FILTER_SERIALIZERS = {plural: _filter_serializer(spec) for plural, spec in RECORD_SPECS.items()}


def _query(spec: RecordSpec, request) -> RecordQuery:
    params = FILTER_SERIALIZERS[spec.plural](data=request.query_params.dict())
    params.is_valid(raise_exception=True)
    values = dict(params.validated_data)
    departments = tuple(s.strip() for s in values.pop("department", "").split(",") if s.strip())
    filters = {f.name: values.pop(f.name) for f in spec.filters if f.name in values}
    return RecordQuery(departments=departments, filters=filters, **values)


class RecordCollectionApi(APIView):
    spec: RecordSpec
    parser_classes = [FastJSONParser]
    batch_errors = True

    def post(self, request):
        items = batch_items_read(request)
        outcome = record_batch_ingest(spec=self.spec, items=items, access=request_access(request))
        return Response(outcome)

    def get(self, request):
        plural = self.spec.plural
        records, scopes, next_cursor = record_list(
            spec=self.spec, access=request_access(request), query=_query(self.spec, request)
        )
        next_url = None
        if next_cursor:
            params = request.query_params.copy()
            params["cursor"] = next_cursor
            next_url = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
        data = OUTPUT_SERIALIZERS[plural](records, many=True, context={"scopes": scopes}).data
        return Response({"next": next_url, "results": data})


class RecordDetailApi(APIView):
    spec: RecordSpec

    def get(self, request, source: str, external_id: str):
        record, scopes = record_get(
            spec=self.spec, access=request_access(request), source=source, external_id=external_id
        )
        if record is None:
            raise NotFound("No such record, or not one you may read.")
        return Response(OUTPUT_SERIALIZERS[self.spec.plural](record, context={"scopes": scopes}).data)


# --- one pair of views per record type, each with its own OpenAPI description ------------------
def _example_item(spec: RecordSpec) -> dict:
    return {f.name: f.example for f in spec.fields if f.example is not None}


_TOO_LARGE = error_response("The body is over the size limit, or the batch over CSKPI_MAX_BATCH records.",
                            "batch_too_large", "A batch holds at most 1000 records; got 1200.")
_NOT_JSON = error_response("The body is not sent as application/json.", "unsupported_media_type",
                           'Unsupported media type "text/plain" in request.')
_BATCH_INVALID = error_response(
    "Some items are invalid: every bad item is listed by index; nothing was written.", "invalid",
    "2 of 3 items are invalid; nothing was written.",
    [{"index": 0, "field": "created_at", "code": "naive_datetime",
      "message": "The time has no UTC offset; add one (e.g. +07:00 or Z)."},
     {"index": 2, "field": "department", "code": "unknown_department", "message": "No department 'cskh-x'."}],
)
_BATCH_FORBIDDEN = error_response(
    "No ingest grant on a department named, or a key belongs to another department's record.",
    "permission_denied", "You may not ingest into: cskh-hcm. Nothing was written.",
    [{"index": 1, "field": "department", "code": "permission_denied",
      "message": "No ingest grant on department 'cskh-hcm'."}],
)


def _listing_description(spec: RecordSpec) -> str:
    """Who sees what of this record type, from the roles of its fields."""
    hidden = [f"`{f.name}`" for f in spec.fields if f.redacted_below is not None and f.public]
    viewers_miss = [f"`{f.name}`" for f in spec.fields
                    if f.redacted_below is not None and f.redacted_below > ReadLevel.DEPARTMENT]
    owner = next((f.name for f in spec.fields if f.owner), None)
    return (
        f"Ordered by `{spec.time}` then id. Managers and staff see everything of their departments"
        + (f", {' and '.join(hidden)} included" if hidden else "")
        + (f"; viewers see records with `{owner}` null" if owner else "; viewers see the records")
        + (f" and no {' and '.join(viewers_miss)}" if viewers_miss else "")
        + ("; agents see only their own records" if owner else f"; agents see no {spec.plural}")
        + "; ingest-only callers read nothing."
    )


def _apis(plural: str) -> tuple[type[APIView], type[APIView]]:
    spec = RECORD_SPECS[plural]
    label = spec.record_type.label.lower()
    tag = plural
    item = _example_item(spec)
    batch = PolymorphicProxySerializer(
        component_name=f"{spec.record_type.value.capitalize()}Batch",
        serializers=[
            INPUT_SERIALIZERS[plural],
            INPUT_SERIALIZERS[plural](many=True),
        ],
        resource_type_field_name=None,
        many=False,
    )
    post = extend_schema(
        operation_id=f"{plural}_upsert",
        tags=[tag],
        summary=f"Upsert {plural} (one object or an array of up to {settings.CSKPI_MAX_BATCH})",
        description=(
            "Upsert by `(source, external_id)`: a new key is `created`; the same content is `unchanged`; "
            "different content is `updated`; an `updated_at` older than the stored one is `stale` (ignored). "
            "Items of one key in a batch apply in order. The batch is atomic: one invalid item and the "
            "response is 400 listing every bad item, and nothing is written. Needs the `ingest` role (or "
            "staff) on every department named. Agents and channels need no registration. Unknown fields "
            "are refused (`unknown_field`); timestamps need a UTC offset."
        ),
        request=batch,
        responses={200: UpsertResultSerializer, **standard_errors(), 400: _BATCH_INVALID,
                   403: _BATCH_FORBIDDEN, 413: _TOO_LARGE, 415: _NOT_JSON},
        examples=[
            OpenApiExample(f"one {label}", value=item, request_only=True),
            OpenApiExample("a batch", value=[item, {**item, "external_id": item["external_id"] + "-2"}],
                           request_only=True),
            OpenApiExample("result", response_only=True, value={
                "created": 1, "updated": 0, "unchanged": 1, "stale": 0,
                "items": [{"source": item["source"], "external_id": item["external_id"], "result": "unchanged"},
                          {"source": item["source"], "external_id": item["external_id"] + "-2",
                           "result": "created"}],
            }),
        ],
    )
    listing = extend_schema(
        operation_id=f"{plural}_list",
        tags=[tag],
        summary=f"List {plural} the caller may read, oldest anchor time first (cursor-paginated)",
        description=_listing_description(spec),
        parameters=[FILTER_SERIALIZERS[plural]],
        responses={200: record_page_serializer(plural), **standard_errors(404)},
    )
    detail = extend_schema(
        operation_id=f"{plural}_retrieve",
        tags=[tag],
        summary=f"One {label} by key",
        description="404 when the record does not exist or the caller may not read it.",
        parameters=[OpenApiParameter("source", str, OpenApiParameter.PATH),
                    OpenApiParameter("external_id", str, OpenApiParameter.PATH)],
        responses={200: OUTPUT_SERIALIZERS[plural], **standard_errors(404)},
    )
    name = spec.record_type.value.capitalize()
    collection = extend_schema_view(post=post, get=listing)(
        type(f"{name}CollectionApi", (RecordCollectionApi,), {"spec": spec})
    )
    one = extend_schema_view(get=detail)(type(f"{name}DetailApi", (RecordDetailApi,), {"spec": spec}))
    return collection, one


RECORD_APIS = {plural: _apis(plural) for plural in RECORD_SPECS}
