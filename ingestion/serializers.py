"""Output serializers for reading records back, and the validators of the record-list filters.

Record inputs have no serializer: the compiled batch validator (ingestion.validation) checks them and
their OpenAPI schema is derived from the declarations (ingestion.schema)."""

from django.core.validators import RegexValidator
from rest_framework import serializers

from ingestion.choices import CashoutStatus, InteractionStatus, SurveyKind, UpsertResult
from ingestion.currencies import ISO_4217_CHOICES
from ingestion.fields import SPEC_BY_MODEL
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


_AGENT_DOC = "The sender's agent id; null for callers with a viewer grant (no per-agent data)."


class InteractionOutputSerializer(_RecordOutputBase):
    """An interaction as stored, with the durations derived from its timestamps."""

    channel = serializers.CharField()
    agent = serializers.CharField(allow_null=True, help_text=_AGENT_DOC)
    customer = serializers.CharField(allow_null=True)
    customer_region = serializers.CharField(allow_null=True)
    topic = serializers.CharField(allow_null=True)
    parent_external_id = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    first_response_at = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    status = serializers.ChoiceField(choices=InteractionStatus.choices)
    wait_seconds = serializers.FloatField(allow_null=True)
    handle_seconds = serializers.FloatField(allow_null=True)
    contact_count = serializers.IntegerField()
    self_service = serializers.BooleanField()
    first_response_seconds = serializers.FloatField(allow_null=True, help_text="first_response_at - created_at.")
    resolution_seconds = serializers.FloatField(allow_null=True, help_text="resolved_at - created_at.")


class SurveyOutputSerializer(_RecordOutputBase):
    """A survey response as stored."""

    kind = serializers.ChoiceField(choices=SurveyKind.choices)
    score = serializers.FloatField()
    submitted_at = serializers.DateTimeField()
    interaction = serializers.CharField(source="interaction_external_id", allow_null=True,
                                        help_text="external_id of the rated interaction.")
    agent = serializers.CharField(allow_null=True, help_text=_AGENT_DOC)
    customer = serializers.CharField(allow_null=True)
    channel = serializers.CharField(allow_null=True)
    comment = serializers.CharField(allow_null=True)


class CashoutOutputSerializer(_RecordOutputBase):
    """A cashout as stored, with the durations derived from its timestamps."""

    customer = serializers.CharField(allow_null=True)
    amount = serializers.CharField(
        required=False,
        help_text="Decimal string. Present only for managers and staff: for other callers the key is omitted.",
    )
    currency = serializers.ChoiceField(choices=ISO_4217_CHOICES)
    channel = serializers.CharField(allow_null=True)
    requested_at = serializers.DateTimeField()
    first_response_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    status = serializers.ChoiceField(choices=CashoutStatus.choices)
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

