"""metrics 0023 stores a quantile sketch whose counts are small in a compact layout: every sketch keeps its
counts, forwards and backwards, and the database merges the rewritten rows as Python does."""

from datetime import UTC, datetime

import pytest
from django.db import connection

from metrics.measures import COMPACT_TAG, PAIR_MAX, QUANTILE, sketch_counts, sketch_pack
from tests.metrics.migrating import migrate, migrate_to_latest
from tests.metrics.test_sketch_pairs_migration import _wide

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("metrics", "0022_agent_event_raw_exact_layer")]
AFTER = [("metrics", "0023_sketch_compact")]
T0 = datetime(2026, 5, 4, 1, 30, tzinfo=UTC)
NAMES = ("first_response_seconds_sketch", "resolution_seconds_sketch", "wait_seconds_sketch", "handle_seconds_sketch")
# Per row (the day of one agent): a duration's counts per bin, stored in the wide layout before 0023.
SKETCHES = {
    "a-1": {"first_response_seconds_sketch": {3: 2, 70: 1, 600: 1}, "wait_seconds_sketch": {0: 1}},  # compact
    "a-2": {"first_response_seconds_sketch": {1: PAIR_MAX + 5, 900: 3 * PAIR_MAX},  # wide: big counts
            "handle_seconds_sketch": None},
    "a-3": {"resolution_seconds_sketch": {1023: 64, 0: 7, 1: 63, 2: 25}},  # the widest words
    "a-4": {"first_response_seconds_sketch": {5: 1, 6: 2, 7: 1}, "resolution_seconds_sketch": {}},
}


def test_every_sketch_keeps_its_counts_in_its_layout_forwards_and_wide_backwards():
    apps = migrate(BEFORE)
    try:
        department = apps.get_model("cskpi", "Department").objects.create(slug="mig23", name="Mig")
        model = apps.get_model("metrics", "InteractionSketchBucket")
        for agent, columns in SKETCHES.items():
            model.objects.create(cube="day_agent", department_id=department.id, bucket_start=T0, agent=agent,
                                 **{c: None if v is None else _wide(v) for c, v in columns.items()})

        apps = migrate(AFTER)
        model = apps.get_model("metrics", "InteractionSketchBucket")
        stored = {row["agent"]: row for row in model.objects.values("agent", *NAMES)}
        layouts = set()
        for agent, columns in SKETCHES.items():
            for name in NAMES:
                counts, value = columns.get(name), stored[agent][name]
                if counts is None:
                    assert value is None, (agent, name)
                    continue
                # Canonical: what the code writes for those counts.
                assert bytes(value) == sketch_pack(counts) and sketch_counts(bytes(value)) == counts, (agent, name)
                layouts.add(bytes(value)[:1] == bytes([COMPACT_TAG]) if counts else None)
        assert layouts == {True, False, None}
        # The database merges the rewritten rows as Python does.
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT cskpi_sketch_merge(array_agg(first_response_seconds_sketch)) "
                               "FROM metrics_interactionsketchbucket WHERE department_id = %s", [department.id])
                merged = bytes(cursor.fetchone()[0])
            expected = QUANTILE.merge([sketch_pack(c["first_response_seconds_sketch"])
                                       for c in SKETCHES.values() if c.get("first_response_seconds_sketch")])
            assert merged == expected

        apps = migrate(BEFORE)
        model = apps.get_model("metrics", "InteractionSketchBucket")
        for row in model.objects.values("agent", *NAMES):
            for name in NAMES:
                counts = SKETCHES[row["agent"]].get(name)
                assert (None if row[name] is None else bytes(row[name])) == (
                    None if counts is None else _wide(counts)), (row["agent"], name)
    finally:
        # The test database is left as every other test expects it: every migration applied.
        migrate_to_latest()
