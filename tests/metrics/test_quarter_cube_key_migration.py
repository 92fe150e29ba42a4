"""metrics 0020 renames the exact layer's cube key to "quarter": rows keep their values and their key
otherwise, forwards and backwards, and the renamed rows are what the engine reads as the exact layer."""

from datetime import UTC, datetime

import pytest

from metrics.cubes import EXACT_CUBE
from tests.metrics.migrating import migrate, migrate_to_latest

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("metrics", "0019_sketch_pairs")]
AFTER = [("metrics", "0020_quarter_cube_key")]
T0 = datetime(2026, 5, 4, 1, 30, tzinfo=UTC)


def _rows(apps):
    model = apps.get_model("metrics", "AgentEventBucket")
    return sorted((r["cube"], r["agent"], r["available_seconds"]) for r in
                  model.objects.values("cube", "agent", "available_seconds"))


def test_the_exact_layer_rows_are_renamed_and_keep_their_values():
    apps = migrate(BEFORE)
    try:
        department = apps.get_model("cskpi", "Department").objects.create(slug="mig20", name="Mig")
        model = apps.get_model("metrics", "AgentEventBucket")
        for agent, seconds in (("a-1", 600.0), ("a-2", 900.0)):
            model.objects.create(cube="quarter_agent_channel_topic", department_id=department.id, bucket_start=T0,
                                 agent=agent, available_seconds=seconds)
        model.objects.create(cube="day", department_id=department.id, bucket_start=T0, available_seconds=1500.0)

        apps = migrate(AFTER)
        assert EXACT_CUBE.key == "quarter"
        assert _rows(apps) == [("day", "", 1500.0), ("quarter", "a-1", 600.0), ("quarter", "a-2", 900.0)]

        apps = migrate(BEFORE)
        assert _rows(apps) == [("day", "", 1500.0), ("quarter_agent_channel_topic", "a-1", 600.0),
                               ("quarter_agent_channel_topic", "a-2", 900.0)]
    finally:
        # The test database is left as every other test expects it: every migration applied.
        migrate_to_latest()
