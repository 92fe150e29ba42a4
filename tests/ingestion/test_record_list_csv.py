"""Record lists as CSV: streamed across every page, within the caller's scope, amounts for managers only."""

import csv
import io

import pytest

from tests.ingestion.factories import cashout_payload, interaction_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored(staff_client, department, other_department, settings):
    settings.CSKPI_MAX_PAGE_SIZE = 2  # the CSV stream walks several keyset pages
    interactions = [interaction_payload(slug, external_id=f"{slug}-{n}", agent=f"a{n % 2}",
                                        created_at=f"2026-03-02T0{n}:00:00Z", first_response_at=None,
                                        resolved_at=None, status="open")
                    for slug in ("cskh-hn", "cskh-hcm") for n in range(5)]
    assert staff_client.post("/api/v1/interactions", interactions, format="json").status_code == 200
    cashouts = [cashout_payload("cskh-hn", external_id=f"c-{n}", amount=f"{n + 1}00.25",
                                requested_at=f"2026-03-02T0{n}:00:00+07:00", first_response_at=None,
                                completed_at=None, status="pending") for n in range(5)]
    assert staff_client.post("/api/v1/cashouts", cashouts, format="json").status_code == 200
    return {"interactions": interactions, "cashouts": cashouts}


def _csv(client, path, **params):
    response = client.get(path, {**params, "format": "csv"})
    assert response.status_code == 200, response
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def _json_all(client, path, **params):
    """Every page of the JSON list, following `next`."""
    results, url, query = [], path, {**params, "page_size": 2}
    while url:
        body = client.get(url, query).json()
        assert "results" in body, body
        results += body["results"]
        url, query = body["next"], None
    return results


def _as_text(value):
    return "" if value is None else "True" if value is True else "False" if value is False else str(value)


def test_staff_csv_holds_every_page_with_the_json_values(stored, staff_client):
    rows = _csv(staff_client, "/api/v1/interactions")
    records = _json_all(staff_client, "/api/v1/interactions")
    assert len(rows) == 10 == len(records)
    assert rows == [{name: _as_text(value) for name, value in record.items()} for record in records]


def test_csv_keeps_filters(stored, staff_client):
    rows = _csv(staff_client, "/api/v1/interactions", department="cskh-hn", agent="a1")
    assert [r["external_id"] for r in rows] == ["cskh-hn-1", "cskh-hn-3"]


def test_manager_sees_amounts_viewer_does_not(stored, make_client):
    manager = make_client(grants=[("cskh-hn", "manager")])
    viewer = make_client(grants=[("cskh-hn", "viewer")])
    managed = _csv(manager, "/api/v1/cashouts")
    assert [r["amount"] for r in managed] == [f"{n + 1}00.250000" for n in range(5)]
    viewed = _csv(viewer, "/api/v1/cashouts")
    assert len(viewed) == 5 and "amount" not in viewed[0]
    viewed_interactions = _csv(viewer, "/api/v1/interactions")
    assert len(viewed_interactions) == 5 and {r["agent"] for r in viewed_interactions} == {""}
    assert {r["department"] for r in viewed_interactions} == {"cskh-hn"}


def test_agent_sees_only_own_records(stored, make_client):
    agent = make_client(grants=[("cskh-hn", "agent")], agent="a0")
    assert [r["external_id"] for r in _csv(agent, "/api/v1/interactions")] == ["cskh-hn-0", "cskh-hn-2", "cskh-hn-4"]


def test_csv_refusal_is_json(stored, make_client):
    viewer = make_client(grants=[("cskh-hn", "viewer")])
    response = viewer.get("/api/v1/interactions", {"department": "cskh-hcm", "format": "csv"})
    assert response.status_code == 403 and response["Content-Type"].startswith("application/json")
    response = viewer.get("/api/v1/interactions", {"agent": "a1"}, HTTP_ACCEPT="text/csv")
    assert response.status_code == 403 and response.json()["errors"][0]["field"] == "agent"
