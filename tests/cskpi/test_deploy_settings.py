"""Production differs from development only by environment variables; `check --deploy` proves it."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_SECURE_HSTS_SECONDS": "31536000",
    "DJANGO_SECURE_SSL_REDIRECT": "true",
    "DJANGO_ALLOWED_HOSTS": "kpi.example.com",
}
DEV_ONLY = ("DJANGO_DEBUG", "DJANGO_SECRET_KEY", "DJANGO_SECURE_HSTS_SECONDS", "DJANGO_SECURE_SSL_REDIRECT")


def manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in DEV_ONLY}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env},
        capture_output=True, text=True, timeout=120,
    )


def test_check_deploy_is_clean_with_production_env():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr + result.stdout


def test_check_deploy_fails_without_a_secret_key_from_the_environment():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "DJANGO_SECRET_KEY"}
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode != 0
    assert "security.W009" in result.stderr + result.stdout


def test_debug_is_off_unless_asked_for():
    probe = "from django.conf import settings; print(settings.DEBUG)"
    assert manage("shell", "-c", probe, env={}).stdout.split()[-1] == "False"
    assert manage("shell", "-c", probe, env={"DJANGO_DEBUG": "true"}).stdout.split()[-1] == "True"
