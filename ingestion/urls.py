from django.urls import path

from ingestion.apis import RECORD_APIS

urlpatterns = []
for plural, (collection, detail) in RECORD_APIS.items():
    urlpatterns += [
        path(plural, collection.as_view(), name=plural),
        path(f"{plural}/<str:source>/<str:external_id>", detail.as_view(), name=f"{plural}-detail"),
    ]
