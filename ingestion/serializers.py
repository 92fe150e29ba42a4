"""Serializers: input ones built from the field declarations (OpenAPI only; the API validates with
the compiled batch validator), output ones for reading records back."""

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ingestion.choices import UpsertResult
from ingestion.currencies import ISO_4217_CODES
from ingestion.fields import RECORD_SPECS, SPEC_BY_MODEL, FieldSpec, FieldType, RecordSpec
from ingestion.validation import (
    AMOUNT_INTEGER_MAX,
    AMOUNT_PATTERN,
    DATETIME_YEAR_PATTERN,
    DEPARTMENT_PATTERN,
    NO_NUL_PATTERN,
    PG_INT_MAX,
    SLUG_PATTERN,
    Invalid,
    coercer_build,
    field_name_safe,
)

# Document the slug and text rules in the schema (`pattern`); the coercers enforce the same rules.
SLUG_VALIDATOR = RegexValidator(SLUG_PATTERN, message="Use lowercase letters, digits, '-' and '_'.")
DEPARTMENT_VALIDATOR = RegexValidator(DEPARTMENT_PATTERN, message="No such department.", code="unknown_department")
NO_NUL_VALIDATOR = RegexValidator(NO_NUL_PATTERN, message="May not contain NUL characters.",
                                  code="invalid_characters")


class _SpecFieldMixin:
    """A DRF field that documents itself like its base class but reads values with the declared
    coercer, so the schema serializer accepts exactly what the batch validator accepts."""

    def __init__(self, *, spec: FieldSpec, **kwargs):
        self.coerce = coercer_build(spec)
        kwargs.setdefault("help_text", spec.doc)
        kwargs.setdefault("required", spec.required)
        kwargs.setdefault("allow_null", not spec.required)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = self.coerce(data)
        if type(value) is Invalid:
            raise serializers.ValidationError(value.message, code=value.code)
        return value


class SpecCharField(_SpecFieldMixin, serializers.CharField):
    def __init__(self, **kwargs):
        super().__init__(trim_whitespace=False, **kwargs)


class SpecChoiceField(_SpecFieldMixin, serializers.ChoiceField):
    pass


@extend_schema_field({"type": "string", "format": "date-time", "pattern": DATETIME_YEAR_PATTERN})
class SpecDateTimeField(_SpecFieldMixin, serializers.DateTimeField):
    pass


class SpecFloatField(_SpecFieldMixin, serializers.FloatField):
    pass


class SpecIntegerField(_SpecFieldMixin, serializers.IntegerField):
    pass


class SpecBooleanField(_SpecFieldMixin, serializers.BooleanField):
    pass


@extend_schema_field({"anyOf": [
    {"type": "string", "pattern": AMOUNT_PATTERN, "example": "1500000.00"},
    {"type": "integer", "minimum": 1, "maximum": AMOUNT_INTEGER_MAX},
]})
class SpecAmountField(_SpecFieldMixin, serializers.Field):
    pass


@extend_schema_field({"type": "string", "enum": sorted(ISO_4217_CODES), "example": "VND"})
class SpecCurrencyField(_SpecFieldMixin, serializers.Field):
    pass


def _drf_field(spec: FieldSpec) -> serializers.Field:
    kind = spec.type
    if kind is FieldType.STR:
        return SpecCharField(spec=spec, max_length=spec.max_length, validators=[NO_NUL_VALIDATOR])
    if kind is FieldType.DEPARTMENT:
        return SpecCharField(spec=spec, max_length=spec.max_length, validators=[DEPARTMENT_VALIDATOR])
    if kind is FieldType.SLUG:
        return SpecCharField(spec=spec, max_length=spec.max_length, validators=[SLUG_VALIDATOR])
    if kind is FieldType.DATETIME:
        return SpecDateTimeField(spec=spec)
    if kind is FieldType.DURATION:
        return SpecFloatField(spec=spec, min_value=0)
    if kind is FieldType.SCORE:
        return SpecFloatField(spec=spec)
    if kind is FieldType.INT:
        return SpecIntegerField(spec=spec, min_value=spec.min_value, max_value=PG_INT_MAX)
    if kind is FieldType.BOOL:
        return SpecBooleanField(spec=spec)
    if kind is FieldType.DECIMAL:
        return SpecAmountField(spec=spec)
    if kind is FieldType.CURRENCY:
        return SpecCurrencyField(spec=spec)
    if kind is FieldType.CHOICE:
        return SpecChoiceField(spec=spec, choices=list(spec.choices or ()))
    raise ValueError(kind)  # pragma: no cover


class RecordInputSerializer(serializers.Serializer):
    """One record; unknown fields are refused. context["departments"] (slug -> id) checks the slug."""

    spec: RecordSpec

    def to_internal_value(self, data):
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, dict) else []
        problems = {safe: [serializers.ErrorDetail(f"Unknown field {safe!r}.", code="unknown_field")]
                    for safe in map(field_name_safe, unknown)}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({**problems, **exc.detail}) from None
        if problems:
            raise serializers.ValidationError(problems)
        return value

    def validate(self, attrs):
        row = {f.target: attrs.get(f.name) if attrs.get(f.name) is not None else f.default for f in self.spec.fields}
        departments = self.context.get("departments")
        if departments is not None and row["department"] not in departments:
            raise serializers.ValidationError({"department": [serializers.ErrorDetail(
                f"No department {row['department']!r}.", code="unknown_department")]})
        problems: dict[str, list] = {}
        for rule in self.spec.rules:
            for name, code, message in rule(row):
                problems.setdefault(name, []).append(serializers.ErrorDetail(message, code=code))
        if problems:
            raise serializers.ValidationError(problems)
        return attrs


def _input_serializer(spec: RecordSpec) -> type[RecordInputSerializer]:
    name = spec.record_type.value.capitalize() + "Input"
    attrs = {f.name: _drf_field(f) for f in spec.fields}
    attrs["spec"] = spec
    attrs["__doc__"] = f"One {spec.record_type.label.lower()} as a platform sends it."
    attrs["Meta"] = type("Meta", (), {"ref_name": name})
    return type(f"{name}Serializer", (RecordInputSerializer,), attrs)


INPUT_SERIALIZERS: dict[str, type[RecordInputSerializer]] = {
    plural: _input_serializer(spec) for plural, spec in RECORD_SPECS.items()
}


# --- responses -------------------------------------------------------------------------------
class UpsertItemSerializer(serializers.Serializer):
    source = serializers.CharField()
    external_id = serializers.CharField()
    result = serializers.ChoiceField(choices=UpsertResult.choices)


class UpsertResultSerializer(serializers.Serializer):
    created = serializers.IntegerField(help_text="New keys stored.")
    updated = serializers.IntegerField(help_text="Stored records replaced by newer content.")
    unchanged = serializers.IntegerField(help_text="Same content as stored (a newer updated_at is still kept).")
    stale = serializers.IntegerField(help_text="Older updated_at than the stored version: ignored.")
    items = UpsertItemSerializer(many=True, help_text="One per item, in input order.")


class _RecordOutputBase(serializers.Serializer):
    """Scoped per row: context["scopes"] maps department id -> the caller's DepartmentAccess."""

    department = serializers.CharField(source="department_slug", help_text="Department slug.")
    source = serializers.CharField()
    external_id = serializers.CharField()
    updated_at = serializers.DateTimeField(allow_null=True, help_text="The sender's modification time.")
    received_at = serializers.DateTimeField(help_text="When this version was stored.")


    def to_representation(self, instance):
        data = super().to_representation(instance)
        scope = self.context["scopes"][instance.department_id]
        # The roles of the declared fields decide (amount for managers only, agent hidden from viewers).
        return SPEC_BY_MODEL[type(instance)].redact(data, scope.read_level)


_AGENT_DOC = "The sender's agent id; null for callers with a viewer grant (no per-agent data)."


class InteractionOutputSerializer(_RecordOutputBase):
    channel = serializers.CharField()
    agent = serializers.CharField(allow_null=True, help_text=_AGENT_DOC)
    customer = serializers.CharField(allow_null=True)
    customer_region = serializers.CharField(allow_null=True)
    topic = serializers.CharField(allow_null=True)
    parent_external_id = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    first_response_at = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    status = serializers.CharField(help_text="open | pending | resolved | abandoned | missed")
    wait_seconds = serializers.FloatField(allow_null=True)
    handle_seconds = serializers.FloatField(allow_null=True)
    contact_count = serializers.IntegerField()
    self_service = serializers.BooleanField()
    first_response_seconds = serializers.FloatField(allow_null=True, help_text="first_response_at - created_at.")
    resolution_seconds = serializers.FloatField(allow_null=True, help_text="resolved_at - created_at.")


class SurveyOutputSerializer(_RecordOutputBase):
    kind = serializers.CharField(help_text="csat | nps | ces | qa")
    score = serializers.FloatField()
    submitted_at = serializers.DateTimeField()
    interaction = serializers.CharField(source="interaction_external_id", allow_null=True,
                                        help_text="external_id of the rated interaction.")
    agent = serializers.CharField(allow_null=True, help_text=_AGENT_DOC)
    customer = serializers.CharField(allow_null=True)
    channel = serializers.CharField(allow_null=True)
    comment = serializers.CharField(allow_null=True)


class CashoutOutputSerializer(_RecordOutputBase):
    customer = serializers.CharField(allow_null=True)
    amount = serializers.CharField(
        required=False,
        help_text="Decimal string. Present only for managers and staff: for other callers the key is omitted.",
    )
    currency = serializers.CharField()
    channel = serializers.CharField(allow_null=True)
    requested_at = serializers.DateTimeField()
    first_response_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    status = serializers.CharField(help_text="pending | processing | succeeded | failed")
    failure_reason = serializers.CharField(allow_null=True)
    processing_seconds = serializers.FloatField(allow_null=True, help_text="completed_at - requested_at.")
    response_seconds = serializers.FloatField(allow_null=True, help_text="first_response_at - requested_at.")


OUTPUT_SERIALIZERS: dict[str, type[serializers.Serializer]] = {
    "interactions": InteractionOutputSerializer,
    "surveys": SurveyOutputSerializer,
    "cashouts": CashoutOutputSerializer,
}


def record_page_serializer(plural: str) -> type[serializers.Serializer]:
    output = OUTPUT_SERIALIZERS[plural]
    return type(
        f"{output.__name__.replace('OutputSerializer', '')}PageSerializer",
        (serializers.Serializer,),
        {
            "next": serializers.CharField(allow_null=True, help_text="URL of the next page, null on the last."),
            "results": output(many=True),
        },
    )

