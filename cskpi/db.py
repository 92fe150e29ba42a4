"""Database helpers shared by the apps."""

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def pg_cursor(connection) -> Iterator:
    """A psycopg cursor with server-side binding on Django's connection (same transaction).

    Django's default psycopg cursor binds client-side, turning each 1000-element array into a
    quoted literal in Python; server-side binding sends them in binary, dumped in C, and a query
    may ask for binary results (`execute(..., binary=True)`: arrays load several times faster).
    """
    import psycopg

    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


def hot_rows(connection, sql: str, params, *, binary: bool = False) -> list[tuple]:
    """The rows of a statement the service runs on (nearly) every request, with a fixed text per shape.

    On PostgreSQL it is prepared on the connection at its first run and executed by name afterwards:
    its parse and plan are kept, where planning alone (joins, many columns) cost more than running it
    (the caller's token with grants: 0.29 ms a run unprepared, 0.12 ms prepared). The plan is a
    generic one once PostgreSQL finds it no worse than the custom ones, so only statements whose best
    plan does not depend on the values belong here (lookups by key, one index range). Persistent
    connections keep the statements (CONN_MAX_AGE); with `DATABASE_PREPARED_STATEMENTS=false` (behind
    a transaction-mode pooler) nothing is prepared. Elsewhere: Django's cursor.
    """
    if connection.vendor == "postgresql":
        with pg_cursor(connection) as cursor:
            cursor.execute(sql, params, binary=binary, prepare=True)
            return cursor.fetchall()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def rows_stream(queryset, *, size: int = 5000) -> Iterator[tuple]:
    """The rows of a `values_list` queryset of plain columns, one by one. On PostgreSQL its SQL is streamed
    in binary, in chunks of `size`: a timestamp loads in C, where Django's iterator parses its text (a
    year of a department's 547k status events: 5.4 s of 11 s were that). Elsewhere: the ORM's iterator."""
    from django.core.exceptions import EmptyResultSet
    from django.db import connections

    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        yield from queryset.iterator(chunk_size=size)
        return
    try:
        sql, params = queryset.query.get_compiler(queryset.db).as_sql()
    except EmptyResultSet:  # a filter that keeps nothing (`none()`, `__in=[]`): no rows, as the ORM's iterator
        return
    with pg_cursor(connection) as cursor:
        yield from cursor.stream(sql, params, binary=True, size=size)
