"""Finding 6 and 7 of the hardening issue: error answers are bounded, permission comes before the
body is validated, and no body nests deep enough to crash the parser."""

import json
import time

import pytest

from tests.ingestion.factories import interaction_payload

pytestmark = pytest.mark.django_db


def _post(client, path, raw: bytes):
    return client.generic("POST", path, raw, content_type="application/json")


def test_a_huge_bad_item_gets_a_bounded_answer(make_client, department, settings):
    settings.CSKPI_MAX_ERRORS = 100
    client = make_client(grants=[("cskh-hn", "ingest")])
    long_name = "n" * 1_000_000
    item = {**interaction_payload(), **{f"f{i:06}": 1 for i in range(100_000)}, long_name: 1}
    response = _post(client, "/api/v1/interactions", json.dumps(item).encode())
    assert response.status_code == 400
    body = response.json()
    assert len(body["errors"]) == 100
    assert body["errors_not_listed"] == 100_001 - 100
    assert len(response.content) < 50_000  # was 53.8 MB for 600,000 fields
    assert long_name not in response.content.decode()


def test_a_long_name_is_echoed_clipped(make_client, department):
    client = make_client(grants=[("cskh-hn", "ingest")])
    item = {**interaction_payload(), "z" * 7_000_000: 1}
    response = _post(client, "/api/v1/interactions", json.dumps(item).encode())
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["code"] == "unknown_field" and error["field"].startswith("z" * 100)
    assert "(7000000 characters)" in error["field"] and len(response.content) < 2_000


def test_a_token_without_ingest_grant_is_refused_before_the_body_is_validated(make_client, department):
    client = make_client(grants=[("cskh-hn", "viewer")])
    item = {**interaction_payload(), **{f"f{i:06}": 1 for i in range(600_000)}}
    raw = json.dumps(item).encode()
    started = time.monotonic()
    response = _post(client, "/api/v1/interactions", raw)
    elapsed = time.monotonic() - started
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "permission_denied" and body["errors"][0]["code"] == "permission_denied"
    assert len(response.content) < 1_000 and elapsed < 1.0  # nothing parsed, nothing validated


@pytest.mark.parametrize("path", ["/api/v1/departments", "/api/v1/interactions"])
def test_deeply_nested_json_is_a_400_not_a_500(staff_client, department, path):
    raw = b"[" * 100_000 + b"]" * 100_000
    response = _post(staff_client, path, raw)
    assert response.status_code == 400, response.content[:300]
    assert response.json()["code"] == "parse_error"
