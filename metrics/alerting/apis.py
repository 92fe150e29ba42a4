"""HTTP entrypoints of alerting. Thin: parse, authorise, call one service or selector, render."""

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import APIView

from cskpi.access import request_access
from cskpi.errors import NotFoundError
from cskpi.schema import error_response, standard_errors
from metrics.alerting.selectors import (
    EventQuery,
    alert_event_get,
    alert_event_list,
    alert_rule_get,
    alert_rule_list,
    can_manage,
    webhook_attempt_list,
)
from metrics.alerting.serializers import (
    AlertEventFilterSerializer,
    AlertEventOutputSerializer,
    AlertEventPageSerializer,
    AlertRuleFilterSerializer,
    AlertRuleInputSerializer,
    AlertRuleOutputSerializer,
    WebhookDeliveryLogSerializer,
)
from metrics.alerting.services import alert_rule_create, alert_rule_delete, alert_rule_update

_TAG = ["alerts"]
_RULE_EXAMPLE = {
    "name": "Cashout errors", "department": "cskh-hn", "kpi": "cashout_error_rate", "window": "PT1H",
    "condition": "above", "threshold": 5, "min_sample_size": 20, "for_evaluations": 2, "enabled": True,
}
_RULE_INVALID = error_response(
    "A field is wrong; `errors[].field` names it (codes: invalid_choice (unknown KPI), out_of_range (window), "
    "invalid (threshold not a number), not_finite, https_required, forbidden_address, unresolvable_host, "
    "required, unknown_field, immutable, ...). Nothing is stored.",
    "invalid", "window: The window must be from PT5M to P7D.",
    [{"field": "window", "code": "out_of_range", "message": "The window must be from PT5M to P7D."}],
)
_RULE_FORBIDDEN = error_response(
    "The caller does not manage the department (managers and staff do).", "permission_denied",
    "department: only managers of 'cskh-hn' (or staff) manage its rules.",
)
_RULE_ID = OpenApiParameter("rule_id", str, OpenApiParameter.PATH, description="The rule's id (UUID).")
_EVENT_ID = OpenApiParameter("event_id", str, OpenApiParameter.PATH, description="The event's id (UUID).")


def _rule_or_404(request, rule_id):
    rule = alert_rule_get(access=request_access(request), rule_id=rule_id)
    if rule is None:
        raise NotFoundError("No such alert rule, or not one you may read.")
    return rule


def _managed_rule(request, rule_id):
    rule = _rule_or_404(request, rule_id)
    if not can_manage(access=request_access(request), department_id=rule.department_id):
        raise exceptions.PermissionDenied("Only managers of the rule's department (or staff) change it.")
    return rule


class AlertRuleCollectionApi(APIView):
    @extend_schema(
        tags=_TAG, operation_id="alert_rules_list",
        summary="Alert rules the caller may read",
        description="Managers and staff: every rule of their departments. Viewers: rules without an agent "
                    "filter. Agents: rules filtered on their own agent. `webhook_url` only for managers.",
        parameters=[AlertRuleFilterSerializer],
        responses={200: AlertRuleOutputSerializer(many=True), **standard_errors()},
    )
    def get(self, request):
        params = AlertRuleFilterSerializer(data=request.query_params.dict())
        params.is_valid(raise_exception=True)
        access = request_access(request)
        rules = alert_rule_list(access=access, department=params.validated_data.get("department"))
        return Response(AlertRuleOutputSerializer(rules, many=True, context={"access": access}).data)

    @extend_schema(
        tags=_TAG, operation_id="alert_rules_create",
        summary="Create an alert rule (managers of the department, staff)",
        description=(
            "Watches `kpi` of `department` (optionally one `agent` / `channel` / `check`) over a rolling `window` ending "
            "now, evaluated after each recompute of the department and every CSKPI_ALERT_EVAL_SECONDS. "
            "`above`/`below` compare the value with `threshold`; `change_above`/`change_below` compare the "
            "percentage change vs the window just before (a drop of more than 20 %: change_below, -20). "
            "`webhook_url` (with its write-only `secret`, 16+ characters) must be https and resolve to public "
            "addresses only."
        ),
        request=AlertRuleInputSerializer,
        responses={201: AlertRuleOutputSerializer, **standard_errors(), 400: _RULE_INVALID, 403: _RULE_FORBIDDEN},
        examples=[OpenApiExample("cashout error rate", value=_RULE_EXAMPLE, request_only=True),
                  OpenApiExample("no system check for 15 minutes", request_only=True, value={
                      "department": "cskh-hn", "kpi": "system_checks", "check": "payout-gateway", "window": "PT15M",
                      "condition": "below", "threshold": 1})],
    )
    def post(self, request):
        access = request_access(request)
        serializer = AlertRuleInputSerializer(data=request.data, context={"access": access})
        serializer.is_valid(raise_exception=True)
        rule = alert_rule_create(created_by=request.user, **serializer.validated_data)
        return Response(AlertRuleOutputSerializer(rule, context={"access": access}).data, status=201)


class AlertRuleDetailApi(APIView):
    @extend_schema(tags=_TAG, operation_id="alert_rules_retrieve", summary="One alert rule",
                   parameters=[_RULE_ID], responses={200: AlertRuleOutputSerializer, **standard_errors(404)})
    def get(self, request, rule_id):
        rule = _rule_or_404(request, rule_id)
        return Response(AlertRuleOutputSerializer(rule, context={"access": request_access(request)}).data)

    @extend_schema(
        tags=_TAG, operation_id="alert_rules_partial_update",
        summary="Change an alert rule (managers of the department, staff)",
        description="Any field but `department`. Disabling a rule that is pending or firing records an `ok` "
                    "event (and sends the resolved webhook if it was firing).",
        parameters=[_RULE_ID], request=AlertRuleInputSerializer(partial=True),
        responses={200: AlertRuleOutputSerializer, **standard_errors(404), 400: _RULE_INVALID,
                   403: _RULE_FORBIDDEN},
    )
    def patch(self, request, rule_id):
        access = request_access(request)
        rule = _managed_rule(request, rule_id)
        serializer = AlertRuleInputSerializer(data=request.data, partial=True,
                                              context={"access": access, "rule": rule})
        serializer.is_valid(raise_exception=True)
        rule = alert_rule_update(rule=rule, **serializer.validated_data)
        return Response(AlertRuleOutputSerializer(rule, context={"access": access}).data)

    @extend_schema(tags=_TAG, operation_id="alert_rules_destroy",
                   summary="Delete an alert rule and its events (managers of the department, staff)",
                   parameters=[_RULE_ID], responses={204: None, **standard_errors(404), 403: _RULE_FORBIDDEN})
    def delete(self, request, rule_id):
        alert_rule_delete(rule=_managed_rule(request, rule_id))
        return Response(status=204)


class AlertEventCollectionApi(APIView):
    @extend_schema(
        tags=_TAG, operation_id="alert_events_list",
        summary="State transitions of the alert rules the caller may read, newest first (cursor-paginated)",
        parameters=[AlertEventFilterSerializer],
        responses={200: AlertEventPageSerializer, **standard_errors(404)},
    )
    def get(self, request):
        params = AlertEventFilterSerializer(data=request.query_params.dict())
        params.is_valid(raise_exception=True)
        events, cursor = alert_event_list(access=request_access(request), query=EventQuery(**params.validated_data))
        next_url = None
        if cursor:
            query = request.query_params.copy()
            query["cursor"] = cursor
            next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
        return Response({"next": next_url, "results": AlertEventOutputSerializer(events, many=True).data})


def _event_or_404(request, event_id):
    event = alert_event_get(access=request_access(request), event_id=event_id)
    if event is None:
        raise NotFoundError("No such alert event, or not one you may read.")
    return event


class AlertEventDetailApi(APIView):
    @extend_schema(tags=_TAG, operation_id="alert_events_retrieve", summary="One alert event",
                   parameters=[_EVENT_ID], responses={200: AlertEventOutputSerializer, **standard_errors(404)})
    def get(self, request, event_id):
        return Response(AlertEventOutputSerializer(_event_or_404(request, event_id)).data)


class AlertEventDeliveriesApi(APIView):
    @extend_schema(
        tags=_TAG, operation_id="alert_events_deliveries",
        summary="Every webhook attempt of an event (managers of the department, staff)",
        parameters=[_EVENT_ID],
        responses={200: WebhookDeliveryLogSerializer, **standard_errors(404)},
    )
    def get(self, request, event_id):
        event = _event_or_404(request, event_id)
        if not can_manage(access=request_access(request), department_id=event.department_id):
            raise exceptions.PermissionDenied("Only managers of the department (or staff) see webhook attempts.")
        delivery = getattr(event, "delivery", None) if hasattr(event, "delivery") else None
        return Response(WebhookDeliveryLogSerializer({
            "event": event.id,
            "status": delivery and delivery.status,
            "attempts": delivery.attempts if delivery else 0,
            "next_attempt_at": delivery.next_attempt_at if delivery and delivery.status == "pending" else None,
            "delivered_at": delivery and delivery.delivered_at,
            "results": webhook_attempt_list(event=event),
        }).data)
