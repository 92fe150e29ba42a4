import re

import pytest

pytestmark = pytest.mark.django_db


def test_metrics_endpoints_are_documented(anon_client):
    schema = anon_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    metrics = schema["paths"]["/api/v1/metrics"]["get"]
    names = {p["name"]: p for p in metrics["parameters"]}
    assert set(names) == {"kpi", "department", "start", "end", "granularity", "timezone", "group_by", "agent",
                          "channel", "topic", "check", "customer_region", "compare", "format"}
    assert names["kpi"]["required"] is True
    assert names["granularity"]["schema"]["allOf"] == [{"$ref": "#/components/schemas/GranularityEnum"}]
    assert schema["components"]["schemas"]["GranularityEnum"]["enum"] == ["hour", "day", "week", "month", "total"]
    assert {"200", "400", "401", "403"} <= set(metrics["responses"])
    for path in ("/api/v1/kpis", "/api/v1/status"):
        assert {"200", "401"} <= set(schema["paths"][path]["get"]["responses"])


def test_metrics_parameters_generate_typed_clients(anon_client):
    """KPI keys and group dimensions are enums read from the catalog; list parameters are exploded
    arrays; the time zone is a plain string (an enum of every IANA name breaks client generators)."""
    from metrics.catalog import KPIS
    from metrics.planner import GROUP_DIMENSIONS

    schema = anon_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    names = {p["name"]: p for p in schema["paths"]["/api/v1/metrics"]["get"]["parameters"]}
    components = schema["components"]["schemas"]
    assert components["KpiKeyEnum"]["enum"] == list(KPIS)
    assert components["GroupDimensionEnum"]["enum"] == list(GROUP_DIMENSIONS)
    assert names["kpi"]["schema"] == {"type": "array", "items": {"$ref": "#/components/schemas/KpiKeyEnum"}}
    for name in ("kpi", "department", "group_by", "agent", "channel", "topic", "check", "customer_region"):
        assert (names[name]["schema"]["type"], names[name]["style"], names[name]["explode"]) == ("array", "form", True)
    assert names["timezone"]["schema"] == {"type": "string", "minLength": 1, "maxLength": 64}
    assert components["KpiResult"]["properties"]["kpi"] == {"$ref": "#/components/schemas/KpiKeyEnum"}
    assert set(schema["paths"]["/api/v1/metrics"]["get"]["responses"]["200"]["content"]) == {
        "application/json", "text/csv"}


@pytest.mark.parametrize("value", ["chat", " chat", "chat ,zalo", "Nguyễn Văn A", "\x0c", " ", "chat, ,zalo", "chat,",
                                   ",chat", "chat,\x1c", "\x85", "\t\x85 ", "a\x00b"])
def test_a_filter_value_is_read_exactly_when_its_documented_pattern_allows_it(department, staff_client, value):
    """The pattern of a filter parameter (agent, channel, topic, check, customer region) states what the
    parser reads: values stripped of surrounding ASCII spaces, none empty; a value of only spaces (a form
    feed from the contract fuzzer) is a 400 naming the parameter, not a schema-valid request refused, and
    one that another regex flavour's `\\s` or `str.strip()` counts as space (U+0085, U+001C) is a value."""
    from metrics.schema import PARAMETER_PATTERNS

    allowed = re.match(PARAMETER_PATTERNS["channel"], value) is not None
    response = staff_client.get("/api/v1/metrics", {"kpi": "interactions", "channel": value})
    assert response.status_code == (200 if allowed else 400), (value, response.json())
    if not allowed:
        assert [e["field"] for e in response.json()["errors"]] == ["channel"]
