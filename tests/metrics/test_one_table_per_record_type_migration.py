"""metrics 0027 moves the sketches, sets and first contacts into their record type's counts table: every state
lands in the row of its key (a key only another store held is kept, its counts NULL), and backwards each
store's table holds again the rows of the cubes it kept."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from tests.metrics.migrating import migrate, migrate_to_latest

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("metrics", "0026_key_index_fillfactor")]
AFTER = [("metrics", "0027_one_table_per_record_type")]
T0 = datetime(2026, 5, 4, 1, tzinfo=UTC)
KEY = ("cube", "bucket_start", "agent", "channel", "topic", "check_name", "customer_region", "segment")
MOVED = {
    "InteractionSketchBucket": ("first_response_seconds_sketch", "handle_seconds_sketch",
                                "resolution_seconds_sketch", "wait_seconds_sketch"),
    "InteractionSetBucket": ("customers",),
    "InteractionFirstContactBucket": ("first_contact_customers",),
    "CashoutSketchBucket": ("processing_seconds_sketch", "response_seconds_sketch"),
}
OWNER = {"InteractionSketchBucket": "InteractionBucket", "InteractionSetBucket": "InteractionBucket",
         "InteractionFirstContactBucket": "InteractionBucket", "CashoutSketchBucket": "CashoutBucket"}


def _rows(apps, model: str, columns) -> dict[tuple, tuple]:
    found = {}
    for row in apps.get_model("metrics", model).objects.values(*KEY, *columns):
        found[tuple(row[k] for k in KEY)] = tuple(None if row[c] is None else bytes(row[c]) if isinstance(
            row[c], bytes | memoryview) else row[c] for c in columns)
    return found


def _before(apps, department_id: int) -> None:
    counts = apps.get_model("metrics", "InteractionBucket")
    sketches = apps.get_model("metrics", "InteractionSketchBucket")
    sets = apps.get_model("metrics", "InteractionSetBucket")
    firsts = apps.get_model("metrics", "InteractionFirstContactBucket")
    for n in range(3):
        at = T0 + timedelta(days=n)
        key = {"department_id": department_id, "bucket_start": at}
        counts.objects.create(cube="day", interactions=10 + n, **key)
        sketches.objects.create(cube="day", wait_seconds_sketch=bytes([n, 1, 2]),
                                handle_seconds_sketch=None if n == 1 else b"h", **key)
        sets.objects.create(cube="day", customers=bytes([1, n, 0, 0, 0]), **key)
        if n != 2:  # a first contact table holds only buckets with a first contact
            firsts.objects.create(cube="day", first_contact_customers=bytes([1, 9, n, 0, 0]), **key)
        for agent in ("a-1", "a-2"):
            counts.objects.create(cube="day_agent", agent=agent, interactions=n + 1, **key)
            sketches.objects.create(cube="day_agent", agent=agent, wait_seconds_sketch=agent.encode(), **key)
            sets.objects.create(cube="day_agent", agent=agent, customers=None if agent == "a-2" else b"\x01x", **key)
        counts.objects.create(cube="hour", interactions=n, resolved=None, **key)  # no sketch by hour
        sets.objects.create(cube="hour", customers=bytes([1, 5, n, 0, 0]), **key)
        firsts.objects.create(cube="hour", first_contact_customers=bytes([1, 5, n, 1, 0]), **key)
    # A key no counts row has (none is expected): kept.
    sets.objects.create(cube="day_agent", agent="a-9", department_id=department_id, bucket_start=T0,
                        customers=b"\x01orphan")
    cashouts = apps.get_model("metrics", "CashoutBucket")
    cashout_sketches = apps.get_model("metrics", "CashoutSketchBucket")
    for cube in ("day", "day_channel"):
        cashouts.objects.create(cube=cube, department_id=department_id, bucket_start=T0, channel="" if cube == "day"
                                else "app", cashouts=4)
        cashout_sketches.objects.create(cube=cube, department_id=department_id, bucket_start=T0,
                                        channel="" if cube == "day" else "app", response_seconds_sketch=b"r" + cube.encode())
    cashouts.objects.create(cube="hour", department_id=department_id, bucket_start=T0, cashouts=4)


def test_every_state_moves_into_the_row_of_its_key_and_back():
    apps = migrate(BEFORE)
    try:
        department = apps.get_model("cskpi", "Department").objects.create(slug="mig27", name="Mig")
        _before(apps, department.id)
        before = {model: _rows(apps, model, columns) for model, columns in MOVED.items()}
        counts_before = {owner: _rows(apps, owner, [f]) for owner, f in (
            ("InteractionBucket", "interactions"), ("CashoutBucket", "cashouts"))}

        apps = migrate(AFTER)
        for model in MOVED:
            with pytest.raises(LookupError):
                apps.get_model("metrics", model)
        for owner, field in (("InteractionBucket", "interactions"), ("CashoutBucket", "cashouts")):
            columns = [c for model, cs in MOVED.items() if OWNER[model] == owner for c in cs]
            after = _rows(apps, owner, [field, *columns])
            keys = set(counts_before[owner]) | {k for m in MOVED if OWNER[m] == owner for k in before[m]}
            assert set(after) == keys
            for key, values in after.items():
                # The counts as they were (NULL for the key only a set held), each store's states in its columns.
                assert values[0] == counts_before[owner].get(key, (None,))[0], key
                at = 1
                for model, cs in ((m, cs) for m, cs in MOVED.items() if OWNER[m] == owner):
                    assert values[at:at + len(cs)] == before[model].get(key, (None,) * len(cs)), (model, key)
                    at += len(cs)
        orphan = ("day_agent", T0, "a-9", "", "", "", "", "")
        assert _rows(apps, "InteractionBucket", ["interactions", "customers"])[orphan] == (None, b"\x01orphan")

        apps = migrate(BEFORE)
        for model, columns in MOVED.items():
            # The key only a set held is a key of the counts now, so of the sketches too (no duration: NULL).
            extra = {orphan: (None,) * len(columns)} if model == "InteractionSketchBucket" else {}
            assert _rows(apps, model, columns) == {**before[model], **extra}, model
        with connection.cursor() as cursor:
            columns = {c.name for c in connection.introspection.get_table_description(cursor, "metrics_interactionbucket")}
        assert "interactions" in columns and not columns & {c for cs in MOVED.values() for c in cs}
        restored = _rows(apps, "InteractionBucket", ["interactions"])
        assert restored == {**counts_before["InteractionBucket"], orphan: (None,)}
        assert _rows(apps, "CashoutBucket", ["cashouts"]) == counts_before["CashoutBucket"]
    finally:
        # The test database is left as every other test expects it: every migration applied.
        migrate_to_latest()
