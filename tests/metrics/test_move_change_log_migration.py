"""metrics 0004 moves the change log to ingestion: every pending and parked mark survives, both ways."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from tests.metrics.migrating import migrate, migrate_to_latest

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("metrics", "0003_measure_kinds"), ("ingestion", "0002_record_tables_fillfactor")]
AFTER = [("metrics", "0004_move_change_log"), ("ingestion", "0003_record_change")]
T0 = datetime(2026, 5, 4, 1, 15, tzinfo=UTC)
COLUMNS = ("record_type", "department_id", "quarter_start", "version", "first_marked_at", "marked_at",
           "claimed_until", "attempts", "failed_at", "last_error")


def _rows(model) -> set[tuple]:
    return set(model.objects.order_by().values_list(*COLUMNS))


def test_pending_and_parked_marks_move_to_ingestion_and_back():
    apps = migrate(BEFORE)
    try:
        department = apps.get_model("cskpi", "Department").objects.create(slug="mig", name="Mig")
        DirtyBucket = apps.get_model("metrics", "DirtyBucket")
        DirtyBucket.objects.bulk_create([
            DirtyBucket(record_type="interaction", department_id=department.id, quarter_start=T0, version=11,
                        first_marked_at=T0, marked_at=T0),
            DirtyBucket(record_type="cashout", department_id=department.id, quarter_start=T0 + timedelta(minutes=15),
                        version=2**61, first_marked_at=T0, marked_at=T0 + timedelta(seconds=5),
                        claimed_until=T0 + timedelta(minutes=1), attempts=2),
            DirtyBucket(record_type="survey", department_id=department.id, quarter_start=T0, version=7,
                        first_marked_at=T0, marked_at=T0, attempts=5, failed_at=T0, last_error="boom"),
        ])
        before = _rows(DirtyBucket)
        assert len(before) == 3

        apps = migrate(AFTER)
        with pytest.raises(LookupError):
            apps.get_model("metrics", "DirtyBucket")
        assert _rows(apps.get_model("ingestion", "RecordChange")) == before
        assert "metrics_dirtybucket" not in connection.introspection.table_names()

        apps = migrate(BEFORE)
        assert _rows(apps.get_model("metrics", "DirtyBucket")) == before
    finally:
        # The test database is left as every other test expects it (flushed after): every migration
        # applied, later ones (metrics 0005_alerts) included.
        migrate_to_latest()
