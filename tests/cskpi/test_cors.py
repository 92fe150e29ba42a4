"""CORS: origins from CSKPI_CORS_ALLOWED_ORIGINS (none by default), preflight answered without a token,
Authorization allowed. (tests/contract/test_browser_dashboard.py checks a real browser agrees.)"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db

ORIGIN = "http://127.0.0.1:5173"


def _preflight(client, path="/api/v1/metrics", origin=ORIGIN):
    return client.options(path, HTTP_ORIGIN=origin, HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
                          HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization")


def test_no_origin_is_allowed_by_default():
    from django.conf import settings

    assert settings.CORS_ALLOWED_ORIGINS == []
    response = _preflight(Client())
    assert "access-control-allow-origin" not in response.headers


def test_preflight_needs_no_token_and_allows_authorization(settings):
    settings.CORS_ALLOWED_ORIGINS = [ORIGIN]
    response = _preflight(Client())
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in response.headers["access-control-allow-headers"].lower()
    assert "GET" in response.headers["access-control-allow-methods"]


def test_other_origins_get_no_grant(settings):
    settings.CORS_ALLOWED_ORIGINS = [ORIGIN]
    response = _preflight(Client(), origin="http://127.0.0.1:6666")
    assert "access-control-allow-origin" not in response.headers


def test_actual_request_carries_the_grant_and_still_needs_a_token(settings, staff_client, department):
    settings.CORS_ALLOWED_ORIGINS = [ORIGIN]
    response = staff_client.get("/api/v1/departments", HTTP_ORIGIN=ORIGIN)
    assert response.status_code == 200 and response.headers["access-control-allow-origin"] == ORIGIN
    anonymous = Client().get("/api/v1/departments", HTTP_ORIGIN=ORIGIN)
    assert anonymous.status_code == 401 and anonymous.headers["access-control-allow-origin"] == ORIGIN


def test_origins_come_from_the_environment():
    probe = "from django.conf import settings; print(settings.CORS_ALLOWED_ORIGINS)"
    env = {**os.environ, "CSKPI_CORS_ALLOWED_ORIGINS": "https://dash.example.vn,http://127.0.0.1:5173"}
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", probe], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.stdout.strip().splitlines()[-1] == "['https://dash.example.vn', 'http://127.0.0.1:5173']", result.stderr
