"""HTTP entrypoints: POST a batch of records, read records back. Thin: parse, call, render."""

from dataclasses import replace
from datetime import UTC, datetime
from types import SimpleNamespace

from django.conf import settings
from django.core.validators import RegexValidator
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from cskpi.access import ingest_permission_check, request_access
from cskpi.choices import ReadLevel
from cskpi.errors import InvalidInput, PayloadTooLarge
from cskpi.params import query_params_read
from cskpi.renderers import CsvNegotiationMixin, CsvRenderer, FiniteJSONRenderer, csv_lines
from cskpi.schema import CSV_FORMAT_PARAMETER, error_response, standard_errors
from cskpi.serializers import QueryParametersSerializer
from ingestion.choices import AgentStatus
from ingestion.fields import RECORD_SPECS, FieldSpec, FieldType, RecordSpec
from ingestion.parsers import FastJSONParser
from ingestion.schema import field_schema, record_batch_request, record_example
from ingestion.selectors import RecordQuery, agents_now_get, record_get, record_list
from ingestion.serializers import (
    NO_NUL_VALIDATOR,
    OUTPUT_SERIALIZERS,
    SLUG_VALIDATOR,
    UpsertResultSerializer,
    record_page_serializer,
)
from ingestion.service_levels import NONE_SET, rows_measure
from ingestion.services import record_batch_ingest
from ingestion.validation import DATETIME_YEAR_PATTERN, Invalid, batch_validator_get, coercer_build

_SLUG_LIST = r"^[-a-zA-Z0-9_]+(,[-a-zA-Z0-9_]+)*$"


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


@extend_schema_field({"type": "string", "format": "date-time", "pattern": DATETIME_YEAR_PATTERN})
class RecordTimeField(serializers.Field):
    """A time bound read like a record's own times (the declared datetime coercer: offset required)."""

    coerce = staticmethod(coercer_build(FieldSpec("time", FieldType.DATETIME, "")))

    def to_internal_value(self, data):
        value = self.coerce(data)
        if type(value) is Invalid:
            raise serializers.ValidationError(value.message, code=value.code)
        return value


class CommaListField(serializers.CharField):
    """Values separated by commas (repeated parameters arrive joined, see cskpi.params), each checked by
    `item`; -> a tuple without duplicates."""

    def __init__(self, *, item: serializers.Field, value_schema: dict, **kwargs):
        self.item = item
        # One value is documented (cskpi.params.list_parameters_schema makes it a repeated list).
        self._spectacular_annotation = {"field": value_schema}
        super().__init__(trim_whitespace=False, **kwargs)

    def to_internal_value(self, data):
        text = super().to_internal_value(data)
        parts = text.split(",")
        if "" in parts:
            raise serializers.ValidationError("An empty value; give each value once, non-empty.", code="blank")
        return tuple(self.item.run_validation(value) for value in dict.fromkeys(parts))


class RecordFilterSerializer(QueryParametersSerializer):
    department = serializers.CharField(
        required=False, trim_whitespace=False, validators=[RegexValidator(_SLUG_LIST)],
        help_text="Department slugs. Default: every department the caller may read.",
    )
    start = RecordTimeField(required=False, help_text="Anchor time >= start (ISO 8601 with offset).")
    end = RecordTimeField(required=False, help_text="Anchor time < end (ISO 8601 with offset).")
    cursor = serializers.CharField(required=False, trim_whitespace=False, validators=[NO_NUL_VALIDATOR],
                                   help_text="From the `next` link of the previous page.")
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=settings.CSKPI_MAX_PAGE_SIZE,
                                         default=100)


    def validate(self, attrs):
        if attrs.get("start") and attrs.get("end") and attrs["end"] <= attrs["start"]:
            raise serializers.ValidationError({"end": ["end must be after start."]})
        return attrs


def _filter_item(field: FieldSpec) -> serializers.Field:
    """A filter value is checked as the declared field checks it (choices, slug, free text)."""
    if field.type is FieldType.CHOICE:
        return serializers.ChoiceField(choices=list(field.choices))
    if field.type is FieldType.SLUG:
        return serializers.CharField(max_length=field.max_length, trim_whitespace=False, validators=[SLUG_VALIDATOR])
    return serializers.CharField(max_length=field.max_length, trim_whitespace=False, validators=[NO_NUL_VALIDATOR])


# One filter value of a free-text or slug field, as a pattern: a parameter value is a comma list of them.
_ONE_VALUE = {FieldType.STR: "[^\\x00,]{{1,{n}}}", FieldType.SLUG: "[a-z0-9][a-z0-9_-]{{0,{m}}}"}


def _filter_value_schema(spec: RecordSpec, field: FieldSpec) -> dict:
    """How one value of a list filter is documented: a choice as its enum; text and slugs as a comma list
    of declared values (length limits per value, in the pattern)."""
    if field.type not in _ONE_VALUE:
        return {k: v for k, v in field_schema(spec, field).items() if k not in ("description", "example", "nullable")}
    one = _ONE_VALUE[field.type].format(n=field.max_length, m=field.max_length - 1)
    return {"type": "string", "pattern": f"^{one}(,{one})*$"}


def _filter_serializer(spec: RecordSpec) -> type[RecordFilterSerializer]:
    extra: dict = {}
    for field in spec.filters:
        extra[field.name] = CommaListField(
            item=_filter_item(field), value_schema=_filter_value_schema(spec, field), required=False,
            help_text=("Only these values. " + ("Needs a manager or agent grant on the departments."
                                                if field.owner else "")).strip(),
        )
    name = spec.title
    return type(f"{name}FilterSerializer", (RecordFilterSerializer,), extra)


FILTER_SERIALIZERS = {plural: _filter_serializer(spec) for plural, spec in RECORD_SPECS.items()}
# Parameters that take several values (repeated, or comma-separated): departments and every filter.
LIST_PARAMETERS = ("department", *dict.fromkeys(f.name for spec in RECORD_SPECS.values() for f in spec.filters))


def _query(spec: RecordSpec, request) -> RecordQuery:
    params = FILTER_SERIALIZERS[spec.plural](data=query_params_read(request.query_params, lists=LIST_PARAMETERS))
    params.is_valid(raise_exception=True)
    values = dict(params.validated_data)
    departments = tuple(s.strip() for s in values.pop("department", "").split(",") if s.strip())
    filters = {f.name: values.pop(f.name) for f in spec.filters if f.name in values}
    return RecordQuery(departments=departments, filters=filters, **values)


class RecordCsvRenderer(CsvRenderer):
    """Only negotiates the format: a CSV list is streamed by the view (every page), never rendered whole."""


def _record_csv_stream(*, spec: RecordSpec, access, query: RecordQuery, first: tuple) -> StreamingHttpResponse:
    """Every record of the query from its cursor on, page after page (keyset), as CSV rows."""
    serializer = OUTPUT_SERIALIZERS[spec.plural]
    records, scopes, next_cursor = first
    header = list(serializer().fields)
    if not any(scope.sees_amounts for scope in scopes.values()):
        header = [name for name in header if name != "amount"]

    def rows():
        nonlocal records, scopes, next_cursor
        while True:
            yield from serializer(records, many=True, context={"scopes": scopes}).data
            if not next_cursor:
                return
            records, scopes, next_cursor = record_list(
                spec=spec, access=access, query=replace(query, cursor=next_cursor))

    response = StreamingHttpResponse(csv_lines(header, rows()), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{spec.plural}.csv"'
    return response


class RecordCollectionApi(CsvNegotiationMixin, APIView):
    spec: RecordSpec
    parser_classes = [FastJSONParser]
    batch_errors = True
    list_parameters = LIST_PARAMETERS

    def get_renderers(self):
        method = getattr(getattr(self, "request", None), "method", "GET")
        return [FiniteJSONRenderer(), *([RecordCsvRenderer()] if method in ("GET", "HEAD") else [])]

    def post(self, request):
        ingest_permission_check(access=request_access(request))  # before the body is even parsed
        items = batch_items_read(request)
        outcome = record_batch_ingest(spec=self.spec, items=items, access=request_access(request))
        return Response(outcome)

    def get(self, request):
        plural = self.spec.plural
        access, query = request_access(request), _query(self.spec, request)
        if self.wants_csv(request):
            query = replace(query, page_size=settings.CSKPI_MAX_PAGE_SIZE)
            first = record_list(spec=self.spec, access=access, query=query)  # refusals before streaming
            return _record_csv_stream(spec=self.spec, access=access, query=query, first=first)
        records, scopes, next_cursor = record_list(spec=self.spec, access=access, query=query)
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
def _output_example(spec: RecordSpec, item: dict) -> dict:
    """The example record as a manager reads it back: validated, derived and serialized like a stored one."""
    rows, _ = batch_validator_get(spec).validate([item], departments={item["department"]: 0})
    row = {column: value for column, value in rows[0].items() if column != "department"}  # the slug
    rows_measure(spec=spec, rows=[row], levels={row["department_id"]: NONE_SET}, moment=row[spec.time])
    record = spec.model(**row)
    record.department_slug = item["department"]
    record.received_at = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)
    manager = SimpleNamespace(sees_amounts=True, read_level=ReadLevel.FULL)
    return OUTPUT_SERIALIZERS[spec.plural](record, context={"scopes": {0: manager}}).data


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
    item = record_example(spec)
    read_back = _output_example(spec, item)
    post = extend_schema(
        operation_id=f"{spec.identifier}_upsert",
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
        request=record_batch_request(spec),
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
        operation_id=f"{spec.identifier}_list",
        tags=[tag],
        summary=f"List {plural} the caller may read, oldest anchor time first (cursor-paginated)",
        description=_listing_description(spec),
        parameters=[FILTER_SERIALIZERS[plural], CSV_FORMAT_PARAMETER],
        responses={(200, "application/json"): record_page_serializer(plural),
                   (200, "text/csv"): OpenApiTypes.STR, **standard_errors(404)},
        examples=[OpenApiExample("a page", response_only=True, status_codes=["200"], media_type="application/json",
                                 value={"next": None, "results": [read_back]})],
    )
    detail = extend_schema(
        operation_id=f"{spec.identifier}_retrieve",
        tags=[tag],
        summary=f"One {label} by key",
        description="404 when the record does not exist or the caller may not read it.",
        parameters=[OpenApiParameter("source", str, OpenApiParameter.PATH),
                    OpenApiParameter("external_id", str, OpenApiParameter.PATH)],
        responses={200: OUTPUT_SERIALIZERS[plural], **standard_errors(404)},
        examples=[OpenApiExample(f"one {label}", response_only=True, status_codes=["200"], value=read_back)],
    )
    name = spec.title
    collection = extend_schema_view(post=post, get=listing)(
        type(f"{name}CollectionApi", (RecordCollectionApi,), {"spec": spec})
    )
    one = extend_schema_view(get=detail)(type(f"{name}DetailApi", (RecordDetailApi,), {"spec": spec}))
    return collection, one


RECORD_APIS = {plural: _apis(plural) for plural in RECORD_SPECS}


# --- who is online now -----------------------------------------------------------------------
class AgentsNowParametersSerializer(QueryParametersSerializer):
    department = serializers.CharField(
        required=False, validators=[RegexValidator(_SLUG_LIST, message="A comma list of department slugs.")],
        help_text="Department slugs (repeat or comma-separate); default: every department the caller reads.",
    )


class AgentStatusCountsSerializer(serializers.Serializer):
    available = serializers.IntegerField()
    busy = serializers.IntegerField()
    away = serializers.IntegerField()
    offline = serializers.IntegerField()


class AgentNowSerializer(serializers.Serializer):
    agent = serializers.CharField()
    status = serializers.ChoiceField(choices=AgentStatus.choices)
    since = serializers.DateTimeField(help_text="When the current status began: the first event of the unbroken "
                                      "run of this status, or, for an agent silent past the timeout, the moment "
                                      "its last event timed out.")
    last_event_at = serializers.DateTimeField()


class DepartmentAgentsNowSerializer(serializers.Serializer):
    department = serializers.SlugField()
    counts = AgentStatusCountsSerializer(help_text="Agents per current status (an agent role: itself only).")
    online = serializers.IntegerField(help_text="Agents available, busy or away.")
    agents = AgentNowSerializer(many=True, allow_null=True, help_text=(
        "Each agent's current status (managers and staff; an agent role sees only itself); null for viewers, "
        "who see the counts only."))


class AgentsNowSerializer(serializers.Serializer):
    as_of = serializers.DateTimeField()
    timeout_seconds = serializers.IntegerField(help_text="CSKPI_PRESENCE_TIMEOUT_SECONDS: a status lasts at most "
                                               "this long without a newer event.")
    departments = DepartmentAgentsNowSerializer(many=True)


class AgentsNowApi(APIView):
    @extend_schema(
        operation_id="agents_now",
        tags=["agent-events"],
        summary="Who is online now: each agent's current status, since when, and counts per status",
        description=(
            "From the agent status events (`/agent-events`). An agent silent for longer than the presence "
            "timeout (`CSKPI_PRESENCE_TIMEOUT_SECONDS`, default 8 h) is offline. Managers and staff see every "
            "agent; viewers the counts only (`agents` null); an agent role only itself. Every agent that ever "
            "sent an event in the department is listed."
        ),
        parameters=[AgentsNowParametersSerializer],
        responses={200: AgentsNowSerializer, **standard_errors()},
    )
    def get(self, request):
        params = AgentsNowParametersSerializer(data=query_params_read(request.query_params, lists=("department",)))
        params.is_valid(raise_exception=True)
        slugs = tuple(s for s in params.validated_data.get("department", "").split(",") if s)
        data = agents_now_get(access=request_access(request), departments=slugs)
        return Response(AgentsNowSerializer(data).data)
