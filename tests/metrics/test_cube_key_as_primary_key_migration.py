"""metrics 0018 rebuilds the cube tables without a surrogate id, their key the primary key, counts in 32
bits, fixed-width columns first: every row keeps its values, forwards and backwards."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, connection

from tests.metrics.migrating import migrate, migrate_to_latest

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("metrics", "0017_raw_exact_layer")]
AFTER = [("metrics", "0018_cube_key_as_primary_key")]
T0 = datetime(2026, 5, 4, 1, 30, tzinfo=UTC)


def _rows(apps, name):
    """The table's rows as sorted tuples of (column, value), its id left out."""
    model = apps.get_model("metrics", name)
    fields = [f.attname for f in model._meta.concrete_fields if f.attname != "id"]
    return sorted(tuple(sorted(row.items())) for row in model.objects.values(*fields))


def test_every_row_keeps_its_values_forwards_and_backwards():
    apps = migrate(BEFORE)
    try:
        department = apps.get_model("cskpi", "Department").objects.create(slug="mig", name="Mig")
        counts = apps.get_model("metrics", "InteractionBucket")
        for hour in range(3):
            counts.objects.create(cube="hour", department_id=department.id, bucket_start=T0 + timedelta(hours=hour),
                                  interactions=2_000_000_000 + hour, resolved=hour, wait_seconds_sum=1.5 * hour)
        counts.objects.create(cube="day_agent", department_id=department.id, bucket_start=T0, agent="a-1",
                              interactions=7, handle_seconds_sum=12.25)
        apps.get_model("metrics", "InteractionSketchBucket").objects.create(
            cube="day", department_id=department.id, bucket_start=T0,
            first_response_seconds_sketch=[(3 << 32) | 2])
        apps.get_model("metrics", "AgentEventBucket").objects.create(
            cube="quarter_agent_channel_topic", department_id=department.id, bucket_start=T0, agent="a-1",
            available_seconds=600.0)
        names = ["InteractionBucket", "InteractionSketchBucket", "AgentEventBucket"]
        before = {name: _rows(apps, name) for name in names}

        apps = migrate(AFTER)
        assert {name: _rows(apps, name) for name in names} == before
        model = apps.get_model("metrics", "InteractionBucket")
        assert [f.name for f in model._meta.concrete_fields][:3] == ["department", "bucket_start",
                                                                     "first_response_seconds_sum"]
        assert model._meta.pk.name == "pk" and model._meta.get_field("interactions").get_internal_type() == (
            "IntegerField")
        # The key is unique as before: a second row of the same bucket is refused.
        with pytest.raises(IntegrityError), connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {model._meta.db_table} SELECT * FROM {model._meta.db_table} LIMIT 1")

        apps = migrate(BEFORE)
        assert {name: _rows(apps, name) for name in names} == before
        assert apps.get_model("metrics", "InteractionBucket").objects.order_by("id").first().id > 0
    finally:
        # The test database is left as every other test expects it: every migration applied.
        migrate_to_latest()
