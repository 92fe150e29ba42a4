"""The one read-scope policy (cskpi/access.py, docs/access.md): the same status and code for the
same situation on every endpoint, and department slugs not enumerable without a grant."""

import pytest

from tests.ingestion.factories import interaction_payload

pytestmark = pytest.mark.django_db

READS = [
    ("/api/v1/interactions", {}),
    ("/api/v1/surveys", {}),
    ("/api/v1/cashouts", {}),
    ("/api/v1/metrics", {"kpi": "interactions", "start": "2026-05-04", "end": "2026-05-06"}),
]


def _answer(response):
    body = response.json()
    return response.status_code, body["code"], [(e["field"], e["code"]) for e in body["errors"]]


def _without(text: str, *slugs: str) -> str:
    for slug in slugs:
        text = text.replace(slug, "<slug>")
    return text


@pytest.mark.parametrize(("path", "params"), READS)
def test_unknown_and_forbidden_departments_look_alike_without_a_grant(make_client, department, other_department,
                                                                      path, params):
    client = make_client(grants=[("cskh-hn", "manager")])
    forbidden = client.get(path, {**params, "department": "cskh-hcm"})
    unknown = client.get(path, {**params, "department": "cskh-xyz"})
    assert _answer(forbidden) == _answer(unknown) == (403, "permission_denied", [("department", "permission_denied")])
    assert _without(forbidden.content.decode(), "cskh-hcm") == _without(unknown.content.decode(), "cskh-xyz")


@pytest.mark.parametrize(("path", "params"), READS)
def test_staff_are_told_a_department_does_not_exist(staff_client, department, path, params):
    response = staff_client.get(path, {**params, "department": "cskh-xyz"})
    assert _answer(response) == (400, "invalid", [("department", "unknown_department")])


@pytest.mark.parametrize(("path", "params"), READS[:2] + READS[3:])
def test_a_viewer_asking_for_agent_detail_is_403_everywhere(make_client, department, path, params):
    viewer = make_client(grants=[("cskh-hn", "viewer")])
    assert _answer(viewer.get(path, {**params, "agent": "a-1"})) == (403, "not_permitted", [("agent", "not_permitted")])


@pytest.mark.parametrize(("path", "params"), READS[:2] + READS[3:])
def test_an_agent_asking_for_another_agent_is_403_everywhere(make_client, department, path, params):
    agent = make_client(grants=[("cskh-hn", "agent")], agent="a-1")
    assert _answer(agent.get(path, {**params, "agent": "a-2"})) == (403, "not_permitted", [("agent", "not_permitted")])
    assert agent.get(path, {**params, "agent": "a-1"}).status_code == 200


@pytest.mark.parametrize(("path", "params"), READS)
def test_a_caller_that_reads_no_department_is_403_everywhere(make_client, department, path, params):
    ingest_only = make_client(grants=[("cskh-hn", "ingest")])
    assert _answer(ingest_only.get(path, params)) == (403, "no_read_grant", [("department", "no_read_grant")])


def test_ingest_into_unknown_and_forbidden_departments_look_alike(make_client, department, other_department):
    client = make_client(grants=[("cskh-hn", "ingest")])
    forbidden = client.post("/api/v1/interactions", [interaction_payload(department="cskh-hcm")], format="json")
    unknown = client.post("/api/v1/interactions", [interaction_payload(department="cskh-xyz")], format="json")
    assert _answer(forbidden) == _answer(unknown) == (403, "permission_denied", [("department", "permission_denied")])
    assert _without(forbidden.content.decode(), "cskh-hcm") == _without(unknown.content.decode(), "cskh-xyz")


def test_staff_ingest_into_an_unknown_department_is_a_400(staff_client, department):
    response = staff_client.post("/api/v1/interactions", [interaction_payload(department="cskh-xyz")], format="json")
    assert _answer(response) == (400, "invalid", [("department", "unknown_department")])


def test_every_403_says_why(make_client, department):
    viewer = make_client(grants=[("cskh-hn", "viewer")])
    for response in (
        viewer.post("/api/v1/departments", {"slug": "x", "name": "X"}, format="json"),
        viewer.post("/api/v1/interactions", [interaction_payload()], format="json"),
        viewer.get("/api/v1/metrics", {"kpi": "interactions", "department": "nope"}),
    ):
        body = response.json()
        assert response.status_code == 403
        assert body["errors"] and all(e["message"] for e in body["errors"])
