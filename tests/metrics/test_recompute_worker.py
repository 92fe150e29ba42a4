"""A real Celery worker against Redis and PostgreSQL: ingest, wait for /status to drain, query, compare."""

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.factories import DepartmentFactory
from tests.metrics.records import cashout_build, interaction_build, records_store, survey_build
from tests.metrics.reference import reference_kpi

T0 = datetime(2026, 5, 4, 0, 0, tzinfo=UTC)


def _drain(client, timeout=30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = client.get("/api/v1/status").json()
        if status["pending_buckets"] == 0 and status["last_recompute"] is not None:
            return status
        assert time.monotonic() < deadline, f"the worker did not drain the marks: {status}"
        time.sleep(0.2)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_real_worker_recomputes_what_ingestion_marked(celery_worker_process, make_client):
    department = DepartmentFactory(slug="worker-dept", timezone="Asia/Ho_Chi_Minh")
    staff = make_client(staff=True)
    for batch in range(3):  # three commits, each kicking the task like an ingest request
        records = []
        for i in range(20):
            at = T0 + timedelta(minutes=53 * i + batch * 7)
            records.append(interaction_build(department=department, created_at=at, agent=f"a-{i % 4}",
                                             status=["resolved", "abandoned", "missed"][i % 3],
                                             contact_count=1 + i % 2))
            records.append(survey_build(department=department, submitted_at=at, kind="csat", score=1 + i % 5))
            records.append(cashout_build(department=department, requested_at=at,
                                         status=["succeeded", "failed"][i % 2]))
        records_store(records, then="kick")
    status = _drain(staff)
    assert status["failed_buckets"] == 0

    kpis = ["interactions", "fcr_rate", "abandonment_rate", "csat", "cashout_success_rate"]
    response = staff.get("/api/v1/metrics", {
        "kpi": ",".join(kpis), "department": department.slug, "start": "2026-05-04", "end": "2026-05-06",
        "group_by": "agent",
    })
    assert response.status_code == 200, response.json()
    for kpi in kpis:
        tz = ZoneInfo("Asia/Ho_Chi_Minh")
        expected = reference_kpi(
            kpi=kpi, departments={department.id: department.slug},
            start=datetime(2026, 5, 4, tzinfo=tz).astimezone(UTC), end=datetime(2026, 5, 6, tzinfo=tz).astimezone(UTC),
            zone=tz, granularity="day", group_by=("agent",),
        )
        got = {r["group"]["agent"]: r for r in response.json()["results"] if r["kpi"] == kpi}
        assert set(got) == {k[0] for k in expected}
        for (agent,), want in expected.items():
            assert got[agent]["value"] == pytest.approx(want["value"])
            assert got[agent]["sample_size"] == want["sample_size"]
    assert "recompute_dirty_buckets" in celery_worker_process.output()
