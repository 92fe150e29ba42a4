"""Authentication, department scoping and the error shape."""

from contextlib import contextmanager

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cskpi.models import ApiToken

pytestmark = pytest.mark.django_db


def assert_error_shape(body: dict, code: str) -> None:
    assert set(body) == {"code", "detail", "errors"}
    assert body["code"] == code
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["errors"], list)


def test_unauthenticated_is_401_with_bearer_challenge(anon_client, department):
    response = anon_client.get("/api/v1/departments")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert_error_shape(response.json(), "not_authenticated")


def test_unknown_token_is_401(anon_client, department):
    anon_client.credentials(HTTP_AUTHORIZATION="Bearer csk_not-a-real-token")
    response = anon_client.get("/api/v1/departments")
    assert response.status_code == 401
    assert_error_shape(response.json(), "authentication_failed")


def test_token_scheme_other_than_bearer_is_not_accepted(make_client, department):
    client = make_client(grants=[(department.slug, "manager")])
    token = client._credentials["HTTP_AUTHORIZATION"].split()[1]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/departments").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"bearer {token}")
    assert client.get("/api/v1/departments").status_code == 200


def test_revoked_token_is_401(make_client, department):
    client = make_client(grants=[(department.slug, "manager")])
    assert client.get("/api/v1/departments").status_code == 200
    ApiToken.objects.filter(user=client.user).update(revoked_at="2026-01-01T00:00:00Z")
    assert client.get("/api/v1/departments").status_code == 401


def test_only_the_digest_of_a_token_is_stored(make_client, department):
    client = make_client(grants=[(department.slug, "viewer")])
    token = client._credentials["HTTP_AUTHORIZATION"].split()[1]
    row = ApiToken.objects.get(user=client.user)
    assert token not in (row.digest, row.prefix) and len(row.digest) == 64


def test_department_list_is_scoped_to_grants(make_client, department, other_department):
    client = make_client(grants=[(department.slug, "viewer")])
    body = client.get("/api/v1/departments").json()
    assert [d["slug"] for d in body] == [department.slug]
    assert body[0]["roles"] == ["viewer"]
    assert body[0]["timezone"] == "Asia/Ho_Chi_Minh"


def test_department_list_for_staff_is_everything(staff_client, department, other_department):
    body = staff_client.get("/api/v1/departments").json()
    assert sorted(d["slug"] for d in body) == sorted([department.slug, other_department.slug])


def test_staff_holding_a_grant_still_reads_every_department(make_client, department, other_department):
    client = make_client(staff=True, grants=[(department.slug, "viewer")])
    body = client.get("/api/v1/departments").json()
    assert [d["slug"] for d in body] == sorted([department.slug, other_department.slug])
    assert all(d["roles"] == ["staff"] for d in body)


@pytest.mark.parametrize("staff", [True, False])
def test_the_caller_and_its_access_are_read_in_one_query(make_client, department, other_department, staff):
    client = make_client(staff=staff, grants=[] if staff else [(department.slug, "manager")])
    client.get("/api/v1/departments")  # the token's last use is written on the first request only
    with _statements_counted() as statements:
        body = client.get("/api/v1/departments").json()
    assert len(statements) == 1, [str(q)[:120] for q in statements]
    assert [d["slug"] for d in body] == (sorted([department.slug, other_department.slug]) if staff else [department.slug])


@contextmanager
def _statements_counted():
    """The statements sent, Django's cursors and raw psycopg ones (`cskpi.db.pg_cursor`) alike."""
    if connection.vendor != "postgresql":
        with CaptureQueriesContext(connection) as queries:
            yield queries
        return
    import psycopg

    sent = []
    original = psycopg.Cursor.execute

    def execute(self, query, params=None, **kwargs):
        sent.append(query)
        return original(self, query, params, **kwargs)

    psycopg.Cursor.execute = execute
    try:
        yield sent
    finally:
        psycopg.Cursor.execute = original


def test_roles_of_one_department_combine(make_client, department):
    client = make_client(grants=[(department.slug, "ingest"), (department.slug, "agent")], agent="a-1")
    assert client.get("/api/v1/departments").json()[0]["roles"] == ["ingest", "agent"]


def test_create_department_is_staff_only(make_client, staff_client, department):
    manager = make_client(grants=[(department.slug, "manager")])
    response = manager.post("/api/v1/departments", {"slug": "new", "name": "New"}, format="json")
    assert response.status_code == 403
    assert_error_shape(response.json(), "permission_denied")

    response = staff_client.post(
        "/api/v1/departments", {"slug": "new", "name": "New", "timezone": "Asia/Kolkata"}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json() == {"slug": "new", "name": "New", "timezone": "Asia/Kolkata", "currency": "VND",
                               "roles": ["staff"]}
    response = staff_client.post("/api/v1/departments", {"slug": "usd", "name": "USD", "currency": "USD"},
                                 format="json")
    assert response.status_code == 201 and response.json()["currency"] == "USD"


def test_create_department_errors_name_the_field(staff_client, department):
    response = staff_client.post(
        "/api/v1/departments", {"slug": "bad slug", "name": "x", "timezone": "Mars/Olympus", "currency": "VNX"},
        format="json",
    )
    assert response.status_code == 400
    body = response.json()
    assert_error_shape(body, "invalid")
    by_field = {e["field"]: e["code"] for e in body["errors"]}
    assert by_field == {"slug": "invalid", "timezone": "invalid_timezone", "currency": "invalid_choice"}


@pytest.mark.parametrize("zone", ["localtime", "Factory", "posixrules", "posix/Asia/Ho_Chi_Minh", "Mars/Olympus", ""])
def test_create_department_refuses_host_dependent_and_unknown_zones(staff_client, zone):
    response = staff_client.post("/api/v1/departments", {"slug": "x", "name": "x", "timezone": zone}, format="json")
    assert response.status_code == 400, response.json()
    assert [e["field"] for e in response.json()["errors"]] == ["timezone"]


def test_create_department_takes_an_iana_alias(staff_client):
    response = staff_client.post("/api/v1/departments", {"slug": "x", "name": "x", "timezone": "Asia/Saigon"},
                                 format="json")
    assert response.status_code == 201 and response.json()["timezone"] == "Asia/Saigon"


def test_create_existing_department_is_409_naming_slug(staff_client, department):
    response = staff_client.post("/api/v1/departments", {"slug": department.slug, "name": "x"}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert_error_shape(body, "conflict")
    assert body["errors"] == [{"field": "slug", "code": "unique", "message": "A department with this slug exists."}]


def test_malformed_json_is_400_parse_error(staff_client):
    response = staff_client.generic("POST", "/api/v1/departments", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert_error_shape(response.json(), "parse_error")


def test_unknown_url_is_json_404(staff_client):
    response = staff_client.get("/api/v1/nope")
    assert response.status_code == 404
    assert_error_shape(response.json(), "not_found")


def test_wrong_method_is_405_in_the_error_shape(staff_client):
    response = staff_client.delete("/api/v1/departments")
    assert response.status_code == 405
    assert_error_shape(response.json(), "method_not_allowed")
