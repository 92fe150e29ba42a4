from datetime import UTC, datetime

import pytest

from tests.metrics.records import interaction_build, records_store

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 5, 4, 1, 7, tzinfo=UTC)


def test_status_shows_waiting_buckets_then_the_last_recompute(department, other_department, make_client):
    records_store([interaction_build(department=department, created_at=T0)], then=None)
    records_store([interaction_build(department=other_department, created_at=T0)], then=None)
    viewer = make_client(grants=[(department.slug, "viewer")])
    body = viewer.get("/api/v1/status").json()
    assert body["pending_buckets"] == 1 and body["failed_buckets"] == 0
    assert body["oldest_pending_at"] is not None and body["last_recompute"] is None
    staff = make_client(staff=True)
    assert staff.get("/api/v1/status").json()["pending_buckets"] == 2

    from tests.metrics.records import recompute_all

    recompute_all()
    body = viewer.get("/api/v1/status").json()
    assert body["pending_buckets"] == 0 and body["oldest_pending_at"] is None
    assert body["last_recompute"]["department"] == department.slug
    assert body["last_recompute"]["buckets"] == 1


def test_status_needs_a_token(anon_client):
    assert anon_client.get("/api/v1/status").status_code == 401
