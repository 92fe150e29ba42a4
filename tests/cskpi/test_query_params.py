"""Repeated query parameters: a list parameter given repeated means what its comma form means, on
/metrics and on the record lists; any other parameter given twice is a 400, never reduced to one."""

from datetime import datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest

from tests.ingestion.factories import interaction_payload, survey_payload
from tests.metrics.records import interaction_build, records_store

pytestmark = pytest.mark.django_db

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DAY = datetime(2026, 5, 4, tzinfo=TZ)


def _get(client, path, pairs):
    return client.get(f"{path}?{urlencode(pairs)}")


@pytest.fixture
def traffic(department, other_department):
    records_store([
        interaction_build(department=department, created_at=DAY + timedelta(hours=9), agent="a-1"),
        interaction_build(department=department, created_at=DAY + timedelta(hours=10), agent="a-2", channel="chat"),
        interaction_build(department=department, created_at=DAY + timedelta(hours=11), agent="a-3", channel="zalo"),
        interaction_build(department=other_department, created_at=DAY + timedelta(hours=9), agent="a-9"),
    ])


_RANGE = [("start", "2026-05-04"), ("end", "2026-05-05"), ("granularity", "total")]


def _values(response):
    assert response.status_code == 200, response.json()
    return sorted((r["kpi"], tuple(sorted(r["group"].items())), r["value"]) for r in response.json()["results"])


@pytest.mark.parametrize(("repeated", "comma"), [
    ([("kpi", "interactions"), ("kpi", "fcr_rate")], [("kpi", "interactions,fcr_rate")]),
    ([("kpi", "interactions"), ("department", "cskh-hn"), ("department", "cskh-hcm"), ("group_by", "department")],
     [("kpi", "interactions"), ("department", "cskh-hn,cskh-hcm"), ("group_by", "department")]),
    ([("kpi", "interactions"), ("group_by", "agent"), ("group_by", "channel")],
     [("kpi", "interactions"), ("group_by", "agent,channel")]),
    ([("kpi", "interactions"), ("agent", "a-1"), ("agent", "a-2")], [("kpi", "interactions"), ("agent", "a-1,a-2")]),
    ([("kpi", "interactions"), ("channel", "chat"), ("channel", "zalo")],
     [("kpi", "interactions"), ("channel", "chat,zalo")]),
])
def test_metrics_repeated_equals_comma_list(traffic, staff_client, repeated, comma):
    by_repeat = _values(_get(staff_client, "/api/v1/metrics", repeated + _RANGE))
    assert by_repeat == _values(_get(staff_client, "/api/v1/metrics", comma + _RANGE))
    assert len({kpi for kpi, _, _ in by_repeat}) == len({v for k, v in repeated if k == "kpi"})


def test_metrics_repeated_filter_counts_every_value(traffic, staff_client):
    """Reference: interactions of agents a-1 and a-2 in cskh-hn on that day = 2 (not 1: none dropped)."""
    body = _get(staff_client, "/api/v1/metrics", [("kpi", "interactions"), ("department", "cskh-hn"),
                                                  ("agent", "a-1"), ("agent", "a-2")] + _RANGE).json()
    assert [r["value"] for r in body["results"]] == [2]


@pytest.mark.parametrize("name", ["start", "timezone", "granularity"])
def test_metrics_single_parameter_twice_is_refused(traffic, staff_client, name):
    values = {"start": ("2026-05-04", "2026-05-03"), "timezone": ("UTC", "Asia/Ho_Chi_Minh"),
              "granularity": ("day", "total")}[name]
    pairs = [("kpi", "interactions"), (name, values[0]), (name, values[1])]
    response = _get(staff_client, "/api/v1/metrics", pairs)
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": name, "code": "repeated_parameter",
                                          "message": "This parameter takes one value; give it once."}]


@pytest.mark.parametrize("zone", ["localtime", "Factory", "posixrules", "posix/UTC", "Mars/Olympus"])
def test_metrics_refuses_host_dependent_zones(traffic, staff_client, zone):
    response = _get(staff_client, "/api/v1/metrics", [("kpi", "interactions"), ("timezone", zone)])
    assert response.status_code == 400
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [("timezone", "invalid_timezone")]


@pytest.fixture
def stored(staff_client, department):
    items = [interaction_payload("cskh-hn", external_id=f"i-{n}", channel=channel, agent=agent,
                                 created_at=f"2026-03-02T0{n}:00:00Z", first_response_at=None,
                                 resolved_at=None, status=status)
             for n, (channel, agent, status) in enumerate([("phone", "a1", "open"), ("chat", "a2", "pending"),
                                                           ("zalo", "a3", "open"), ("chat", "a1", "missed")])]
    assert staff_client.post("/api/v1/interactions", items, format="json").status_code == 200
    surveys = [survey_payload("cskh-hn", external_id=f"s-{kind}", kind=kind, score=5) for kind in ("csat", "nps", "ces")]
    assert staff_client.post("/api/v1/surveys", surveys, format="json").status_code == 200


def _ids(response):
    assert response.status_code == 200, response.json()
    return [r["external_id"] for r in response.json()["results"]]


@pytest.mark.parametrize(("path", "name", "values", "expected"), [
    ("/api/v1/interactions", "channel", ("chat", "zalo"), ["i-1", "i-2", "i-3"]),
    ("/api/v1/interactions", "status", ("open", "missed"), ["i-0", "i-2", "i-3"]),
    ("/api/v1/interactions", "agent", ("a1", "a3"), ["i-0", "i-2", "i-3"]),
    ("/api/v1/surveys", "kind", ("csat", "ces"), ["s-csat", "s-ces"]),
])
def test_record_list_repeated_equals_comma_list(stored, staff_client, path, name, values, expected):
    repeated = _ids(_get(staff_client, path, [(name, value) for value in values]))
    assert repeated == _ids(_get(staff_client, path, [(name, ",".join(values))]))
    assert sorted(repeated) == sorted(expected)


def test_record_list_bad_value_in_list_names_the_parameter(stored, staff_client):
    response = _get(staff_client, "/api/v1/interactions", [("status", "open"), ("status", "closed")])
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["status"]


def test_record_list_single_parameter_twice_is_refused(stored, staff_client):
    response = _get(staff_client, "/api/v1/interactions", [("page_size", "1"), ("page_size", "2")])
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "repeated_parameter"


@pytest.mark.parametrize("path", ["/api/v1/metrics", "/api/v1/interactions"])
def test_an_empty_repeated_value_is_refused(traffic, staff_client, path):
    response = _get(staff_client, path, [("kpi", "interactions"), ("channel", "chat"), ("channel", "")]
                    if path.endswith("metrics") else [("channel", "chat"), ("channel", "")])
    assert response.status_code == 400
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [("channel", "blank")]


@pytest.mark.parametrize(("path", "value"), [
    ("/api/v1/agents/now", "false"),  # JSON only: found by the contract fuzzer, a 404 before
    ("/api/v1/agents/now", "csv"),
    ("/api/v1/departments", "xml"),
    ("/api/v1/kpis", "yaml"),
    ("/api/v1/alert-rules", "csv"),
    ("/api/v1/interactions", "xml"),  # a CSV list
])
def test_a_format_the_endpoint_has_no_renderer_for_is_400_naming_it(staff_client, department, path, value):
    response = _get(staff_client, path, [("format", value)])
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [("format", "invalid_choice")]


def test_a_format_the_endpoint_renders_is_read_and_given_twice_is_400(staff_client, department):
    assert _get(staff_client, "/api/v1/agents/now", [("format", "json")]).status_code == 200
    assert _get(staff_client, "/api/schema/", [("format", "json")]).json()["openapi"].startswith("3.")
    twice = _get(staff_client, "/api/v1/departments", [("format", "json"), ("format", "json")])
    assert twice.status_code == 400 and twice.json()["errors"][0]["field"] == "format"
