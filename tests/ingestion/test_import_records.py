"""manage.py import_records: same rules as the API, batches, summary, re-runs change nothing."""

import csv
import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from ingestion.models import Cashout, Interaction, SurveyResponse
from tests.ingestion.factories import cashout_payload, interaction_payload, survey_payload

pytestmark = pytest.mark.django_db


def run(*args):
    out, err = StringIO(), StringIO()
    try:
        call_command("import_records", *map(str, args), stdout=out, stderr=err)
        failed = None
    except CommandError as exc:
        failed = str(exc)
    return out.getvalue(), failed


def write_jsonl(path, items):
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    return path


def test_jsonl_import_and_rerun_changes_nothing(tmp_path, department):
    items = [interaction_payload(external_id=f"J{i}", updated_at="2026-03-02T10:00:00Z") for i in range(25)]
    items.append({**items[0], "topic": "later", "updated_at": "2026-03-02T11:00:00Z"})  # a later version
    path = write_jsonl(tmp_path / "interactions.jsonl", items)
    out, failed = run("interactions", path, "--batch-size", 10)
    assert failed is None
    assert "created=25 updated=1 unchanged=0 stale=0 invalid=0" in out
    assert Interaction.objects.count() == 25
    assert Interaction.objects.get(external_id="J0").topic == "later"
    snapshot = list(Interaction.objects.order_by("id").values())
    out, failed = run("interactions", path, "--batch-size", 10)
    assert "created=0 updated=0 unchanged=25 stale=1" in out
    unchanged = list(Interaction.objects.order_by("id").values())
    assert [dict(r, received_at=None) for r in unchanged] == [dict(r, received_at=None) for r in snapshot]


def test_csv_import_reads_cells_and_fills_the_department(tmp_path, department):
    path = tmp_path / "cashouts.csv"
    rows = [cashout_payload(external_id="C1", department=...), cashout_payload(
        external_id="C2", department=..., status="failed", failure_reason="limit", first_response_at="")]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        writer.writeheader()
        writer.writerows(rows)
    out, failed = run("cashouts", path, "--department", "cskh-hn")
    assert failed is None and "created=2" in out
    c2 = Cashout.objects.get(external_id="C2")
    assert (c2.amount, c2.status, c2.failure_reason, c2.first_response_at) == (
        Decimal("1500000.5"), "failed", "limit", None)


def test_invalid_batches_are_reported_by_line_and_not_written(tmp_path, department):
    items = [survey_payload(external_id="S1"), survey_payload(external_id="S2"),  # batch 1: ok
             survey_payload(external_id="S3", score=9), survey_payload(external_id="S4"),  # batch 2: bad
             survey_payload(external_id="S5")]  # batch 3: ok
    path = tmp_path / "surveys.jsonl"
    path.write_text("".join(json.dumps(i) + "\n" for i in items) + "{not json\n")
    out, failed = run("surveys", path, "--batch-size", 2)
    assert failed == "2 invalid rows; 4 rows not written."  # batches 2 and 3
    assert "line 3: score: out_of_scale" in out and "line 6: row: not_an_object" in out
    assert sorted(SurveyResponse.objects.values_list("external_id", flat=True)) == ["S1", "S2"]


def test_stop_on_error_stops_at_the_first_bad_batch(tmp_path, department):
    items = [interaction_payload(wait_seconds=-1)] + [interaction_payload() for _ in range(3)]
    path = write_jsonl(tmp_path / "i.jsonl", items)
    _, failed = run("interactions", path, "--batch-size", 2, "--stop-on-error")
    assert failed is not None
    assert Interaction.objects.count() == 0


def test_wrong_file_type_is_refused(tmp_path, department):
    path = tmp_path / "x.txt"
    path.write_text("")
    assert run("interactions", path)[1] == "FILE must end in .csv or .jsonl"
