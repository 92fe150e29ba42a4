"""metrics 0024 stores an additive state of zero as NULL: forwards every zero becomes NULL and every other value
stays; backwards every NULL is a zero again and the columns are NOT NULL again."""

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, transaction

from tests.metrics.migrating import migrate, migrate_to_latest

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("metrics", "0023_sketch_compact")]
AFTER = [("metrics", "0024_zeros_as_null")]
T0 = datetime(2026, 5, 4, 1, 30, tzinfo=UTC)
# Per row (the day of one agent): the additive columns set (every other one is zero before 0024).
INTERACTIONS = {
    "a-1": {"interactions": 3, "resolved": 2, "handle_seconds_sum": 12.5, "missed": 0},
    "a-2": {"interactions": 1, "abandoned": 1, "wait_seconds_sum": 0.0},
}
PRESENCE = {"a-1": {"busy_seconds": 600.0}, "a-2": {"available_seconds": 30.0, "away_seconds": 0.5}}


def _rows(apps, model_name: str, values: dict[str, dict]) -> None:
    department = apps.get_model("cskpi", "Department").objects.get_or_create(slug="mig24", name="Mig")[0]
    model = apps.get_model("metrics", model_name)
    for agent, columns in values.items():
        model.objects.create(cube="day_agent", department_id=department.id, bucket_start=T0, agent=agent, **columns)


def _additive(model) -> list[str]:
    return [f.name for f in model._meta.concrete_fields if f.get_internal_type() in ("IntegerField", "FloatField")]


def test_zeros_become_null_forwards_and_zeros_again_backwards():
    apps = migrate(BEFORE)
    try:
        _rows(apps, "InteractionBucket", INTERACTIONS)
        _rows(apps, "AgentEventBucket", PRESENCE)

        apps = migrate(AFTER)
        for model_name, values in (("InteractionBucket", INTERACTIONS), ("AgentEventBucket", PRESENCE)):
            model = apps.get_model("metrics", model_name)
            columns = _additive(model)
            assert len(columns) >= 3
            for row in model.objects.values("agent", *columns):
                for column in columns:
                    expected = values[row["agent"]].get(column) or None
                    assert row[column] == expected, (model_name, row["agent"], column)

        apps = migrate(BEFORE)
        for model_name, values in (("InteractionBucket", INTERACTIONS), ("AgentEventBucket", PRESENCE)):
            model = apps.get_model("metrics", model_name)
            columns = _additive(model)
            for row in model.objects.values("agent", *columns):
                for column in columns:
                    assert row[column] == values[row["agent"]].get(column, 0), (model_name, row["agent"], column)
            with pytest.raises(IntegrityError), transaction.atomic():  # NOT NULL again
                model.objects.filter(agent="a-1").update(**{columns[0]: None})
    finally:
        # The test database is left as every other test expects it: every migration applied.
        migrate_to_latest()
