from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from cskpi.access import department_setting_scope, request_access
from cskpi.errors import exceptions
from cskpi.schema import HealthSerializer, error_response, standard_errors
from cskpi.selectors import department_calendar_get, department_list, department_sla_get, health_get
from cskpi.serializers import (
    CalendarInputSerializer,
    CalendarOutputSerializer,
    DepartmentInputSerializer,
    DepartmentOutputSerializer,
    SlaPolicyInputSerializer,
    SlaPolicyOutputSerializer,
)
from cskpi.services import department_calendar_put, department_create, department_sla_put


class HealthApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Health: database and broker reachability, recompute backlog",
        auth=[],
        responses={
            200: HealthSerializer,
            503: HealthSerializer,
        },
        examples=[OpenApiExample("healthy", value={"status": "ok", "database": "ok", "broker": "ok",
                                                    "pending_buckets": 0}, response_only=True)],
    )
    def get(self, request):
        health = health_get()
        return Response(health, status=status.HTTP_200_OK if health["status"] == "ok" else 503)


class DepartmentListCreateApi(APIView):
    @extend_schema(
        summary="List the departments the caller holds a grant on (all for staff)",
        responses={200: DepartmentOutputSerializer(many=True), **standard_errors()},
    )
    def get(self, request):
        access = request_access(request)
        departments = department_list(access=access)
        return Response(DepartmentOutputSerializer(departments, many=True, context={"access": access}).data)

    @extend_schema(
        summary="Create a department (staff only)",
        request=DepartmentInputSerializer,
        responses={
            201: DepartmentOutputSerializer,
            **standard_errors(),
            403: error_response("Only staff may create departments.", "permission_denied",
                                "Only staff may create departments."),
            409: error_response("A department with this slug exists.", "conflict",
                                "A department with this slug exists.",
                                [{"field": "slug", "code": "unique", "message": "A department with this slug exists."}]),
        },
        examples=[OpenApiExample("create", value={"slug": "cskh-hn", "name": "CSKH Hà Nội",
                                                  "timezone": "Asia/Ho_Chi_Minh", "currency": "VND"},
                                                  request_only=True)],
    )
    def post(self, request):
        access = request_access(request)
        if not access.is_staff:
            raise exceptions.PermissionDenied("Only staff may create departments.")
        serializer = DepartmentInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        department = department_create(**serializer.validated_data)
        request._cskpi_access = None  # the new department is visible to staff at once
        access = request_access(request)
        return Response(DepartmentOutputSerializer(department, context={"access": access}).data, status=201)


_CALENDAR_EXAMPLE = {"versions": [{
    "effective_from": "2026-01-01",
    "weekly": {"mon": [["08:00", "12:00"], ["13:00", "17:30"]], "tue": [["08:00", "17:30"]],
               "wed": [["08:00", "17:30"]], "thu": [["08:00", "17:30"]], "fri": [["08:00", "17:30"]],
               "sat": [["22:00", "06:00"]], "sun": []},
    "holidays": ["2026-09-02"], "holiday_country": "VN"}]}
_SLA_EXAMPLE = {"first_response_seconds": 3600, "resolution_seconds": 28800,
                "channels": {"phone": {"first_response_seconds": 60}},
                "cashout_response_seconds": 900, "cashout_clock": "calendar"}
_SETTING_ERRORS = {
    **standard_errors(404),
    403: error_response("The caller may not read the department (or it does not exist), or, to change it, is "
                        "not its manager nor staff.", "permission_denied",
                        "Only a manager of 'cskh-hn' or staff may change its calendar."),
}


class DepartmentCalendarApi(APIView):
    """A department's business hours: versions of a weekly schedule with holidays."""

    @extend_schema(
        summary="The department's business-hours calendar (no versions: open 24/7)",
        responses={200: CalendarOutputSerializer, **_SETTING_ERRORS},
    )
    def get(self, request, slug: str):
        scope = department_setting_scope(access=request_access(request), slug=slug, what="calendar")
        return Response(CalendarOutputSerializer(department_calendar_get(department=scope.department)).data)

    @extend_schema(
        summary="Replace the department's calendar (manager of the department or staff)",
        description=(
            "Every version applies to the records whose anchor time falls on or after its `effective_from` "
            "(local date) and before the next version's; a record is measured with the version in force at "
            "its anchor for its whole duration. Records before the earliest changed version keep their "
            "numbers; the others are measured again in the background (`/status`, `as_of`). Overlapping "
            "intervals, an end equal to its start, a time not HH:MM, an unknown country or a repeated "
            "`effective_from` are a 400 naming the field; nothing is changed."
        ),
        request=CalendarInputSerializer,
        responses={200: CalendarOutputSerializer, **_SETTING_ERRORS},
        examples=[OpenApiExample("calendar", value=_CALENDAR_EXAMPLE, request_only=True)],
    )
    def put(self, request, slug: str):
        scope = department_setting_scope(access=request_access(request), slug=slug, what="calendar", write=True)
        department_calendar_put(department=scope.department, body=request.data)
        return Response(CalendarOutputSerializer(department_calendar_get(department=scope.department)).data)


class DepartmentSlaApi(APIView):
    """A department's SLA targets."""

    @extend_schema(
        summary="The department's SLA policy (updated_at null: none; the SLA KPIs are null)",
        responses={200: SlaPolicyOutputSerializer, **_SETTING_ERRORS},
    )
    def get(self, request, slug: str):
        scope = department_setting_scope(access=request_access(request), slug=slug, what="SLA policy")
        return Response(SlaPolicyOutputSerializer(department_sla_get(department=scope.department)).data)

    @extend_schema(
        summary="Replace the department's SLA policy (manager of the department or staff)",
        description=(
            "Interaction targets are business seconds (the department's calendar), per channel overridable; "
            "the cashout target runs on the `business` or `calendar` clock; null: no target. Every record of "
            "the department is measured against the new policy in the background (`/status`, `as_of`). A "
            "negative or fractional target, an unknown field or clock is a 400 naming the field."
        ),
        request=SlaPolicyInputSerializer,
        responses={200: SlaPolicyOutputSerializer, **_SETTING_ERRORS},
        examples=[OpenApiExample("policy", value=_SLA_EXAMPLE, request_only=True)],
    )
    def put(self, request, slug: str):
        scope = department_setting_scope(access=request_access(request), slug=slug, what="SLA policy", write=True)
        department_sla_put(department=scope.department, body=request.data)
        return Response(SlaPolicyOutputSerializer(department_sla_get(department=scope.department)).data)
