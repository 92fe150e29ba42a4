from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from cskpi.access import request_access
from cskpi.errors import exceptions
from cskpi.schema import HealthSerializer, error_response, standard_errors
from cskpi.selectors import department_list, health_get
from cskpi.serializers import DepartmentInputSerializer, DepartmentOutputSerializer
from cskpi.services import department_create


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
