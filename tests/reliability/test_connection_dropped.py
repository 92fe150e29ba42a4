"""The database connection of a request is killed (`pg_terminate_backend`) in the middle of its
transaction: the request fails cleanly (503 + Retry-After), nothing of it is written, and the
next request on the same server process succeeds.

The request is stopped at a known point: after its records are inserted, its dirty-bucket mark
waits on a row another connection holds; that is when its backend is terminated."""

import threading
from datetime import datetime

import psycopg
import pytest
from django.db import connection

from ingestion.changes import record_changes_mark
from ingestion.models import Interaction, RecordChange
from tests.ingestion.factories import interaction_payload
from tests.processes import http, service_env, start_web, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def pg_connect():
    db = connection.settings_dict
    return psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"],
                           dbname=db["NAME"], autocommit=True)


@pytest.fixture
def web(tmp_path):
    process = start_web(tmp_path, service_env(redis_url=""), workers=1)  # one process: same connection
    yield process
    process.stop()


def test_a_request_whose_connection_is_killed_fails_cleanly_and_the_next_succeeds(department, web):
    from cskpi.services import token_issue, user_grants_upsert

    token = token_issue(user=user_grants_upsert(username="platform", grants=[(department.slug, "ingest")]))
    created_at = "2026-03-02T09:00:00+07:00"
    batch = [interaction_payload(created_at=created_at, first_response_at=..., resolved_at=...,
                                 status="open") for _ in range(50)]
    record_changes_mark(record_type="interaction",
                       marks=[(department.id, datetime.fromisoformat(created_at))])
    holder, killer = pg_connect(), pg_connect()
    holder.autocommit = False
    holder.execute(f"SELECT id FROM {RecordChange._meta.db_table} FOR UPDATE")

    outcome = {}
    request = threading.Thread(target=lambda: outcome.update(
        response=http("POST", f"{web.url}/api/v1/interactions", token=token, body=batch)))
    request.start()
    waiting = wait_until(lambda: killer.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        " AND query ILIKE %s", (f"%{RecordChange._meta.db_table}%",)).fetchall(),
        timeout=20, what="the request waiting on the held row")
    assert killer.execute("SELECT pg_terminate_backend(%s)", (waiting[0][0],)).fetchone()[0]
    holder.rollback()
    request.join(timeout=30)

    status, headers, body = outcome["response"]
    assert status == 503, body
    assert body["code"] == "database_unavailable" and int(headers["Retry-After"]) > 0
    keys = [item["external_id"] for item in batch]
    assert Interaction.objects.filter(external_id__in=keys).count() == 0  # nothing half-written

    status, _, body = http("POST", f"{web.url}/api/v1/interactions", token=token, body=batch)
    assert status == 200, body
    assert body["created"] == len(batch)
    assert Interaction.objects.filter(external_id__in=keys).count() == len(batch)
    holder.close()
    killer.close()
