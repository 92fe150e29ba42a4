"""cskpi.db: statements run on every request are prepared once per PostgreSQL connection."""

import pytest
from django.db import connection

from cskpi.db import hot_rows, pg_cursor, rows_stream
from cskpi.models import Department

pytestmark = pytest.mark.django_db

# Prepared statements outlive a test's rolled-back transaction on the shared connection: each test
# names its own statement (the `tag` column).
_SQL = "SELECT slug, timezone, '{tag}' AS tag FROM cskpi_department WHERE id IN (%s, %s) ORDER BY slug"
_POSTGRES_ONLY = pytest.mark.skipif(connection.vendor != "postgresql",
                                    reason="prepared statements are PostgreSQL's (SQLite runs Django's cursor)")


def _prepared(fragment: str) -> list[str]:
    with pg_cursor(connection) as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE statement LIKE %s",
                       [f"%{fragment}%"])
        return [statement for (statement,) in cursor.fetchall()]


def test_hot_rows_answers_what_the_statement_selects(department, other_department):
    ids = [department.id, other_department.id]
    expected = sorted((d.slug, d.timezone) for d in (department, other_department))
    sql = _SQL.format(tag="answers")
    assert [tuple(row[:2]) for row in hot_rows(connection, sql, ids)] == expected
    assert [tuple(row[:2]) for row in hot_rows(connection, sql, ids, binary=True)] == expected  # binary: same


@_POSTGRES_ONLY
def test_hot_rows_prepares_a_statement_once_per_connection(department, other_department):
    ids = [department.id, other_department.id]
    sql = _SQL.format(tag="once")
    assert _prepared("'once' AS tag") == []
    for _ in range(3):
        hot_rows(connection, sql, ids)
    [statement] = _prepared("'once' AS tag")
    assert "$1" in statement  # server-side parameters: one statement whatever the values
    hot_rows(connection, sql, [department.id, department.id])
    assert len(_prepared("'once' AS tag")) == 1


@_POSTGRES_ONLY
def test_nothing_is_prepared_without_a_prepare_threshold(department, other_department):
    """DATABASE_PREPARED_STATEMENTS=false sets psycopg's prepare_threshold to None (behind a pooler)."""
    connection.ensure_connection()
    raw = connection.connection
    kept = raw.prepare_threshold
    raw.prepare_threshold = None
    try:
        rows = hot_rows(connection, _SQL.format(tag="never"), [department.id, other_department.id])
    finally:
        raw.prepare_threshold = kept
    assert len(rows) == 2
    assert _prepared("'never' AS tag") == []


@_POSTGRES_ONLY
def test_a_request_prepares_the_callers_token_query(staff_client, department):
    staff_client.get("/api/v1/departments")
    staff_client.get("/api/v1/departments")
    [statement] = _prepared("cskpi_apitoken")
    assert "digest" in statement


def test_prepared_statements_follow_the_setting():
    from django.conf import settings

    options = settings.DATABASES["default"].get("OPTIONS", {})
    if connection.vendor != "postgresql":
        assert "prepare_threshold" not in options
    elif settings.DATABASE_PREPARED_STATEMENTS:
        assert options["prepare_threshold"] >= 2**31  # only the statements hot_rows asks for
    else:
        assert options["prepare_threshold"] is None


def test_rows_stream_gives_the_rows_of_the_queryset(department, other_department):
    rows = Department.objects.order_by("slug").values_list("slug", "timezone")
    assert list(rows_stream(rows, size=1)) == [tuple(row) for row in rows]


def test_rows_stream_of_a_filter_that_keeps_nothing_gives_no_rows(department):
    """`none()` or an empty `__in` compiles to no SQL at all (EmptyResultSet): no rows, as the ORM's
    iterator gives, where the streamed read raised."""
    assert list(rows_stream(Department.objects.none().values_list("slug"))) == []
    assert list(rows_stream(Department.objects.filter(slug__in=[]).values_list("slug"))) == []
