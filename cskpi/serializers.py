import copy

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cskpi.calendars import MAX_HOLIDAYS, MAX_INTERVALS_PER_DAY, MAX_VERSIONS
from cskpi.choices import DEFAULT_CURRENCY, ReadLevel, Role, SlaClockKind
from cskpi.currencies import ISO_4217_CHOICES
from cskpi.service_levels import MAX_TARGET_SECONDS
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

    def get_fields(self):
        # Shallow copies of the declared fields where DRF deep-copies them (re-building each from its
        # arguments): query parameters are flat fields, nothing in them changes per request but what
        # bind() sets on the copy, and the deep copies were a tenth of the commonest KPI query's time.
        return {name: copy.copy(field) for name, field in self._declared_fields.items()}

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


# --- business hours and SLA policies (the bodies are checked by cskpi.calendars / service_levels;
# these serializers describe them for OpenAPI and shape the answers) -----------------------------
_TIME = RegexValidator(r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$", message="HH:MM, 00:00 to 24:00.")


def _interval():
    return serializers.ListField(
        child=serializers.CharField(validators=[_TIME], help_text="HH:MM, local; 24:00 only as an end."),
        min_length=2, max_length=2,
        help_text='[start, end) in local time, e.g. ["08:00", "12:00"]; an end before the start crosses midnight '
                  '(["22:00", "06:00"]). Intervals of a day may not overlap, nor an end equal its start.')


def _day(**kwargs):
    return serializers.ListField(child=_interval(), required=False, max_length=MAX_INTERVALS_PER_DAY, **kwargs)


class WeeklyScheduleSerializer(serializers.Serializer):
    mon = _day(help_text="Open intervals; a weekday left out is closed.")
    tue = _day()
    wed = _day()
    thu = _day()
    fri = _day()
    sat = _day()
    sun = _day()


class CalendarVersionSerializer(serializers.Serializer):
    effective_from = serializers.DateField(help_text="Local date (1900-2999) from which this version measures "
                                                     "records (by their anchor time); unique among the versions.")
    weekly = WeeklyScheduleSerializer()
    holidays = serializers.ListField(child=serializers.DateField(), required=False, max_length=MAX_HOLIDAYS,
                                     help_text="Local dates (1900-2999) closed all day.")
    holiday_country = serializers.CharField(
        required=False, allow_null=True, validators=[RegexValidator(r"^[A-Z]{2}$")],
        help_text="ISO 3166 alpha-2 code with known public holidays (e.g. VN, with Tết): they close the day too.")


class CalendarInputSerializer(serializers.Serializer):
    versions = serializers.ListField(child=CalendarVersionSerializer(), max_length=MAX_VERSIONS)


class CalendarOutputSerializer(serializers.Serializer):
    versions = CalendarVersionSerializer(many=True)
    updated_at = serializers.DateTimeField(allow_null=True, help_text="Last change; null: never set (open 24/7).")


def _target(help_text=None):
    return serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=MAX_TARGET_SECONDS,
                                    help_text=help_text)


class SlaChannelTargetsSerializer(serializers.Serializer):
    first_response_seconds = _target()
    resolution_seconds = _target()


class SlaPolicyInputSerializer(serializers.Serializer):
    first_response_seconds = _target("Business seconds to a first response; null: no target.")
    resolution_seconds = _target("Business seconds to resolution; null: no target.")
    channels = serializers.DictField(child=SlaChannelTargetsSerializer(), required=False,
                                     help_text="Per channel slug, the targets it overrides (null there: no target "
                                               "on that channel).")
    cashout_response_seconds = _target("Seconds to a cashout's first response, on `cashout_clock`; null: none.")
    cashout_clock = serializers.ChoiceField(choices=SlaClockKind.choices, required=False,
                                            help_text="The clock of the cashout target (default business).")


class SlaPolicyOutputSerializer(serializers.Serializer):
    first_response_seconds = serializers.IntegerField(allow_null=True)
    resolution_seconds = serializers.IntegerField(allow_null=True)
    channels = serializers.DictField(
        child=serializers.DictField(child=serializers.IntegerField(allow_null=True)),
        help_text="Per channel slug, the targets it overrides, as set (a target left out is the department's).")
    cashout_response_seconds = serializers.IntegerField(allow_null=True)
    cashout_clock = serializers.ChoiceField(choices=SlaClockKind.choices)
    updated_at = serializers.DateTimeField(allow_null=True, help_text="Last change; null: no policy (SLA KPIs null).")
