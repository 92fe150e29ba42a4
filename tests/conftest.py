import os

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from cskpi.services import token_issue, user_grants_upsert
from tests.factories import DepartmentFactory

REQUIRE_SERVICES = os.environ.get("CSKPI_REQUIRE_SERVICES") == "1"


def _missing_services(item) -> str | None:
    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    missing = []
    if ("postgres" in item.keywords or "worker" in item.keywords) and not on_postgres:
        missing.append("DATABASE_URL=postgres://...")
    if "worker" in item.keywords and not settings.REDIS_URL:
        missing.append("REDIS_URL")
    return f"needs {' and '.join(missing)}" if missing else None


def pytest_collection_modifyitems(config, items):
    """Tests that need PostgreSQL or Redis skip on the embedded default; under CI they fail instead."""
    if REQUIRE_SERVICES:
        return
    for item in items:
        reason = _missing_services(item)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_runtest_setup(item):
    reason = _missing_services(item) if REQUIRE_SERVICES else None
    if reason:
        pytest.fail(f"CI requires the real service: {reason}", pytrace=False)


@pytest.fixture
def department(db):
    return DepartmentFactory(slug="cskh-hn", name="CSKH Hà Nội", timezone="Asia/Ho_Chi_Minh")


@pytest.fixture
def other_department(db):
    return DepartmentFactory(slug="cskh-hcm", name="CSKH Hồ Chí Minh", timezone="Asia/Ho_Chi_Minh")


@pytest.fixture
def make_client(db):
    """make_client(staff=False, grants=[(dept_slug, role)], agent="") -> an APIClient with a Bearer token."""
    counter = {"n": 0}

    def make(*, staff: bool = False, grants=(), agent: str = "", username: str | None = None) -> APIClient:
        counter["n"] += 1
        user = user_grants_upsert(
            username=username or f"user{counter['n']}", staff=staff, grants=list(grants), agent=agent
        )
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_issue(user=user)}")
        client.user = user
        return client

    return make


@pytest.fixture
def staff_client(make_client):
    return make_client(staff=True, username="staff")


@pytest.fixture
def anon_client():
    return APIClient()


@pytest.fixture
def on_postgres():
    return connection.vendor == "postgresql"
