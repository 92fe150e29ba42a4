"""A PostgreSQL statement timeout ends a request cleanly: a read gets 400 `query_timeout` (narrow
it), a write gets 503 `statement_timeout` with Retry-After (retry it) and writes nothing.

The request is made to wait deterministically: another connection holds an ACCESS EXCLUSIVE lock
on the table the request needs, and the request's connection runs with a 300 ms timeout."""

import psycopg
import pytest
from django.db import connection

from ingestion.models import Interaction
from tests.ingestion.factories import interaction_payload

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def table_locked():
    db = connection.settings_dict
    other = psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"],
                            dbname=db["NAME"], autocommit=False)
    other.execute(f"LOCK TABLE {Interaction._meta.db_table} IN ACCESS EXCLUSIVE MODE")
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 300")

    def release():
        if not other.closed:
            other.rollback()
            other.close()
        with connection.cursor() as cursor:
            cursor.execute("RESET statement_timeout")

    yield release
    release()


def test_a_read_past_the_statement_timeout_is_400_query_timeout(staff_client, department, table_locked):
    response = staff_client.get("/api/v1/interactions")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "query_timeout" and "statement timeout" in body["detail"]


def test_a_write_past_the_statement_timeout_is_503_and_writes_nothing(staff_client, department, table_locked):
    response = staff_client.post("/api/v1/interactions", [interaction_payload(), interaction_payload()],
                                 format="json")
    assert response.status_code == 503
    assert response.json()["code"] == "statement_timeout"
    assert int(response["Retry-After"]) > 0
    table_locked()
    assert Interaction.objects.count() == 0


def test_after_the_lock_is_gone_the_same_write_succeeds(staff_client, department):
    items = [interaction_payload(), interaction_payload()]
    assert staff_client.post("/api/v1/interactions", items, format="json").json()["created"] == 2
    assert Interaction.objects.count() == 2
