from django.urls import path

from ingestion.apis import RECORD_APIS, AgentsNowApi

urlpatterns = [path("agents/now", AgentsNowApi.as_view(), name="agents-now")]
for plural, (collection, detail) in RECORD_APIS.items():
    urlpatterns += [
        path(plural, collection.as_view(), name=plural),
        # `path`: an external_id may hold "/" (sent as is or as %2F); the source is a slug (no "/").
        path(f"{plural}/<str:source>/<path:external_id>", detail.as_view(), name=f"{plural}-detail"),
    ]
