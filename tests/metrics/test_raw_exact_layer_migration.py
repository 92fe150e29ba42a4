"""metrics 0017 drops the stored exact layer of the tables whose raw records are their exact layer, the
day × agent × channel, hour × channel and half-hour cubes and the hour sketches, and marks every
half-hour that held records so the recompute fills `hour_30`."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.metrics.migrating import migrate, migrate_to_latest

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("metrics", "0016_drop_copied_cubes")]
AFTER = [("metrics", "0017_raw_exact_layer")]
T0 = datetime(2026, 5, 4, 1, 30, tzinfo=UTC)
EXACT = "quarter_agent_channel_topic"


def test_dropped_rows_go_and_half_hours_are_marked():
    apps = migrate(BEFORE)
    try:
        department = apps.get_model("cskpi", "Department").objects.create(slug="mig", name="Mig")
        counts = apps.get_model("metrics", "InteractionBucket")
        sketches = apps.get_model("metrics", "InteractionSketchBucket")
        presence = apps.get_model("metrics", "AgentEventBucket")
        for cube, moment in [("half_hour", T0), ("half_hour", T0 + timedelta(hours=5)), (EXACT, T0),
                             ("day_agent_channel", T0), ("hour_channel", T0), ("day", T0), ("hour", T0)]:
            counts.objects.create(cube=cube, department_id=department.id, bucket_start=moment, interactions=1)
        for cube in ("hour", "day", "half_hour", "month_agent_channel"):
            sketches.objects.create(cube=cube, department_id=department.id, bucket_start=T0)
        presence.objects.create(cube=EXACT, department_id=department.id, bucket_start=T0, agent="a-1")

        apps = migrate(AFTER)
        counts = apps.get_model("metrics", "InteractionBucket")
        assert set(counts.objects.values_list("cube", flat=True)) == {"day", "hour"}
        assert set(apps.get_model("metrics", "InteractionSketchBucket").objects.values_list("cube", flat=True)) == {
            "day"}
        # Time in state keeps its stored exact layer.
        assert list(apps.get_model("metrics", "AgentEventBucket").objects.values_list("cube", flat=True)) == [EXACT]
        marks = apps.get_model("ingestion", "RecordChange").objects.values_list("record_type", "department_id",
                                                                              "quarter_start", "scope")
        assert sorted(marks) == [("interaction", department.id, T0, "all"),
                                 ("interaction", department.id, T0 + timedelta(hours=5), "all")]
    finally:
        # The test database is left as every other test expects it: every migration applied.
        migrate_to_latest()
