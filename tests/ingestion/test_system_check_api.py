"""POST/GET /api/v1/system-checks: what the record type's declaration gives it (the loops over record
types in the other modules cover the rest), its bad input, and who reads system checks."""

import csv
import json
from io import StringIO

import pytest
from django.core.management import call_command

from ingestion.models import RecordChange, SystemCheck
from tests.ingestion.factories import record_payload

pytestmark = pytest.mark.django_db

URL = "/api/v1/system-checks"


def check(**overrides) -> dict:
    return record_payload("system-checks", **{"check": "payout-gateway", "at": "2026-03-02T09:15:00+07:00",
                                              "outcome": "ok", **overrides})


def test_a_check_is_stored_and_read_back(staff_client, department):
    item = check(external_id="run-1", source="uptime", duration_ms=230, detail="HTTP 200")
    response = staff_client.post(URL, [item], format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["created"] == 1
    stored = SystemCheck.objects.get()
    assert (stored.check_name, stored.outcome, stored.duration_ms, stored.detail) == (
        "payout-gateway", "ok", 230, "HTTP 200")
    detail = staff_client.get(f"{URL}/uptime/run-1").json()
    assert {k: detail[k] for k in ("check", "at", "outcome", "duration_ms", "detail", "department")} == {
        "check": "payout-gateway", "at": "2026-03-02T02:15:00Z", "outcome": "ok", "duration_ms": 230,
        "detail": "HTTP 200", "department": "cskh-hn"}
    listed = staff_client.get(URL, {"check": "payout-gateway", "outcome": "ok"}).json()["results"]
    assert [r["external_id"] for r in listed] == ["run-1"]
    assert staff_client.get(URL, {"check": "bank-api"}).json()["results"] == []


@pytest.mark.parametrize(("overrides", "field", "code"), [
    ({"outcome": "degraded"}, "outcome", "invalid_choice"),
    ({"at": "2026-03-02T09:15:00"}, "at", "naive_datetime"),
    ({"check": "Payout Gateway"}, "check", "invalid_slug"),
    ({"check": "x" * 65}, "check", "max_length"),
    ({"check": None}, "check", "required"),
    ({"duration_ms": -1}, "duration_ms", "out_of_range"),
    ({"duration_ms": 2**31}, "duration_ms", "out_of_range"),
    ({"duration_ms": 1.5}, "duration_ms", "invalid_type"),
    ({"detail": "x" * 2001}, "detail", "max_length"),
])
def test_bad_input_is_a_400_naming_item_and_field_and_nothing_is_written(staff_client, department, overrides,
                                                                        field, code):
    response = staff_client.post(URL, [check(), check(**overrides)], format="json")
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [(1, field)]
    assert errors[0]["code"] == code, errors
    assert not SystemCheck.objects.exists() and not RecordChange.objects.exists()


def test_who_reads_system_checks(make_client, staff_client, department):
    """No agent owns a system check: viewers and managers read them, an agent grant none (like cashouts)."""
    staff_client.post(URL, [check(external_id="run-1", source="api"), check(external_id="run-2", outcome="failed")], format="json")
    for role, seen in (("viewer", 2), ("manager", 2), ("agent", 0), ("ingest", None)):
        client = make_client(grants=[(department.slug, role)], agent="a-1" if role == "agent" else "")
        response = client.get(URL)
        if seen is None:
            assert response.status_code == 403
        else:
            assert len(response.json()["results"]) == seen, role
        detail = client.get(f"{URL}/api/run-1")
        assert detail.status_code == (200 if seen else 404), role


def test_csv_and_jsonl_import(tmp_path, department):
    runs = [check(external_id=f"imp-{i}", source="api", at=f"2026-03-02T09:{10 * i:02d}:00+07:00",
                  outcome="failed" if i == 2 else "ok") for i in range(4)]
    path = tmp_path / "checks.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=sorted({k for r in runs for k in r}))
        writer.writeheader()
        writer.writerows(runs[:3])
    out = StringIO()
    call_command("import_records", "system-checks", str(path), stdout=out)
    assert "created=3" in out.getvalue()
    jsonl = tmp_path / "checks.jsonl"
    jsonl.write_text(json.dumps(runs[3]) + "\n" + json.dumps(runs[0]) + "\n")
    out = StringIO()
    call_command("import_records", "system-checks", str(jsonl), stdout=out)
    assert "created=1 updated=0 unchanged=1" in out.getvalue()
    assert sorted(SystemCheck.objects.values_list("external_id", "outcome")) == [
        ("imp-0", "ok"), ("imp-1", "ok"), ("imp-2", "failed"), ("imp-3", "ok")]
