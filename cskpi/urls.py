from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from cskpi.apis import DepartmentCalendarApi, DepartmentListCreateApi, DepartmentSlaApi, HealthApi
from cskpi.errors import not_found_view

api_v1 = [
    path("health", HealthApi.as_view(), name="health"),
    path("departments", DepartmentListCreateApi.as_view(), name="departments"),
    path("departments/<slug:slug>/calendar", DepartmentCalendarApi.as_view(), name="department-calendar"),
    path("departments/<slug:slug>/sla", DepartmentSlaApi.as_view(), name="department-sla"),
    path("", include("ingestion.urls")),
    path("", include("metrics.urls")),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("admin/", admin.site.urls),
    # Anything else (e.g. a trailing slash) is a JSON 404 in every mode, debug included.
    re_path(r"", not_found_view),
]

handler400 = "cskpi.errors.bad_request"
handler403 = "cskpi.errors.permission_denied"
handler404 = "cskpi.errors.page_not_found"
handler500 = "cskpi.errors.server_error"
