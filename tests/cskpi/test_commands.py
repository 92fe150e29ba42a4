import io

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from cskpi.models import Department, Grant

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_create_department_is_idempotent_and_updates():
    run("create_department", "sales", "--name", "Sales", "--timezone", "Asia/Kolkata")
    run("create_department", "sales", "--name", "Sales")
    assert Department.objects.filter(slug="sales").count() == 1
    run("create_department", "sales", "--name", "Sales VN", "--timezone", "Asia/Ho_Chi_Minh")
    department = Department.objects.get(slug="sales")
    assert (department.name, department.timezone, department.currency) == ("Sales VN", "Asia/Ho_Chi_Minh", "VND")
    run("create_department", "sales", "--currency", "USD")
    assert Department.objects.get(slug="sales").currency == "USD"


def test_create_department_rejects_unknown_currency():
    with pytest.raises(CommandError, match="ISO 4217"):
        run("create_department", "x", "--currency", "VNX")


def test_create_department_rejects_unknown_zone():
    with pytest.raises(CommandError, match="IANA"):
        run("create_department", "x", "--timezone", "Nowhere/City")


def test_issue_token_prints_a_working_token_last():
    run("create_department", "cs")
    out = run("issue_token", "lan", "--grant", "cs:agent", "--grant", "cs:ingest", "--agent", "a-7")
    token = out.strip().splitlines()[-1]
    grants = sorted(Grant.objects.filter(user__username="lan").values_list("role", "agent"))
    assert grants == [("agent", "a-7"), ("ingest", "")]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert [d["slug"] for d in client.get("/api/v1/departments").json()] == ["cs"]


def test_issue_token_validates_grants():
    run("create_department", "cs")
    with pytest.raises(CommandError, match="role must be one of"):
        run("issue_token", "u", "--grant", "cs:boss")
    with pytest.raises(CommandError, match="no department"):
        run("issue_token", "u", "--grant", "nope:viewer")
    with pytest.raises(CommandError, match="--agent"):
        run("issue_token", "u", "--grant", "cs:agent")
