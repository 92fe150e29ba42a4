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
