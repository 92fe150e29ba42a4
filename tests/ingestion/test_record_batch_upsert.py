"""record_batch_upsert as a service: retries after a deadlock, results without HTTP."""

import pytest
from django.db import OperationalError

import ingestion.services as services
from ingestion.fields import CASHOUT, INTERACTION
from ingestion.models import Interaction
from tests.ingestion.factories import cashout_payload, interaction_payload

pytestmark = pytest.mark.django_db


class _Deadlock(Exception):
    sqlstate = "40P01"


def test_a_deadlocked_transaction_is_retried(department, monkeypatch):
    rows = services.record_batch_validate(spec=INTERACTION, items=[interaction_payload(external_id="D")])
    real = services._upsert
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            real(*args, **kwargs)  # the first attempt writes, then dies: its writes must roll back
            raise OperationalError("deadlock detected") from _Deadlock()
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "_upsert", flaky)
    outcome = services.record_batch_upsert(spec=INTERACTION, rows=rows)
    assert calls["n"] == 2
    assert outcome["created"] == 1
    assert Interaction.objects.filter(external_id="D").count() == 1


def test_other_database_errors_are_not_retried(department, monkeypatch):
    rows = services.record_batch_validate(spec=INTERACTION, items=[interaction_payload()])
    calls = {"n": 0}

    def broken(*args, **kwargs):
        calls["n"] += 1
        raise OperationalError("connection lost")

    monkeypatch.setattr(services, "_upsert", broken)
    with pytest.raises(OperationalError):
        services.record_batch_upsert(spec=INTERACTION, rows=rows)
    assert calls["n"] == 1
    assert Interaction.objects.count() == 0


def _upsert(items):
    rows = services.record_batch_validate(spec=INTERACTION, items=items)
    return services.record_batch_upsert(spec=INTERACTION, rows=rows)


def _digest(spec, item) -> str:
    [row] = services.record_batch_validate(spec=spec, items=[item])
    return services.content_hash(row, services._table(spec).content_columns)


def test_content_digests_tell_typed_values_apart(department):
    base = cashout_payload(external_id="H")
    digest = _digest(CASHOUT, base)
    assert len(digest) == 30 and int(digest, 16) >= 0
    assert _digest(CASHOUT, {**base, "amount": "1500000.500"}) == digest  # the same amount, quantized
    assert _digest(CASHOUT, {**base, "requested_at": "2026-03-02T04:00:00Z"}) == digest  # the same instant
    assert _digest(CASHOUT, {**base, "updated_at": "2026-03-03T00:00:00Z"}) == digest  # not content
    for change in ({"amount": "1500000.51"}, {"requested_at": "2026-03-02T11:00:01+07:00"},
                   {"completed_at": None, "status": "pending"}, {"customer": "C-2"}, {"channel": "web"}):
        assert _digest(CASHOUT, {**base, **change}) != digest, change
    item = interaction_payload(external_id="H")
    assert _digest(INTERACTION, {**item, "wait_seconds": 30}) != _digest(INTERACTION, {**item, "wait_seconds": 31})
    assert _digest(INTERACTION, {**item, "self_service": True}) != _digest(INTERACTION, {**item, "self_service": False})


def test_a_record_stored_with_the_earlier_digest_is_unchanged_when_sent_again(department):
    item = interaction_payload(external_id="L", updated_at="2026-03-02T10:00:00+07:00")
    assert _upsert([item])["created"] == 1
    [row] = services.record_batch_validate(spec=INTERACTION, items=[item])
    legacy = services.content_hash_legacy(row, services._table(INTERACTION).content_columns)
    assert len(legacy) == services.LEGACY_DIGEST_LENGTH
    Interaction.objects.filter(external_id="L").update(content_hash=legacy)  # as the earlier scheme stored it

    assert _upsert([item])["unchanged"] == 1
    assert Interaction.objects.get(external_id="L").content_hash == legacy
    changed = {**item, "topic": "billing", "updated_at": "2026-03-02T11:00:00+07:00"}
    outcome = _upsert([item, changed])  # the stored content, then a change: compared in each scheme
    assert [i["result"] for i in outcome["items"]] == ["unchanged", "updated"]
    stored = Interaction.objects.get(external_id="L")
    assert stored.topic == "billing" and stored.content_hash == _digest(INTERACTION, changed)
    assert _upsert([changed])["unchanged"] == 1


@pytest.mark.postgres
def test_the_lock_and_update_plans_do_not_scan_the_record_table(department):
    """The record table is not scanned whole per batch, whatever the planner knows of it (here it has
    usually never been analysed, as after a truncate, when both plans used to be sequential scans): the
    keys are looked up one by one and the changed rows found where they lie."""
    from django.db import connection

    for start in range(0, 20_000, 1000):
        _upsert([interaction_payload(external_id=f"P-{i}") for i in range(start, start + 1000)])
    table = services._table(INTERACTION)
    rows = list(Interaction.objects.order_by("id").values()[5000:5300])
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT ctid::text FROM {table.name} WHERE id = ANY(%s) ORDER BY id", [[r["id"] for r in rows]])
        ctids = [c for (c,) in cursor.fetchall()]
        cursor.execute("EXPLAIN " + table.pg_lock_sql.replace("%b", "%s"),
                       [[r["source"] for r in rows], [r["external_id"] for r in rows]])
        lock_plan = "\n".join(line for (line,) in cursor.fetchall())
        cursor.execute(f"SET LOCAL random_page_cost = {services.UPDATE_RANDOM_PAGE_COST}")
        cursor.execute("EXPLAIN " + table.pg_update_sql.replace("%b", "%s"),
                       [*[[r[c] for r in rows] for c in ["id"] + table.update_columns], ctids])
        update_plan = "\n".join(line for (line,) in cursor.fetchall())
    assert "Index Scan using interaction_key" in lock_plan and "Seq Scan" not in lock_plan, lock_plan
    assert "Tid Scan on ingestion_interaction" in update_plan and "Seq Scan on ingestion_interaction" not in update_plan


@pytest.mark.postgres
def test_a_changed_row_not_where_it_was_read_is_updated_by_id(department, monkeypatch, caplog):
    _upsert([interaction_payload(external_id="M-1"), interaction_payload(external_id="M-2")])
    real = services._select_for_update

    def misplaced(table, keys):
        found = real(table, keys)
        for stored in found.values():
            stored.ctid = "(0,0)"  # no row lies there
        return found

    monkeypatch.setattr(services, "_select_for_update", misplaced)
    outcome = _upsert([interaction_payload(external_id="M-1", handle_seconds=500),
                       interaction_payload(external_id="M-2", handle_seconds=500)])
    assert outcome["updated"] == 2
    assert set(Interaction.objects.values_list("handle_seconds", flat=True)) == {500}
    assert "2 of 2 locked rows not where they were read" in caplog.text
