"""recompute_sql_warm: the recompute's SQL compiled ahead (a Celery worker's main process, before its
pool forks), without writing anything, and then reused by real recomputes."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connections

from cskpi.services import department_upsert
from ingestion.changes import record_changes_mark
from ingestion.models import Interaction, RecordChange
from metrics import services
from metrics.receivers import recompute_sql_warm_before_fork
from metrics.services import dirty_buckets_recompute, recompute_sql_warm
from tests.metrics.records import interaction_build, records_store
from tests.metrics.test_dirty_buckets_recompute import _cube_rows

T0 = datetime(2026, 5, 4, 1, 7, tzinfo=UTC)


@pytest.mark.django_db
def test_warm_compiles_every_zone_once_writes_nothing_and_the_recompute_reuses_it(monkeypatch):
    hcm = department_upsert(slug="warm-hcm", name="HCM", timezone="Asia/Ho_Chi_Minh")
    department_upsert(slug="warm-kol", name="Kolkata", timezone="Asia/Kolkata")
    records_store([interaction_build(department=hcm, created_at=T0 + timedelta(minutes=37 * i), agent=f"a-{i % 3}",
                                     customer=f"c-{i % 5}") for i in range(12)])
    before, marks = _cube_rows(), RecordChange.objects.count()
    monkeypatch.setattr(services, "_COMPILED", type(services._COMPILED)())

    compiled = recompute_sql_warm()

    zones = {key[5] for key in services._COMPILED}
    assert zones == {"Asia/Ho_Chi_Minh", "Asia/Kolkata"}
    assert compiled == len(services._COMPILED) > 0
    assert _cube_rows() == before and RecordChange.objects.count() == marks  # rolled back
    assert recompute_sql_warm() == 0  # every shape is there already

    # A real recompute of one quarter of the HCM department compiles nothing new and stays exact.
    record_changes_mark(record_type="interaction",
                        marks=[(hcm.id, r.created_at) for r in Interaction.objects.all()[:1]])
    assert dirty_buckets_recompute().buckets == 1
    assert len(services._COMPILED) == compiled
    assert _cube_rows() == before


@pytest.mark.django_db
def test_the_worker_receiver_warms_only_on_postgresql_and_never_raises(monkeypatch):
    department_upsert(slug="warm-one", name="One", timezone="Asia/Ho_Chi_Minh")
    calls = []
    monkeypatch.setattr("metrics.receivers.recompute_sql_warm", lambda: calls.append(1) or 3)
    monkeypatch.setattr("metrics.receivers.connections.close_all", lambda: calls.append("closed"))
    monkeypatch.setattr(connections["default"], "vendor", "sqlite")
    recompute_sql_warm_before_fork()
    assert calls == []
    monkeypatch.setattr(connections["default"], "vendor", "postgresql")
    recompute_sql_warm_before_fork()
    assert calls == [1, "closed"]

    def broken():
        raise RuntimeError("database down")
    monkeypatch.setattr("metrics.receivers.recompute_sql_warm", broken)
    recompute_sql_warm_before_fork()  # logged, not raised
    assert calls == [1, "closed", "closed"]
