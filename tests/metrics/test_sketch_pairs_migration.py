"""metrics 0019 stores quantile sketches as bytes of (bin, count) pairs: every sketch keeps its counts,
forwards and backwards, and the database's percentile reads agree with the converted rows."""

import importlib
from datetime import UTC, datetime

import pytest
from django.db import connection

from metrics.measures import PAIR_MAX, sketch_counts
from tests.metrics.migrating import migrate, migrate_to_latest

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("metrics", "0018_cube_key_as_primary_key")]
AFTER = [("metrics", "0019_sketch_pairs")]
T0 = datetime(2026, 5, 4, 1, 30, tzinfo=UTC)
# Per row (the day of one agent): a duration's counts per bin, as the bigint[] held them.
SKETCHES = {
    "a-1": {"first_response_seconds_sketch": {3: 2, 70: 1}, "wait_seconds_sketch": {0: 1}},
    "a-2": {"first_response_seconds_sketch": {1: PAIR_MAX + 5, 900: 3 * PAIR_MAX}, "handle_seconds_sketch": None},
    "a-3": {"resolution_seconds_sketch": {1023: 2**32 - 1, 0: 7}},
}


# The canonical bytes 0019 writes: big-endian (bin, count) pairs in bin order, a count split at PAIR_MAX (the
# wide layout, frozen in 0023).
_wide = importlib.import_module("metrics.migrations.0023_sketch_compact")._wide


def _v1(counts):
    """A sketch as migrations before 0019 stored it (SketchField: a list of bin << 32 | count)."""
    return None if counts is None else [(b << 32) | c for b, c in sorted(counts.items())]


def _v1_counts(value):
    if value is None:
        return None
    if isinstance(value, str):  # SQLite: the JSON list
        import json

        value = json.loads(value)
    return {e >> 32: e & 0xFFFFFFFF for e in value}


def test_every_sketch_keeps_its_counts_forwards_and_backwards():
    apps = migrate(BEFORE)
    try:
        department = apps.get_model("cskpi", "Department").objects.create(slug="mig19", name="Mig")
        model = apps.get_model("metrics", "InteractionSketchBucket")
        for agent, columns in SKETCHES.items():
            model.objects.create(cube="day_agent", department_id=department.id, bucket_start=T0, agent=agent,
                                 **{c: _v1(v) for c, v in columns.items()})
        names = ("first_response_seconds_sketch", "resolution_seconds_sketch", "wait_seconds_sketch",
                 "handle_seconds_sketch")

        apps = migrate(AFTER)
        model = apps.get_model("metrics", "InteractionSketchBucket")
        stored = {row["agent"]: row for row in model.objects.values("agent", *names)}
        for agent, columns in SKETCHES.items():
            for name in names:
                counts = columns.get(name)
                value = stored[agent][name]
                assert (None if value is None else sketch_counts(bytes(value))) == counts, (agent, name)
                if counts:  # canonical: one pair per bin, in bin order
                    assert bytes(value) == _wide(counts)
        # The database merges the converted rows as Python does.
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SELECT cskpi_sketch_merge(first_response_seconds_sketch) "
                               "FROM metrics_interactionsketchbucket WHERE department_id = %s", [department.id])
                merged = bytes(cursor.fetchone()[0])
                assert sketch_counts(merged) == {3: 2, 70: 1, 1: PAIR_MAX + 5, 900: 3 * PAIR_MAX}
                assert merged == _wide(sketch_counts(merged))

        apps = migrate(BEFORE)
        model = apps.get_model("metrics", "InteractionSketchBucket")
        for row in model.objects.values("agent", *names):
            for name in names:
                assert _v1_counts(row[name]) == SKETCHES[row["agent"]].get(name), (row["agent"], name)
    finally:
        # The test database is left as every other test expects it: every migration applied.
        migrate_to_latest()
