"""The customer registry over HTTP: what it refuses (400 naming item and field, nothing written), who
sees `mrr`, and the endpoints derived from its declaration."""

from decimal import Decimal

import pytest

from ingestion.models import Customer, RecordChange
from tests.cskpi.test_access_api import assert_error_shape
from tests.factories import DepartmentFactory

pytestmark = pytest.mark.django_db


def customer(external_id="C-1", department="cskh-hn", **overrides) -> dict:
    item = {"external_id": external_id, "source": "crm", "department": department, "region": "Hà Nội",
            "segment": "gold", "started_at": "2026-01-15T10:00:00+07:00", "mrr": "250000.50"}
    item.update(overrides)
    return {k: v for k, v in item.items() if v is not ...}


def post(client, items):
    return client.post("/api/v1/customers", items, format="json")


@pytest.mark.parametrize(
    ("item", "field", "code"),
    [
        (customer(ended_at="2026-01-15T09:59:59+07:00"), "ended_at", "before_anchor"),
        (customer(mrr="-1"), "mrr", "invalid_amount"),
        (customer(mrr="12,5"), "mrr", "invalid_amount"),
        (customer(mrr="abc"), "mrr", "invalid_amount"),
        (customer(mrr=12.5), "mrr", "invalid_amount"),
        (customer(mrr="1.1234567"), "mrr", "invalid_amount"),
        (customer(currency="USD"), "currency", "currency_mismatch"),
        (customer(currency="DOLLAR"), "currency", "invalid_currency"),
        (customer(started_at=...), "started_at", "required"),
        (customer(started_at="2026-01-15T10:00:00"), "started_at", "naive_datetime"),
    ],
)
def test_a_bad_customer_is_a_400_naming_item_and_field_and_nothing_is_written(staff_client, department, item,
                                                                               field, code):
    good = customer("C-ok")
    response = post(staff_client, [good, item])
    assert response.status_code == 400, response.content
    body = response.json()
    assert_error_shape(body, "invalid")
    assert [(e["index"], e["field"], e["code"]) for e in body["errors"]] == [(1, field, code)]
    assert body["detail"] == "1 of 2 items are invalid; nothing was written."
    assert not Customer.objects.exists() and not RecordChange.objects.exists()


def test_mrr_may_be_zero_and_the_currency_is_the_departments(staff_client, department):
    usd = DepartmentFactory(slug="us", currency="USD")
    response = post(staff_client, [customer("C-1", mrr="0", currency="VND"),
                                   customer("C-2", department=usd.slug, mrr=7, currency="USD"),
                                   customer("C-3", mrr=..., ended_at="2026-01-15T10:00:00+07:00")])
    assert response.status_code == 200, response.content
    assert response.json()["created"] == 3
    assert Customer.objects.get(external_id="C-1").mrr == Decimal("0")
    assert Customer.objects.get(external_id="C-2").mrr == Decimal("7")
    # the same currency code is a mismatch in the other department
    refused = post(staff_client, [customer("C-4", currency="USD")])
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["message"] == "Department 'cskh-hn' reports in VND; got USD."


def test_mrr_is_shown_to_managers_and_staff_only(make_client, staff_client, department):
    assert post(staff_client, [customer("C-1")]).status_code == 200
    manager = make_client(grants=[(department.slug, "manager")])
    viewer = make_client(grants=[(department.slug, "viewer")])
    agent = make_client(grants=[(department.slug, "agent")], agent="a-1")
    # an agent grant reads its own records; a customer belongs to no agent (like a cashout)
    assert agent.get("/api/v1/customers").json()["results"] == []
    assert agent.get("/api/v1/customers/crm/C-1").status_code == 404
    for client, sees in ((staff_client, True), (manager, True), (viewer, False)):
        listed = client.get("/api/v1/customers").json()["results"]
        detail = client.get("/api/v1/customers/crm/C-1").json()
        assert [("mrr" in r) for r in listed] == [sees]
        assert ("mrr" in detail) == sees
        assert detail["region"] == "Hà Nội" and detail["segment"] == "gold"
        if sees:
            assert detail["mrr"] == "250000.500000"


def test_updates_follow_the_upsert_rules_and_mark_old_and_new_quarters(staff_client, department):
    first = customer("C-1", updated_at="2026-02-01T00:00:00Z", ended_at="2026-03-01T00:00:00+07:00")
    assert post(staff_client, [first]).json()["created"] == 1
    stale = customer("C-1", updated_at="2026-01-01T00:00:00Z", ended_at=...)
    assert post(staff_client, [stale]).json()["stale"] == 1
    assert Customer.objects.get().ended_at is not None
    RecordChange.objects.all().delete()
    moved = customer("C-1", updated_at="2026-03-01T00:00:00Z", ended_at="2026-04-10T12:07:00+07:00")
    assert post(staff_client, [moved]).json()["updated"] == 1
    # the start's quarter, the old end's and the new end's: not every quarter between them
    marked = sorted(q.isoformat() for q in RecordChange.objects.values_list("quarter_start", flat=True))
    assert marked == ["2026-01-15T03:00:00+00:00", "2026-02-28T17:00:00+00:00",
                      "2026-04-10T05:00:00+00:00"]
