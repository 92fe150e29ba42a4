"""The registry's KPIs over HTTP: hand-computed numbers by region and segment, who may read the MRR
KPIs (and the alert rules on them), what a level cannot be grouped by, and money across currencies.
The numbers in general are checked against the definitions in test_customer_registry_kpis.py."""

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from ingestion.models import Customer
from metrics.alerting.services import alert_rule_create, alert_rules_evaluate
from tests.cskpi.test_access_api import assert_error_shape
from tests.factories import DepartmentFactory
from tests.metrics.alerting.conftest import SECRET
from tests.metrics.records import recompute_all

pytestmark = pytest.mark.django_db


def customer(external_id, started_at, ended_at=None, region=None, segment=None, mrr=None, department="cskh-hn"):
    item = {"external_id": external_id, "department": department, "started_at": started_at, "ended_at": ended_at,
            "region": region, "segment": segment, "mrr": mrr}
    return {k: v for k, v in item.items() if v is not None}


@pytest.fixture
def registry(staff_client, department):
    """Four customers of cskh-hn (Asia/Ho_Chi_Minh), queried over March 2026."""
    items = [
        customer("A", "2026-01-10T09:00:00+07:00", region="HN", segment="gold", mrr="100"),
        # ends exactly at local midnight of the 1st of March: still active at the end of February, churned in March
        customer("B", "2026-02-03T09:00:00+07:00", "2026-03-01T00:00:00+07:00", region="HN", mrr="50"),
        customer("C", "2026-03-05T09:00:00+07:00", "2026-03-20T18:00:00+07:00", region="HCM", segment="gold",
                 mrr="30"),
        # starts exactly at the range's end: not active at it
        customer("D", "2026-04-01T00:00:00+07:00", segment="basic", mrr="10"),
    ]
    response = staff_client.post("/api/v1/customers", items, format="json")
    assert response.status_code == 200, response.content
    recompute_all()


def metrics(client, **params):
    return client.get("/api/v1/metrics", {"start": "2026-03-01", "end": "2026-04-01", "granularity": "total",
                                          **params})


def values(response) -> dict:
    assert response.status_code == 200, response.content
    return {(r["kpi"], tuple(r["group"].values())): (r["value"], r["sample_size"]) for r in response.json()["results"]}


def test_registry_kpis_by_region_hand_computed(staff_client, registry):
    got = values(metrics(staff_client, kpi="customer_base,customers_started,customers_churned,retention_rate,"
                                            "churn_rate,mrr,revenue_churn_rate"))
    # at the start (March 1, 00:00): A and B (B ends exactly then: active just before it); at the end: A
    assert got[("customer_base", ())] == (1, 1)
    assert got[("customers_started", ())] == (1, 1)  # C (D starts at the end, outside)
    assert got[("customers_churned", ())] == (2, 2)  # B and C
    assert got[("retention_rate", ())] == (50.0, 2)  # A of A, B
    assert got[("churn_rate", ())] == (50.0, 2)  # B (C started in the range: not counted here)
    assert got[("mrr", ())] == (100.0, 1)
    assert got[("revenue_churn_rate", ())] == (pytest.approx(50 / 150 * 100), 2)
    by_region = values(metrics(staff_client, kpi="customer_base,customers_churned", group_by="customer_region"))
    assert by_region == {("customer_base", ("HCM",)): (0, 0), ("customer_base", ("HN",)): (1, 1),
                         ("customers_churned", ("HCM",)): (1, 1), ("customers_churned", ("HN",)): (1, 1)}
    by_segment = values(metrics(staff_client, kpi="customer_base", group_by="segment"))
    assert by_segment == {("customer_base", (None,)): (0, 0), ("customer_base", ("gold",)): (1, 1)}
    by_month = metrics(staff_client, kpi="customer_base", start="2026-02-01", end="2026-05-01", granularity="month")
    assert [p["value"] for p in by_month.json()["results"][0]["series"]] == [2, 1, 2]


def test_mrr_kpis_are_for_managers_and_staff(make_client, department, registry):
    viewer = make_client(grants=[(department.slug, "viewer")])
    agent = make_client(grants=[(department.slug, "agent")], agent="a-1")
    manager = make_client(grants=[(department.slug, "manager")])
    for client in (viewer, agent):
        assert metrics(client, kpi="customer_base").status_code == 200
        for kpi in ("mrr", "revenue_churn_rate", "customer_base,mrr"):
            response = metrics(client, kpi=kpi)
            assert response.status_code == 403, kpi
            assert_error_shape(response.json(), "not_permitted")
            assert response.json()["errors"][0]["field"] == "kpi"
    assert values(metrics(manager, kpi="mrr"))[("mrr", ())] == (100.0, 1)
    # an agent grant sees only its own agent's numbers: customers belong to none
    assert values(metrics(agent, kpi="customer_base"))[("customer_base", ())] == (0, 0)


def test_alert_rules_on_mrr_are_hidden_below_managers(make_client, department, registry, monkeypatch):
    monkeypatch.setattr("metrics.services.alert_evaluation_kick", lambda **kwargs: None)
    for kpi in ("mrr", "customer_base"):
        alert_rule_create(department=department, name=kpi, kpi=kpi, window_seconds=900, condition="below",
                          threshold=1e12, agent="", webhook_url="https://127.0.0.1/h", secret=SECRET)
    alert_rules_evaluate(now=timezone.now())
    viewer = make_client(grants=[(department.slug, "viewer")])
    manager = make_client(grants=[(department.slug, "manager")])
    assert sorted(r["name"] for r in viewer.get("/api/v1/alert-rules").json()) == ["customer_base"]
    assert sorted(r["name"] for r in manager.get("/api/v1/alert-rules").json()) == ["customer_base", "mrr"]
    assert {e["kpi"] for e in viewer.get("/api/v1/alert-events").json()["results"]} <= {"customer_base"}


def test_a_level_has_no_weekday_and_money_needs_one_currency(staff_client, department, registry):
    response = metrics(staff_client, kpi="customer_base", group_by="weekday")
    assert response.status_code == 400
    assert response.json()["errors"][0] == {"field": "group_by", "code": "invalid_choice",
                                            "message": "customer_base is a level over time; it cannot be grouped "
                                                       "by weekday."}
    DepartmentFactory(slug="us", currency="USD", timezone="Asia/Ho_Chi_Minh")
    mixed = metrics(staff_client, kpi="mrr", department="cskh-hn,us")
    assert mixed.status_code == 400 and mixed.json()["errors"][0]["code"] == "mixed_currencies"
    assert values(metrics(staff_client, kpi="customer_base", department="cskh-hn,us"))[("customer_base", ())] == (1, 1)


def test_customers_import_from_jsonl_through_the_same_rules(tmp_path, department):
    path = tmp_path / "customers.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in [
        customer("J1", "2026-01-10T09:00:00+07:00", mrr="5"),
        {**customer("J2", "2026-01-10T09:00:00+07:00"), "currency": "EUR"},
    ]))
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 invalid rows; 1 rows not written"):
        call_command("import_records", "customers", str(path), "--batch-size", "1", stdout=out, stderr=io.StringIO())
    assert "line 2" in out.getvalue() and "currency_mismatch" in out.getvalue()
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["J1"]
