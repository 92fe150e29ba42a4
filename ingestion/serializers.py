"""Output serializers for reading records back, and the validators of the record-list filters.

Record inputs have no serializer: the compiled batch validator (ingestion.validation) checks them and
their OpenAPI schema is derived from the declarations (ingestion.schema)."""

from django.core.validators import RegexValidator
from rest_framework import serializers

from cskpi.currencies import ISO_4217_CHOICES
from ingestion.choices import SlaState, UpsertResult
from ingestion.fields import RECORD_SPECS, SPEC_BY_MODEL, FieldSpec, FieldType, RecordSpec
from ingestion.validation import NO_NUL_PATTERN, SLUG_PATTERN

# Document the slug and text rules in the schema (`pattern`); the coercers enforce the same rules.
SLUG_VALIDATOR = RegexValidator(SLUG_PATTERN, message="Use lowercase letters, digits, '-' and '_'.")
NO_NUL_VALIDATOR = RegexValidator(NO_NUL_PATTERN, message="May not contain NUL characters.",
                                  code="invalid_characters")


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
    # Scoped per row: context["scopes"] maps department id -> the caller's DepartmentAccess.

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


_KEY_FIELDS = {"external_id", "source", "department", "updated_at"}  # in _RecordOutputBase
_AGENT_DOC = "The sender's agent id; null for callers with a viewer grant (no per-agent data)."


def _output_field(f: FieldSpec, model) -> serializers.Field:
    """The read-back form of one declared field (choices with their labels from the model field)."""
    nullable = not f.required and f.default is None
    kwargs: dict = {"help_text": _AGENT_DOC if f.owner else f.doc}
    if f.column:
        kwargs["source"] = f.column
    if f.redacted_below is not None:
        kwargs["required"] = False
        kwargs["help_text"] += f" Present only for callers reading at level {f.redacted_below.label} or above: " \
                               "for others the key is omitted."
    elif f.type not in (FieldType.INT, FieldType.BOOL):
        kwargs["allow_null"] = nullable
    if f.type in (FieldType.CHOICE, FieldType.CURRENCY):
        # A bare enum reference (a description would wrap it in allOf): the enum documents itself.
        kwargs.pop("help_text")
        choices = ISO_4217_CHOICES if f.type == FieldType.CURRENCY else model._meta.get_field(f.target).choices
        return serializers.ChoiceField(choices=choices, **kwargs)
    if f.type == FieldType.DATETIME:
        return serializers.DateTimeField(**kwargs)
    if f.type in (FieldType.DURATION, FieldType.SCORE):
        return serializers.FloatField(**kwargs)
    if f.type == FieldType.INT:
        return serializers.IntegerField(**kwargs)
    if f.type == FieldType.BOOL:
        return serializers.BooleanField(**kwargs)
    return serializers.CharField(**kwargs)  # text, slugs, decimal strings


def record_output_serializer(spec: RecordSpec) -> type[serializers.Serializer]:
    """A record as stored, from its declaration: its public fields, then the derived durations."""
    attrs = {f.name: _output_field(f, spec.model) for f in spec.fields if f.public and f.name not in _KEY_FIELDS}
    for column in spec.timestamp_durations:
        attrs[column] = serializers.FloatField(allow_null=True, help_text="Derived on write from the timestamps, "
                                                                          "in seconds.")
    for column, stop in spec.business_durations:
        attrs[column] = serializers.FloatField(
            allow_null=True, help_text=f"Seconds from {spec.anchor} to {stop} within the department's business "
                                       "hours (its calendar; none: every second counts).")
    for clock in spec.sla_clocks:
        attrs[clock.state_column] = serializers.ChoiceField(
            choices=SlaState.choices, allow_null=True,
            help_text=f"Against the SLA policy's {clock.target}: met, breached (late, or no {clock.stop} past "
                      "the deadline) or pending (not yet due); null: no target.")
        attrs[clock.due_column] = serializers.DateTimeField(
            allow_null=True, help_text=f"The deadline: the last instant a {clock.stop} meets {clock.target}.")
    attrs["__doc__"] = f"{spec.record_type.label} as stored" + (
        ", with the durations derived from its timestamps." if spec.derived_columns else ".")
    return type(f"{spec.title}OutputSerializer", (_RecordOutputBase,), attrs)


OUTPUT_SERIALIZERS: dict[str, type[serializers.Serializer]] = {
    plural: record_output_serializer(spec) for plural, spec in RECORD_SPECS.items()
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

