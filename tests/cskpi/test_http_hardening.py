"""Finding 8 of the hardening issue and issue 13's protocol details: the wrong auth scheme named,
JSON for every unmatched URL (debug mode included), no caching of authenticated answers, the proxy
header trusted only when configured, Redoc without internet loads, keys with "/", finite JSON."""

import json
import os
import subprocess
import sys

import pytest
from django.test import override_settings
from django.urls import clear_url_caches

from cskpi.renderers import FiniteJSONRenderer
from tests.processes import ROOT

pytestmark = pytest.mark.django_db


def test_the_wrong_auth_scheme_is_named(make_client, department):
    client = make_client(grants=[(department.slug, "manager")])
    token = client._credentials["HTTP_AUTHORIZATION"].split()[1]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = client.get("/api/v1/departments")
    assert response.status_code == 401
    body = response.json()
    assert "Bearer" in body["detail"] and "'Token'" in body["detail"]
    assert body["errors"] and body["errors"][0]["message"] == body["detail"]


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("path", ["/api/v1/metrics/", "/api/v1/interactions/", "/api/v1/nope", "/nope/"])
def test_unmatched_urls_are_json_in_every_mode(staff_client, path, debug):
    with override_settings(DEBUG=debug):
        clear_url_caches()
        response = staff_client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == "not_found" and body["errors"] == []
    if path.startswith("/api/v1/") and path.endswith("/"):
        assert f"{path.rstrip('/')}." in body["detail"]  # says where the endpoint is


def test_authenticated_answers_are_not_stored_by_caches(staff_client, anon_client, department):
    for path in ("/api/v1/departments", "/api/v1/cashouts", "/api/v1/nope"):
        response = staff_client.get(path)
        assert "no-store" in response["Cache-Control"], path
        assert "Authorization" in response["Vary"]
    assert "no-store" not in anon_client.get("/api/v1/health").get("Cache-Control", "")


def test_x_forwarded_proto_is_ignored_without_a_trusted_proxy(staff_client, department):
    from tests.ingestion.factories import interaction_payload

    staff_client.post("/api/v1/interactions", [interaction_payload(), interaction_payload()], format="json")
    response = staff_client.get("/api/v1/interactions", {"page_size": 1}, HTTP_X_FORWARDED_PROTO="https")
    assert response.json()["next"].startswith("http://testserver/")


@pytest.mark.parametrize(("trusted", "expected"), [("", "None"), ("10.0.0.7", "('HTTP_X_FORWARDED_PROTO', 'https')")])
def test_the_proxy_header_is_trusted_only_when_configured(trusted, expected):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(CSKPI_TRUSTED_PROXY=trusted, DJANGO_SETTINGS_MODULE="cskpi.settings")
    code = ("import django; django.setup(); from django.conf import settings; "
            "import cskpi.gunicorn_conf as g; print(settings.SECURE_PROXY_SSL_HEADER, repr(g.forwarded_allow_ips))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"{expected} {trusted!r}"


def test_redoc_loads_nothing_from_the_internet(anon_client):
    page = anon_client.get("/api/redoc/").content.decode()
    assert "Redoc.init" in page or "<redoc" in page
    assert "googleapis" not in page and "gstatic" not in page
    assert "https://" not in page and "http://" not in page


def test_a_key_with_slashes_can_be_fetched(make_client, department):
    client = make_client(grants=[(department.slug, "manager"), (department.slug, "ingest")])
    from tests.ingestion.factories import interaction_payload

    item = interaction_payload(external_id="2026/05/ticket 7")
    assert client.post("/api/v1/interactions", item, format="json").status_code == 200
    for path in ("/api/v1/interactions/crm/2026/05/ticket%207", "/api/v1/interactions/crm/2026%2F05%2Fticket%207"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.content)
        assert response.json()["external_id"] == "2026/05/ticket 7"
    assert client.get("/api/v1/interactions/crm/2026/05").status_code == 404


def test_the_renderer_never_writes_a_non_finite_number():
    data = {"value": float("nan"), "series": [float("inf"), -float("inf"), 1.5], "n": 3}
    text = FiniteJSONRenderer().render(data)
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in the output")) == {
        "value": None, "series": [None, None, 1.5], "n": 3}


def test_the_renderer_writes_keys_that_are_not_strings_as_drf_does():
    data = {"counts": {1: "one", 2.5: None, None: 0}, "series": {"a": 1}}
    assert json.loads(FiniteJSONRenderer().render(data)) == {
        "counts": {"1": "one", "2.5": None, "null": 0}, "series": {"a": 1}}
    with pytest.raises(TypeError):
        FiniteJSONRenderer().render({"unwritable": object()})


def test_a_non_finite_kpi_value_is_answered_as_null(staff_client, department, monkeypatch):
    from metrics import apis

    real = apis.kpi_series_get

    def poisoned(*, query):
        answer = real(query=query)
        for result in answer["results"]:
            result["value"] = float("inf")
        return answer

    monkeypatch.setattr(apis, "kpi_series_get", poisoned)
    response = staff_client.get("/api/v1/metrics", {"kpi": "interactions", "start": "2026-05-04",
                                                     "end": "2026-05-06"})
    assert response.status_code == 200
    assert json.loads(response.content)["results"][0]["value"] is None


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_unsafe_methods_on_unmatched_urls_are_a_json_404_not_a_csrf_page(method):
    # Found by the contract fuzzer: PATCH /api/v1/alert-rules/%3B%20 reached the catch-all route,
    # whose CSRF check answered Django's HTML 403.
    from django.test import Client

    response = getattr(Client(enforce_csrf_checks=True), method)("/api/v1/alert-rules/%3B%20", data={},
                                                                 content_type="application/json")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"
