from datetime import UTC, datetime

import pytest

from ingestion.changes import record_changes_mark

pytestmark = pytest.mark.django_db


def test_health_is_public_and_reports_each_dependency(anon_client, settings):
    response = anon_client.get("/api/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["broker"] == ("ok" if settings.REDIS_URL else "in-process")
    assert body["pending_buckets"] == 0


def test_health_is_503_when_the_broker_is_unreachable(anon_client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = anon_client.get("/api/v1/health")
    assert response.status_code == 503
    assert response.json()["status"] == "degraded"
    assert response.json()["broker"].startswith("error:")


def test_health_counts_the_change_log_backlog_metrics_reports(anon_client, department):
    # cskpi asks through cskpi.signals.health_collected; metrics answers with ingestion's change log.
    moment = datetime(2026, 5, 4, 1, 20, tzinfo=UTC)
    record_changes_mark(record_type="interaction", marks=[(department.id, moment), (department.id, moment)])
    record_changes_mark(record_type="survey", marks=[(department.id, moment)])
    assert anon_client.get("/api/v1/health").json()["pending_buckets"] == 2
