import pytest

pytestmark = pytest.mark.django_db


def test_metrics_endpoints_are_documented(anon_client):
    schema = anon_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    metrics = schema["paths"]["/api/v1/metrics"]["get"]
    names = {p["name"]: p for p in metrics["parameters"]}
    assert set(names) == {"kpi", "department", "start", "end", "granularity", "timezone", "group_by", "agent",
                          "channel", "topic", "compare"}
    assert names["kpi"]["required"] is True
    assert names["granularity"]["schema"]["enum"] == ["hour", "day", "week", "month", "total"]
    assert {"200", "400", "401", "403"} <= set(metrics["responses"])
    for path in ("/api/v1/kpis", "/api/v1/status"):
        assert {"200", "401"} <= set(schema["paths"][path]["get"]["responses"])
