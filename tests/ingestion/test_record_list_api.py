"""GET /api/v1/{interactions,surveys,cashouts} and their detail: scope, redaction, filters, cursors."""

import base64
import json

import pytest

from tests.ingestion.factories import cashout_payload, interaction_payload, survey_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def records(staff_client, department, other_department):
    items = [
        interaction_payload("cskh-hn", external_id="hn-1", agent="a1", channel="phone",
                            created_at="2026-03-02T08:00:00Z", first_response_at=None, resolved_at=None,
                            status="open"),
        interaction_payload("cskh-hn", external_id="hn-2", agent="a2", channel="chat",
                            created_at="2026-03-02T09:00:00Z", first_response_at=None,
                            resolved_at="2026-03-02T09:30:00Z"),
        interaction_payload("cskh-hn", external_id="hn-3", agent="a1", channel="chat",
                            created_at="2026-03-02T10:00:00Z", first_response_at=None,
                            resolved_at="2026-03-02T10:30:00Z"),
        interaction_payload("cskh-hcm", external_id="hcm-1", agent="a1", channel="phone",
                            created_at="2026-03-02T08:30:00Z", first_response_at=None,
                            resolved_at="2026-03-02T09:30:00Z"),
    ]
    assert staff_client.post("/api/v1/interactions", items, format="json").status_code == 200
    cashouts = [cashout_payload("cskh-hn", external_id="c-hn", amount="10.5"),
                cashout_payload("cskh-hcm", external_id="c-hcm")]
    assert staff_client.post("/api/v1/cashouts", cashouts, format="json").status_code == 200
    surveys = [survey_payload("cskh-hn", external_id="s-1", agent="a1"),
               survey_payload("cskh-hn", external_id="s-2", agent="a2", kind="nps", score=3)]
    assert staff_client.post("/api/v1/surveys", surveys, format="json").status_code == 200


def ids(response):
    assert response.status_code == 200, response.content
    return [r["external_id"] for r in response.json()["results"]]


def test_staff_sees_everything_ordered_by_anchor_time(staff_client, records):
    assert ids(staff_client.get("/api/v1/interactions")) == ["hn-1", "hcm-1", "hn-2", "hn-3"]


def test_manager_sees_own_departments_with_agents_and_amounts(make_client, records):
    client = make_client(grants=[("cskh-hn", "manager")])
    response = client.get("/api/v1/interactions")
    assert ids(response) == ["hn-1", "hn-2", "hn-3"]
    assert [r["agent"] for r in response.json()["results"]] == ["a1", "a2", "a1"]
    cashouts = client.get("/api/v1/cashouts").json()["results"]
    assert [(c["external_id"], c["amount"]) for c in cashouts] == [("c-hn", "10.500000")]


def test_viewer_sees_records_without_agent_or_amount(make_client, records):
    client = make_client(grants=[("cskh-hn", "viewer")])
    results = client.get("/api/v1/interactions").json()["results"]
    assert [(r["external_id"], r["agent"]) for r in results] == [("hn-1", None), ("hn-2", None), ("hn-3", None)]
    cashouts = client.get("/api/v1/cashouts").json()["results"]
    assert [c["external_id"] for c in cashouts] == ["c-hn"]
    assert "amount" not in cashouts[0]
    response = client.get("/api/v1/interactions", {"agent": "a1"})
    assert response.status_code == 403


def test_agent_sees_only_its_own_records_and_no_cashouts(make_client, records):
    client = make_client(grants=[("cskh-hn", "agent")], agent="a1")
    assert ids(client.get("/api/v1/interactions")) == ["hn-1", "hn-3"]
    # One read-scope policy (cskpi/access.py): another agent's records are refused as on /metrics.
    response = client.get("/api/v1/interactions", {"agent": "a2"})
    assert (response.status_code, response.json()["errors"][0]["code"]) == (403, "not_permitted")
    assert ids(client.get("/api/v1/interactions", {"agent": "a1"})) == ["hn-1", "hn-3"]
    assert ids(client.get("/api/v1/surveys")) == ["s-1"]
    assert ids(client.get("/api/v1/cashouts")) == []


def test_ingest_role_reads_nothing(make_client, records):
    client = make_client(grants=[("cskh-hn", "ingest")])
    # One read-scope policy: a caller that reads no department is told so, as on /metrics.
    response = client.get("/api/v1/interactions")
    assert (response.status_code, response.json()["errors"][0]["code"]) == (403, "no_read_grant")
    assert client.get("/api/v1/interactions", {"department": "cskh-hn"}).status_code == 403
    assert client.get("/api/v1/interactions/crm/hn-1").status_code == 404


def test_naming_a_department_the_caller_cannot_read_is_403(make_client, staff_client, records):
    client = make_client(grants=[("cskh-hn", "manager")])
    response = client.get("/api/v1/interactions", {"department": "cskh-hn,cskh-hcm"})
    assert response.status_code == 403
    assert "cskh-hcm" in response.json()["detail"]
    response = staff_client.get("/api/v1/interactions", {"department": "nowhere"})
    assert response.status_code == 400  # one read-scope policy: as on /metrics
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [("department", "unknown_department")]


def test_filters(staff_client, records):
    get = staff_client.get
    assert ids(get("/api/v1/interactions", {"department": "cskh-hcm"})) == ["hcm-1"]
    assert ids(get("/api/v1/interactions", {"channel": "chat"})) == ["hn-2", "hn-3"]
    assert ids(get("/api/v1/interactions", {"agent": "a1", "department": "cskh-hn"})) == ["hn-1", "hn-3"]
    assert ids(get("/api/v1/interactions", {"status": "open"})) == ["hn-1"]
    assert ids(get("/api/v1/interactions", {"start": "2026-03-02T15:30:00+07:00",
                                            "end": "2026-03-02T17:00:00+07:00"})) == ["hcm-1", "hn-2"]
    assert ids(get("/api/v1/surveys", {"kind": "nps"})) == ["s-2"]


@pytest.mark.parametrize(
    ("params", "field", "code"),
    [({"status": "closed"}, "status", "invalid_choice"),
     ({"start": "2026-03-02T08:00:00"}, "start", "naive_datetime"),
     ({"page_size": "0"}, "page_size", "min_value"),
     ({"page_size": "100000"}, "page_size", "max_value"),
     ({"kind": "csat"}, "kind", "unknown_parameter")],
)
def test_bad_parameters_are_400_naming_them(staff_client, records, params, field, code):
    response = staff_client.get("/api/v1/interactions", params)
    assert response.status_code == 400
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [(field, code)]


def test_a_cursor_that_names_no_page_is_404_like_drf(staff_client, records):
    response = staff_client.get("/api/v1/interactions", {"cursor": "garbage"})
    assert response.status_code == 404
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [("cursor", "invalid_cursor")]


def _cursor(anchor: str, pk: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([anchor, pk]).encode()).decode().rstrip("=")


def test_a_cursor_with_any_offset_is_read_in_utc(staff_client, records):
    # An offset PostgreSQL refuses (beyond ±15:59) names an instant all the same: 200 (it was a 503 there).
    assert staff_client.get("/api/v1/interactions", {"cursor": _cursor("2026-05-04T00:00:00+23:59", 1)}).status_code == 200
    # Before year 1 in UTC (SQLite stores UTC: it was a 500 there): no page.
    response = staff_client.get("/api/v1/interactions", {"cursor": _cursor("0001-01-01T00:00:00+14:00", 1)})
    assert response.status_code == 404
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [("cursor", "invalid_cursor")]


def test_cursor_pagination_walks_every_record_once(staff_client, records):
    seen, url, params = [], "/api/v1/interactions", {"page_size": 3}
    pages = 0
    while url:
        body = staff_client.get(url, params).json()
        seen += [r["external_id"] for r in body["results"]]
        url, params = body["next"], None
        pages += 1
    assert seen == ["hn-1", "hcm-1", "hn-2", "hn-3"]
    assert pages == 2


def test_detail_is_404_when_missing_or_not_readable(make_client, staff_client, records):
    body = staff_client.get("/api/v1/interactions/crm/hcm-1").json()
    assert (body["external_id"], body["department"], body["agent"]) == ("hcm-1", "cskh-hcm", "a1")
    client = make_client(grants=[("cskh-hn", "manager")])
    assert client.get("/api/v1/interactions/crm/hcm-1").status_code == 404
    assert client.get("/api/v1/interactions/crm/nope").status_code == 404
    assert client.get("/api/v1/cashouts/bank/c-hn").json()["amount"] == "10.500000"
    viewer = make_client(grants=[("cskh-hn", "viewer")])
    assert "amount" not in viewer.get("/api/v1/cashouts/bank/c-hn").json()


def test_new_agents_and_channels_need_no_registration(staff_client, department):
    item = interaction_payload(external_id="new", channel="tiktok-shop", agent="agent-never-seen")
    assert staff_client.post("/api/v1/interactions", item, format="json").json()["created"] == 1
    body = staff_client.get("/api/v1/interactions", {"channel": "tiktok-shop", "agent": "agent-never-seen"}).json()
    assert [(r["external_id"], r["channel"], r["agent"]) for r in body["results"]] == [
        ("new", "tiktok-shop", "agent-never-seen")]


def test_cashout_filters(staff_client, records):
    staff_client.post("/api/v1/cashouts", cashout_payload("cskh-hn", external_id="c-pending", status="pending",
                                                          completed_at=None, channel="web"), format="json")
    assert ids(staff_client.get("/api/v1/cashouts", {"status": "pending"})) == ["c-pending"]
    assert ids(staff_client.get("/api/v1/cashouts", {"channel": "web"})) == ["c-pending"]
    assert staff_client.get("/api/v1/cashouts", {"agent": "a1"}).status_code == 400
