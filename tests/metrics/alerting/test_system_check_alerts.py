"""Alert rules on system checks: the `check` filter (validated, stored, returned, used), and the absence
rule "no system check in the last 15 minutes" firing and resolving with its webhooks received by the
loopback receiver, on the controlled clock (`now=`) of the other alert tests."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from metrics.alerting.deliveries import webhook_delivery_attempt
from metrics.alerting.models import AlertEvent, AlertRule
from metrics.alerting.services import alert_rule_create, alert_rules_evaluate
from tests.metrics.alerting.conftest import SECRET, rule_body
from tests.metrics.alerting.receiver import signature_verifies
from tests.metrics.records import recompute_all, system_checks_upsert

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 5, 4, 10, 7, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def no_recompute_kick(monkeypatch):
    monkeypatch.setattr("metrics.services.alert_evaluation_kick", lambda **kwargs: None)


def checks_store(department, *runs):
    """Post (external id, check, at) runs through the ingest path, then recompute."""
    system_checks_upsert([{"external_id": key, "department": department.slug, "check": check, "at": at.isoformat(),
                           "outcome": "ok"} for key, check, at in runs])
    recompute_all()


def events(rule):
    return list(AlertEvent.objects.filter(rule=rule).order_by("at", "id"))


def test_a_rule_filters_on_a_check_and_returns_it(manager, department):
    body = rule_body(department, kpi="system_checks", check="payout-gateway", condition="below", threshold=1)
    response = manager.post("/api/v1/alert-rules", body, format="json")
    assert response.status_code == 201, response.json()
    rule = response.json()
    assert (rule["check"], rule["agent"], rule["channel"]) == ("payout-gateway", None, None)
    assert AlertRule.objects.get().check_name == "payout-gateway"
    changed = manager.patch(f"/api/v1/alert-rules/{rule['id']}", {"check": "bank-api"}, format="json")
    assert changed.status_code == 200 and changed.json()["check"] == "bank-api"
    cleared = manager.patch(f"/api/v1/alert-rules/{rule['id']}", {"check": ""}, format="json")
    assert cleared.json()["check"] is None and AlertRule.objects.get().check_name == ""


@pytest.mark.parametrize(("fields", "code"), [
    ({"kpi": "system_checks", "check": "Not A Slug"}, "invalid"),
    ({"kpi": "system_checks", "check": "x" * 65}, "max_length"),
    ({"kpi": "system_checks", "check": 7}, "invalid"),
    # Cashouts have no check: the same 400 as any KPI filtered by a dimension its records lack.
    ({"kpi": "cashout_error_rate", "check": "payout-gateway"}, "dimension_not_shared"),
])
def test_a_bad_check_filter_is_refused_naming_it_and_nothing_is_stored(manager, department, fields, code):
    response = manager.post("/api/v1/alert-rules", rule_body(department, **fields), format="json")
    assert response.status_code == 400, response.json()
    assert {(e["field"], e["code"]) for e in response.json()["errors"]} == {("check", code)}
    assert not AlertRule.objects.exists()


def test_changing_the_kpi_of_a_check_rule_to_one_without_checks_is_refused(manager, department):
    rule = manager.post("/api/v1/alert-rules", rule_body(department, kpi="system_checks", check="bank-api"),
                        format="json").json()
    response = manager.patch(f"/api/v1/alert-rules/{rule['id']}", {"kpi": "interactions"}, format="json")
    assert response.status_code == 400
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [("check", "dimension_not_shared")]
    assert AlertRule.objects.get().kpi == "system_checks"


def test_the_check_filter_counts_only_that_check(department, other_department):
    rule = alert_rule_create(department=department, kpi="system_check_failure_rate", check_name="bank-api",
                             window_seconds=3600, condition="above", threshold=40, min_sample_size=0,
                             for_evaluations=1, enabled=True)
    runs = [("b1", "bank-api", "failed", 5), ("b2", "bank-api", "ok", 10), ("b3", "bank-api", "failed", 20),
            ("p1", "payout-gateway", "ok", 1), ("p2", "payout-gateway", "ok", 2), ("p3", "payout-gateway", "ok", 3)]
    system_checks_upsert([{"external_id": key, "department": department.slug, "check": check, "outcome": outcome,
                           "at": (NOW - timedelta(minutes=m)).isoformat()} for key, check, outcome, m in runs]
                         + [{"external_id": "x", "department": other_department.slug, "check": "bank-api",
                             "outcome": "ok", "at": NOW.isoformat()}])
    recompute_all()
    assert alert_rules_evaluate(now=NOW) == 1
    (fired,) = events(rule)
    # bank-api in this department: 2 failed of 3 (the other checks and department do not count).
    assert (fired.state, fired.value, fired.sample_size, fired.check_name) == ("firing", pytest.approx(200 / 3), 3,
                                                                             "bank-api")


def test_no_system_check_in_15_minutes_fires_and_resolves_with_webhooks(department, receiver, manager):
    """The issue's absence rule: kpi=system_checks, window=PT15M, condition below, threshold 1."""
    response = manager.post("/api/v1/alert-rules", rule_body(
        department, name="payout checks stopped", kpi="system_checks", check="payout-gateway", window="PT15M",
        condition="below", threshold=1, webhook_url=receiver.url, secret=SECRET), format="json")
    assert response.status_code == 201, response.json()
    rule = AlertRule.objects.get()
    # A check every 5 minutes until 10:05; another check keeps running (it must not hide the silence).
    checks_store(department, *[(f"p{m}", "payout-gateway", NOW.replace(minute=0, second=0) + timedelta(minutes=m))
                               for m in (0, 5)])
    assert alert_rules_evaluate(now=NOW) == 0  # checks in the window: ok
    assert rule.__class__.objects.get().last_value == 2
    silent = NOW + timedelta(minutes=25)  # the window [10:15, 10:45) holds no payout check
    checks_store(department, ("b1", "bank-api", silent - timedelta(minutes=1)))
    assert alert_rules_evaluate(now=silent) == 1
    (fired,) = events(rule)
    assert (fired.previous_state, fired.state, fired.value, fired.sample_size) == ("ok", "firing", 0, 0)
    assert webhook_delivery_attempt(event_id=fired.id, now=silent).status == "delivered"
    # The checks resume.
    resumed = silent + timedelta(minutes=2)
    checks_store(department, ("p-back", "payout-gateway", resumed - timedelta(seconds=30)))
    assert alert_rules_evaluate(now=resumed) == 1
    resolved = events(rule)[-1]
    assert (resolved.previous_state, resolved.state, resolved.value) == ("firing", "ok", 1)
    assert webhook_delivery_attempt(event_id=resolved.id, now=resumed).status == "delivered"
    # The receiver got both, signed, each with its event id, the rule's check filter in the body.
    assert receiver.event_ids() == [str(fired.id), str(resolved.id)]
    bodies = [json.loads(r.body) for r in receiver.requests]
    assert [b["type"] for b in bodies] == ["alert.firing", "alert.resolved"]
    assert all(signature_verifies(secret=SECRET, header=r.headers["X-Cskpi-Signature"], body=r.body)
               for r in receiver.requests)
    assert bodies[0]["rule"]["filters"] == {"agent": None, "channel": None, "check": "payout-gateway"}
    assert (bodies[0]["rule"]["kpi"], bodies[0]["value"], bodies[1]["value"]) == ("system_checks", 0, 1)
    listed = manager.get("/api/v1/alert-events").json()["results"]
    assert {e["check"] for e in listed} == {"payout-gateway"}
