from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cskpi.choices import ReadLevel, Role, SlaClockKind
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


# --- business hours and SLA policies (the bodies are checked by cskpi.calendars / service_levels;
# these serializers describe them for OpenAPI and shape the answers) -----------------------------
def _interval():
    return serializers.ListField(
        child=serializers.CharField(help_text="HH:MM, local; an end may be 24:00."), min_length=2, max_length=2,
        help_text='[start, end) in local time, e.g. ["08:00", "12:00"]; an end before the start crosses midnight '
                  '(["22:00", "06:00"]).')


class WeeklyScheduleSerializer(serializers.Serializer):
    mon = serializers.ListField(child=_interval(), required=False, help_text="Open intervals; left out: closed.")
    tue = serializers.ListField(child=_interval(), required=False)
    wed = serializers.ListField(child=_interval(), required=False)
    thu = serializers.ListField(child=_interval(), required=False)
    fri = serializers.ListField(child=_interval(), required=False)
    sat = serializers.ListField(child=_interval(), required=False)
    sun = serializers.ListField(child=_interval(), required=False)


class CalendarVersionSerializer(serializers.Serializer):
    effective_from = serializers.DateField(help_text="Local date from which this version measures records "
                                                     "(by their anchor time); unique among the versions.")
    weekly = WeeklyScheduleSerializer()
    holidays = serializers.ListField(child=serializers.DateField(), required=False,
                                     help_text="Local dates closed all day.")
    holiday_country = serializers.CharField(required=False, allow_null=True, min_length=2, max_length=2,
                                            help_text="ISO 3166 alpha-2 code: its public holidays close the day "
                                                      "too (e.g. VN, with Tết).")


class CalendarInputSerializer(serializers.Serializer):
    versions = CalendarVersionSerializer(many=True)


class CalendarOutputSerializer(CalendarInputSerializer):
    updated_at = serializers.DateTimeField(allow_null=True, help_text="Last change; null: never set (open 24/7).")


class SlaChannelTargetsSerializer(serializers.Serializer):
    first_response_seconds = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    resolution_seconds = serializers.IntegerField(required=False, allow_null=True, min_value=0)


class SlaPolicyInputSerializer(serializers.Serializer):
    first_response_seconds = serializers.IntegerField(required=False, allow_null=True, min_value=0,
                                                      help_text="Business seconds to a first response; null: none.")
    resolution_seconds = serializers.IntegerField(required=False, allow_null=True, min_value=0,
                                                  help_text="Business seconds to resolution; null: none.")
    channels = serializers.DictField(child=SlaChannelTargetsSerializer(), required=False,
                                     help_text="Per channel slug, the targets it overrides (null: none there).")
    cashout_response_seconds = serializers.IntegerField(required=False, allow_null=True, min_value=0,
                                                        help_text="Seconds to a cashout's first response.")
    cashout_clock = serializers.ChoiceField(choices=SlaClockKind.choices, required=False,
                                            help_text="The clock of the cashout target (default business).")


class SlaPolicyOutputSerializer(SlaPolicyInputSerializer):
    channels = serializers.DictField(
        child=serializers.DictField(child=serializers.IntegerField(allow_null=True, min_value=0)),
        help_text="Per channel slug, the targets it overrides, as set (a target left out is the department's).")
    updated_at = serializers.DateTimeField(allow_null=True, help_text="Last change; null: no policy (SLA KPIs null).")
