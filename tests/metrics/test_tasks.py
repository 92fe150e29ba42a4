from datetime import UTC, datetime

import pytest
from django.core.cache import cache

from ingestion.models import RecordChange
from metrics import services, tasks
from tests.metrics.records import interaction_build, records_store

pytestmark = pytest.mark.django_db


def test_recompute_task_clears_the_coalescing_flag_and_drains(department):
    records_store([interaction_build(department=department, created_at=datetime(2026, 5, 4, tzinfo=UTC))],
                  then=None)
    cache.set(services.KICK_FLAG, 1)
    assert tasks.recompute_dirty_buckets.apply().get() == 1
    assert cache.get(services.KICK_FLAG) is None
    assert not RecordChange.objects.exists()
    assert tasks.sweep_dirty_buckets.apply().get() == 0


def test_recompute_task_requeues_itself_when_its_budget_runs_out(department, monkeypatch):
    queued = []
    monkeypatch.setattr(services, "dirty_buckets_recompute",
                        lambda: services.RecomputeOutcome(buckets=3, failed=0, exhausted=True))
    monkeypatch.setattr(tasks.recompute_dirty_buckets, "delay", lambda: queued.append(1))
    assert tasks.recompute_dirty_buckets.apply().get() == 3
    assert queued == [1]
