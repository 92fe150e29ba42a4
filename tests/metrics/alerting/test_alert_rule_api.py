"""POST/GET/PATCH/DELETE /api/v1/alert-rules: validation naming the field, nothing stored on a
refusal, who may manage, and the secret never coming back."""

import pytest

from metrics.alerting.models import AlertRule
from tests.metrics.alerting.conftest import SECRET, rule_body

pytestmark = pytest.mark.django_db


def test_a_manager_creates_a_rule_and_reads_it_back_without_the_secret(manager, department):
    body = rule_body(department, name="Errors", kpi="cashout_error_rate", window="PT1H30M", threshold=5.5,
                     condition="above", min_sample_size=20, for_evaluations=3, channel="app", agent="a-1",
                     webhook_url="https://127.0.0.1/hooks", secret=SECRET)
    response = manager.post("/api/v1/alert-rules", body, format="json")
    assert response.status_code == 201, response.json()
    rule = response.json()
    assert "secret" not in rule and rule["has_secret"] is True
    assert {k: rule[k] for k in ("name", "department", "kpi", "window", "condition", "threshold", "min_sample_size",
                                 "for_evaluations", "agent", "channel", "webhook_url", "enabled", "state")} == {
        "name": "Errors", "department": "cskh-hn", "kpi": "cashout_error_rate", "window": "PT1H30M",
        "condition": "above", "threshold": 5.5, "min_sample_size": 20, "for_evaluations": 3, "agent": "a-1",
        "channel": "app", "webhook_url": "https://127.0.0.1/hooks", "enabled": True, "state": "ok"}
    stored = AlertRule.objects.get()
    assert stored.window_seconds == 5400 and stored.secret == SECRET
    listed = manager.get("/api/v1/alert-rules").json()
    assert [r["id"] for r in listed] == [rule["id"]] and "secret" not in listed[0]
    assert manager.get(f"/api/v1/alert-rules/{rule['id']}").json() == rule


@pytest.mark.parametrize(("fields", "field", "code"), [
    ({"kpi": "no_such_kpi"}, "kpi", "invalid_choice"),
    ({"window": "PT4M"}, "window", "out_of_range"),
    ({"window": "P8D"}, "window", "out_of_range"),
    ({"window": "15 minutes"}, "window", "invalid"),
    ({"window": "P1M"}, "window", "invalid"),
    ({"threshold": "5"}, "threshold", "invalid"),
    ({"threshold": True}, "threshold", "invalid"),
    ({"threshold": None}, "threshold", "null"),
    ({"threshold": 1e16}, "threshold", "out_of_range"),
    ({"condition": "equals"}, "condition", "invalid_choice"),
    ({"for_evaluations": 0}, "for_evaluations", "min_value"),
    ({"for_evaluations": "2"}, "for_evaluations", "invalid"),
    ({"min_sample_size": -1}, "min_sample_size", "min_value"),
    ({"enabled": "yes"}, "enabled", "invalid"),
    ({"channel": "Not A Slug"}, "channel", "invalid"),
    ({"webhook_url": "http://hooks.example.com/x", "secret": SECRET}, "webhook_url", "https_required"),
    ({"webhook_url": "ftp://hooks.example.com/x", "secret": SECRET}, "webhook_url", "invalid_url"),
    ({"webhook_url": "https://10.1.2.3/x", "secret": SECRET}, "webhook_url", "forbidden_address"),
    ({"webhook_url": "https://169.254.169.254/latest/meta-data", "secret": SECRET}, "webhook_url",
     "forbidden_address"),
    ({"webhook_url": "https://[::1]/x", "secret": SECRET}, "webhook_url", "forbidden_address"),
    ({"webhook_url": "https://[::ffff:192.168.0.1]/x", "secret": SECRET}, "webhook_url", "forbidden_address"),
    ({"webhook_url": "https://localhost/x", "secret": SECRET}, "webhook_url", "forbidden_address"),
    ({"webhook_url": "https://user:pw@127.0.0.1/x", "secret": SECRET}, "webhook_url", "invalid_url"),
    ({"webhook_url": "https://127.0.0.1/x"}, "secret", "required"),
    ({"webhook_url": "https://127.0.0.1/x", "secret": "short"}, "secret", "min_length"),
    ({"colour": "red"}, "colour", "unknown_field"),
    ({"department": None}, "department", "null"),
])
def test_a_bad_field_is_a_400_naming_it_and_nothing_is_stored(manager, department, fields, field, code):
    response = manager.post("/api/v1/alert-rules", rule_body(department, **fields), format="json")
    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == "invalid"
    assert (body["errors"][0]["field"], body["errors"][0]["code"]) == (field, code)
    assert not AlertRule.objects.exists()


def test_a_missing_field_is_named(manager, department):
    body = rule_body(department)
    del body["window"]
    response = manager.post("/api/v1/alert-rules", body, format="json")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "window"


@pytest.mark.parametrize("role", ["viewer", "agent", "ingest"])
def test_only_managers_and_staff_create_rules(make_client, department, role):
    client = make_client(grants=[(department.slug, role)], agent="a-1")
    response = client.post("/api/v1/alert-rules", rule_body(department), format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied" and "department" in response.json()["detail"]
    assert not AlertRule.objects.exists()


def test_a_manager_of_another_department_cannot_create_here(make_client, department, other_department):
    client = make_client(grants=[(other_department.slug, "manager")])
    assert client.post("/api/v1/alert-rules", rule_body(department), format="json").status_code == 403
    assert not AlertRule.objects.exists()


def test_staff_naming_an_unknown_department_gets_a_400(staff_client, department):
    response = staff_client.post("/api/v1/alert-rules", {**rule_body(department), "department": "nowhere"},
                                 format="json")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "department"
    assert staff_client.post("/api/v1/alert-rules", rule_body(department), format="json").status_code == 201


def test_patch_changes_fields_keeps_department_and_checks_the_webhook(manager, make_client, department):
    rule = manager.post("/api/v1/alert-rules", rule_body(department), format="json").json()
    url = f"/api/v1/alert-rules/{rule['id']}"
    changed = manager.patch(url, {"threshold": 3, "window": "PT30M", "enabled": False}, format="json")
    assert changed.status_code == 200
    assert (changed.json()["threshold"], changed.json()["window"], changed.json()["enabled"]) == (3.0, "PT30M", False)
    assert manager.patch(url, {"department": "cskh-hcm"}, format="json").json()["errors"][0]["code"] == "immutable"
    bad = manager.patch(url, {"webhook_url": "https://127.0.0.1/x"}, format="json")
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "secret"
    assert manager.patch(url, {"webhook_url": "https://127.0.0.1/x", "secret": SECRET},
                         format="json").status_code == 200
    # No secret needed once one is stored.
    assert manager.patch(url, {"webhook_url": "https://127.0.0.1/y"}, format="json").status_code == 200
    assert AlertRule.objects.get().threshold == 3
    viewer = make_client(grants=[(department.slug, "viewer")])
    assert viewer.get(url).json()["webhook_url"] is None  # readable (no agent filter), URL hidden
    assert viewer.patch(url, {"threshold": 1}, format="json").status_code == 403
    assert viewer.delete(url).status_code == 403
    assert manager.delete(url).status_code == 204
    assert manager.get(url).status_code == 404 and not AlertRule.objects.exists()
