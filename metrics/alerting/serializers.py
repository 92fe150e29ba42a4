"""Input parsing of alert rules and event filters (strict JSON types, each error naming its field),
and the output shapes."""

import math

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, serializers

from cskpi.access import Access
from cskpi.models import Department
from cskpi.serializers import QueryParametersSerializer, StrictCharField, StrictSlugField
from ingestion.apis import RecordTimeField
from metrics.alerting import webhooks
from metrics.alerting.choices import AlertCondition, AlertState, AttemptOutcome, DeliveryStatus
from metrics.alerting.selectors import can_manage
from metrics.alerting.windows import (
    DURATION_PATTERN,
    MAX_WINDOW_SECONDS,
    MIN_WINDOW_SECONDS,
    duration_format,
    duration_parse,
)
from metrics.catalog import KPIS
from metrics.planner import kpi_dimension_message, kpi_dimensions_missing

_MAX_THRESHOLD = 1e15
_NO_NUL = r"^[^\x00]*$"
_CHANNEL = r"^([a-z0-9][a-z0-9_-]*)?$"
# The rule's filters: public name -> model attribute.
_FILTERS = {"agent": "agent", "channel": "channel", "check": "check_name"}


def _invalid(field: str, message: str, code: str) -> serializers.ValidationError:
    return serializers.ValidationError({field: [exceptions.ErrorDetail(message, code=code)]})


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer only (DRF would take "5", 5.0 and true)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


@extend_schema_field({"type": "number", "minimum": -_MAX_THRESHOLD, "maximum": _MAX_THRESHOLD})
class FiniteNumberField(serializers.Field):
    default_error_messages = {
        "invalid": "A JSON number is required.",
        "not_finite": "The number must be finite.",
        "out_of_range": f"The number must be between -{_MAX_THRESHOLD:g} and {_MAX_THRESHOLD:g}.",
    }

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        try:
            value = float(data)
        except OverflowError:
            self.fail("out_of_range")
        if not math.isfinite(value):
            self.fail("not_finite")
        if abs(value) > _MAX_THRESHOLD:
            self.fail("out_of_range")
        return value

    def to_representation(self, value):
        return value


class AlertRuleInputSerializer(serializers.Serializer):
    """An alert rule as written: every field on create (POST), any but `department` on PATCH."""

    name = StrictCharField(max_length=200, required=False, allow_blank=True, trim_whitespace=False,
                           validators=[RegexValidator(_NO_NUL)])
    department = StrictSlugField(max_length=64, help_text="Slug of a department you manage (fixed once created).")
    kpi = serializers.ChoiceField(choices=sorted(KPIS), help_text="A catalog KPI key (GET /api/v1/kpis).",
                                  error_messages={"invalid_choice": "Unknown KPI '{input}'; see GET /api/v1/kpis."})
    agent = StrictCharField(max_length=128, required=False, allow_blank=True, trim_whitespace=False,
                            validators=[RegexValidator(_NO_NUL)],
                            help_text="Filter: only this agent's records ('' for none).")
    channel = StrictCharField(max_length=32, required=False, allow_blank=True, trim_whitespace=False,
                              validators=[RegexValidator(_CHANNEL)],
                              help_text="Filter: only this channel ('' for none).")
    check = StrictCharField(max_length=64, required=False, allow_blank=True, trim_whitespace=False,
                            validators=[RegexValidator(_CHANNEL)], source="check_name",
                            help_text="Filter: only this system check, e.g. payout-gateway ('' for none); "
                                      "system-check KPIs only.")
    window = StrictCharField(
        max_length=40, validators=[RegexValidator(DURATION_PATTERN)],
        help_text="Rolling window ending now, ISO 8601 duration from PT5M to P7D (e.g. PT15M, PT1H, P1D).",
    )
    condition = serializers.ChoiceField(choices=AlertCondition.choices)
    threshold = FiniteNumberField(help_text="The value to compare; for change_* a percentage change.")
    min_sample_size = StrictIntegerField(required=False, min_value=0, max_value=2**31 - 1,
                                         help_text="Fewer samples in the window is not a breach. Default 0.")
    for_evaluations = StrictIntegerField(required=False, min_value=1, max_value=1000,
                                         help_text="Consecutive breaching evaluations before firing. Default 1.")
    webhook_url = StrictCharField(max_length=2000, required=False, allow_blank=True, trim_whitespace=False,
                                  help_text="https URL to POST firing and resolved events to ('' for none).")
    secret = StrictCharField(min_length=16, max_length=256, required=False, write_only=True,
                             trim_whitespace=False, validators=[RegexValidator(_NO_NUL)],
                             help_text="Signing key of the webhooks (write-only). Required with webhook_url.")
    enabled = StrictBooleanField(required=False)

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": [exceptions.ErrorDetail(
                "Send a JSON object.", code="invalid")]})
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: [exceptions.ErrorDetail(
                f"Unknown field; use one of {', '.join(self.fields)}.", code="unknown_field")] for name in unknown})
        return super().to_internal_value(data)

    def validate_window(self, value):
        seconds = duration_parse(value)
        if seconds is None:
            raise serializers.ValidationError("An ISO 8601 duration such as PT15M or P1D.", code="invalid")
        if not MIN_WINDOW_SECONDS <= seconds <= MAX_WINDOW_SECONDS:
            raise serializers.ValidationError("The window must be from PT5M to P7D.", code="out_of_range")
        return seconds

    def validate_webhook_url(self, value):
        if value:
            try:
                webhooks.target_resolve(value)
            except webhooks.WebhookTargetError as exc:
                raise serializers.ValidationError(str(exc), code=exc.code) from None
        return value

    def validate(self, attrs):
        access: Access = self.context["access"]
        rule = self.context.get("rule")
        if "window" in attrs:
            attrs["window_seconds"] = attrs.pop("window")
        if rule is None:
            attrs["department"] = self._department(access, attrs["department"])
        elif "department" in attrs and attrs["department"] != rule.department.slug:
            raise _invalid("department", "A rule's department cannot change; create a rule there.", "immutable")
        else:
            attrs.pop("department", None)
        kpi = KPIS[attrs.get("kpi", rule.kpi if rule else None)]
        for name, attribute in _FILTERS.items():
            if attrs.get(attribute, getattr(rule, attribute, "")):
                for dimension, lacking in kpi_dimensions_missing(kpi=kpi, dimensions={name}).items():
                    raise _invalid(name, f"{kpi_dimension_message(kpi, lacking, dimension)}, so it cannot be "
                                   "filtered by it.", "dimension_not_shared")
        url = attrs.get("webhook_url", rule.webhook_url if rule else "")
        has_secret = bool(attrs.get("secret") or (rule and rule.secret))
        if url and not has_secret:
            raise _invalid("secret", "A webhook needs a secret (16+ characters) to sign with.", "required")
        return attrs

    @staticmethod
    def _department(access: Access, slug: str) -> Department:
        grant = access.get(slug)
        if grant is None:
            if access.is_staff:
                raise _invalid("department", f"No department '{slug}'.", "unknown_department")
            raise exceptions.PermissionDenied(f"department: you may not manage alert rules of '{slug}'.")
        if not can_manage(access=access, department_id=grant.department.id):
            raise exceptions.PermissionDenied(f"department: only managers of '{slug}' (or staff) manage its rules.")
        return grant.department


class AlertRuleOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    department = serializers.CharField(source="department.slug")
    kpi = serializers.CharField()
    agent = serializers.CharField(allow_null=True)
    channel = serializers.CharField(allow_null=True)
    check = serializers.CharField(allow_null=True, source="check_name")
    window = serializers.SerializerMethodField()
    condition = serializers.ChoiceField(choices=AlertCondition.choices)
    threshold = serializers.FloatField()
    min_sample_size = serializers.IntegerField()
    for_evaluations = serializers.IntegerField()
    webhook_url = serializers.SerializerMethodField(help_text="Shown to those who manage the rule; else null.")
    has_secret = serializers.SerializerMethodField()
    enabled = serializers.BooleanField()
    state = serializers.ChoiceField(choices=AlertState.choices)
    state_since = serializers.DateTimeField(allow_null=True)
    last_evaluated_at = serializers.DateTimeField(allow_null=True)
    last_value = serializers.FloatField(allow_null=True)
    last_sample_size = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def to_representation(self, rule):
        data = super().to_representation(rule)
        data["agent"], data["channel"], data["check"] = rule.agent or None, rule.channel or None, rule.check_name or None
        return data

    def get_window(self, rule) -> str:
        return duration_format(rule.window_seconds)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_webhook_url(self, rule) -> str | None:
        if not can_manage(access=self.context["access"], department_id=rule.department_id):
            return None
        return rule.webhook_url or None

    def get_has_secret(self, rule) -> bool:
        return bool(rule.secret)


class DeliverySummarySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)
    attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)


class AlertEventOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="Also the X-Cskpi-Event-Id of its webhook.")
    rule = serializers.UUIDField(source="rule_id")
    department = serializers.CharField(source="department.slug")
    kpi = serializers.CharField()
    agent = serializers.CharField(allow_null=True)
    channel = serializers.CharField(allow_null=True)
    check = serializers.CharField(allow_null=True, source="check_name")
    condition = serializers.ChoiceField(choices=AlertCondition.choices)
    threshold = serializers.FloatField()
    window = serializers.SerializerMethodField()
    window_start = serializers.DateTimeField()
    window_end = serializers.DateTimeField()
    state = serializers.ChoiceField(choices=AlertState.choices)
    previous_state = serializers.ChoiceField(choices=AlertState.choices)
    value = serializers.FloatField(allow_null=True)
    sample_size = serializers.IntegerField()
    baseline_value = serializers.FloatField(allow_null=True, help_text="The window before (change conditions).")
    change_percent = serializers.FloatField(allow_null=True)
    at = serializers.DateTimeField()
    reason = serializers.ChoiceField(choices=["evaluation", "disabled"])
    delivery = serializers.SerializerMethodField()

    def to_representation(self, event):
        data = super().to_representation(event)
        data["agent"], data["channel"], data["check"] = (event.agent or None, event.channel or None,
                                                          event.check_name or None)
        return data

    def get_window(self, event) -> str:
        return duration_format(event.window_seconds)

    @extend_schema_field(DeliverySummarySerializer(allow_null=True))
    def get_delivery(self, event):
        delivery = getattr(event, "delivery", None) if hasattr(event, "delivery") else None
        if delivery is None:
            return None
        next_at = delivery.next_attempt_at if delivery.status == DeliveryStatus.PENDING else None
        return {"status": delivery.status, "attempts": delivery.attempts, "next_attempt_at": next_at,
                "delivered_at": delivery.delivered_at}


class AlertEventPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    results = AlertEventOutputSerializer(many=True)


class WebhookAttemptSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    url = serializers.CharField()
    address = serializers.CharField(allow_null=True, help_text="The IP address connected to.")
    status_code = serializers.IntegerField(allow_null=True)
    outcome = serializers.ChoiceField(choices=[*AttemptOutcome.values, "in_flight"])
    error = serializers.CharField(allow_null=True)
    duration_ms = serializers.FloatField(allow_null=True)

    def to_representation(self, attempt):
        data = super().to_representation(attempt)
        data["outcome"] = attempt.outcome or "in_flight"
        data["address"], data["error"] = attempt.address or None, attempt.error or None
        return data


class WebhookDeliveryLogSerializer(serializers.Serializer):
    event = serializers.UUIDField()
    status = serializers.ChoiceField(choices=DeliveryStatus.choices, allow_null=True,
                                     help_text="Null when the event has no webhook (pending/ok transitions).")
    attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    results = WebhookAttemptSerializer(many=True)


class AlertEventFilterSerializer(QueryParametersSerializer):
    rule = serializers.UUIDField(required=False)
    department = serializers.SlugField(required=False, max_length=64)
    state = serializers.ChoiceField(choices=AlertState.choices, required=False)
    start = RecordTimeField(required=False, help_text="Events at or after (ISO 8601 with offset).")
    end = RecordTimeField(required=False, help_text="Events before (ISO 8601 with offset).")
    cursor = serializers.CharField(required=False, max_length=200, trim_whitespace=False,
                                   validators=[RegexValidator(_NO_NUL)], help_text="From the `next` link.")
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=1000, default=100)


    def validate(self, attrs):
        if attrs.get("start") and attrs.get("end") and attrs["end"] <= attrs["start"]:
            raise _invalid("end", "`end` must be after `start`.", "end_before_start")
        return attrs


class AlertRuleFilterSerializer(QueryParametersSerializer):
    department = serializers.SlugField(required=False, max_length=64)

