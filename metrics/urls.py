from django.urls import include, path

from metrics.apis import KpiCatalogApi, KpiSeriesApi, RecomputeStatusApi

urlpatterns = [
    path("metrics", KpiSeriesApi.as_view(), name="metrics"),
    path("kpis", KpiCatalogApi.as_view(), name="kpis"),
    path("status", RecomputeStatusApi.as_view(), name="status"),
    path("", include("metrics.alerting.urls")),
]
