"""metrics 0022 drops the quarter-hour rows of time in state (the raw events are its exact layer) and
keeps every other cube's. Both ways it marks the quarters of every hour holding time in some state: the
recompute builds the new cubes there (forwards), or the quarter rows again (backwards, which deletes the
new cubes' rows)."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.metrics.migrating import migrate, migrate_to_latest

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("metrics", "0021_month_agent_channel_sketches")]
AFTER = [("metrics", "0022_agent_event_raw_exact_layer")]
T0 = datetime(2026, 5, 4, 1, tzinfo=UTC)


def test_quarter_rows_go_the_others_stay_and_the_hours_are_marked_both_ways():
    apps = migrate(BEFORE)
    try:
        department = apps.get_model("cskpi", "Department").objects.create(slug="mig22", name="Mig",
                                                                          timezone="Asia/Ho_Chi_Minh")
        presence = apps.get_model("metrics", "AgentEventBucket")
        rows = [("quarter", T0, "a-1"), ("quarter", T0 + timedelta(minutes=15), "a-1"), ("quarter", T0, "a-2"),
                ("hour", T0, ""), ("hour", T0 + timedelta(hours=3), ""), ("hour_30", T0 - timedelta(minutes=30), ""),
                ("day", T0 - timedelta(hours=1), ""), ("day_agent", T0 - timedelta(hours=1), "a-1")]
        for cube, start, agent in rows:
            presence.objects.create(cube=cube, department_id=department.id, bucket_start=start, agent=agent,
                                    busy_seconds=60.0)
        # A count table's rows are not touched (its exact layer went in 0017).
        apps.get_model("metrics", "InteractionBucket").objects.create(cube="hour", department_id=department.id,
                                                                      bucket_start=T0, interactions=1)

        apps = migrate(AFTER)
        kept = apps.get_model("metrics", "AgentEventBucket").objects.values_list("cube", "bucket_start", "agent")
        assert sorted(kept) == sorted(r for r in rows if r[0] != "quarter")
        assert apps.get_model("metrics", "InteractionBucket").objects.count() == 1
        expected = [("agent_event", department.id, hour + timedelta(minutes=15 * n), "all")
                    for hour in (T0, T0 + timedelta(hours=3)) for n in range(4)]
        changes = apps.get_model("ingestion", "RecordChange").objects
        assert sorted(changes.values_list("record_type", "department_id", "quarter_start", "scope")) == expected
        changes.all().delete()
        presence = apps.get_model("metrics", "AgentEventBucket")
        for cube in ("hour_agent", "hour_30_agent", "quarter_department"):  # as the worker builds them
            presence.objects.create(cube=cube, department_id=department.id, bucket_start=T0, agent="a-1")

        apps = migrate(BEFORE)
        changes = apps.get_model("ingestion", "RecordChange").objects
        assert sorted(changes.values_list("record_type", "department_id", "quarter_start", "scope")) == expected
        # The new cubes' rows go with the code that reads them.
        kept = apps.get_model("metrics", "AgentEventBucket").objects.values_list("cube", "bucket_start", "agent")
        assert sorted(kept) == sorted(r for r in rows if r[0] != "quarter")
    finally:
        migrate_to_latest()
