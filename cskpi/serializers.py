from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cskpi.choices import DEFAULT_CURRENCY, ReadLevel, Role
from cskpi.currencies import ISO_4217_CHOICES
from cskpi.validators import zone_get


class StrictStringMixin:
    """JSON strings only: DRF's CharField would quietly turn 12 or true into "12" or "True"."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(StrictStringMixin, serializers.CharField):
    pass


class StrictSlugField(StrictStringMixin, serializers.SlugField):
    pass


class QueryParametersSerializer(serializers.Serializer):
    """Query parameters of a read: a name it does not know is a 400 naming it (a typo such as
    `grouping=agent` must not silently answer something else)."""

    def to_internal_value(self, data):
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: [serializers.ErrorDetail(
                f"Unknown parameter; use one of {', '.join(self.fields)}.", code="unknown_parameter")]
                for name in unknown})
        return super().to_internal_value(data)


class DepartmentInputSerializer(serializers.Serializer):
    slug = StrictSlugField(max_length=64)
    name = StrictCharField(
        max_length=200, trim_whitespace=False, validators=[RegexValidator(r"^[^\x00]+$", message="Must not hold NUL characters.")]
    )
    # A plain string, not a 600-value enum: the IANA list differs between hosts and releases, and
    # generated clients choke on such enums. Host-dependent names (localtime, Factory) are refused.
    timezone = StrictCharField(
        max_length=64, required=False, help_text="IANA zone name, e.g. Asia/Ho_Chi_Minh.",
    )

    currency = serializers.ChoiceField(
        choices=ISO_4217_CHOICES, required=False,
        help_text=f"ISO 4217 code of the reporting currency (money on its records, e.g. a customer's MRR); "
                  f"default {DEFAULT_CURRENCY}.",
    )

    def validate_timezone(self, value):
        if zone_get(value) is None:
            raise serializers.ValidationError(f"'{value}' is not an IANA time zone.", code="invalid_timezone")
        return value



READ_LEVEL_ROLE = {ReadLevel.AGENT: "agent", ReadLevel.DEPARTMENT: "viewer", ReadLevel.FULL: "manager"}
CALLER_ROLES = ("staff", *Role.values)


class DepartmentOutputSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    timezone = serializers.CharField()
    currency = serializers.CharField(help_text="ISO 4217 code of the reporting currency.")
    roles = serializers.SerializerMethodField(help_text="What the caller may do here.")

    @extend_schema_field(serializers.ListField(child=serializers.ChoiceField(choices=CALLER_ROLES)))
    def get_roles(self, department) -> list[str]:
        access = self.context["access"]
        if access.is_staff:
            return ["staff"]
        entry = access.get(department.slug)
        roles = ["ingest"] if entry.can_ingest else []
        if entry.can_read:
            roles.append(READ_LEVEL_ROLE[entry.read_level])
        return roles
