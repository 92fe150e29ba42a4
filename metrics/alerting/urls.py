from django.urls import path

from metrics.alerting.apis import (
    AlertEventCollectionApi,
    AlertEventDeliveriesApi,
    AlertEventDetailApi,
    AlertRuleCollectionApi,
    AlertRuleDetailApi,
)

urlpatterns = [
    path("alert-rules", AlertRuleCollectionApi.as_view(), name="alert-rules"),
    path("alert-rules/<uuid:rule_id>", AlertRuleDetailApi.as_view(), name="alert-rule"),
    path("alert-events", AlertEventCollectionApi.as_view(), name="alert-events"),
    path("alert-events/<uuid:event_id>", AlertEventDetailApi.as_view(), name="alert-event"),
    path("alert-events/<uuid:event_id>/deliveries", AlertEventDeliveriesApi.as_view(), name="alert-event-deliveries"),
]
