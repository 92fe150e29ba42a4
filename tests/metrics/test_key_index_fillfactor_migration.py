"""metrics 0026 packs every cube table's key index full (fillfactor 100) on PostgreSQL, and backwards gives
them PostgreSQL's default again."""

import pytest
from django.db import connection

from metrics.models import CUBE_TABLES
from tests.metrics.migrating import migrate, migrate_to_latest

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

KEY_INDEXES = sorted(t.key_index for tables in CUBE_TABLES.values() for t in tables)


def _fillfactors() -> dict[str, str | None]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, (SELECT option_value FROM pg_options_to_table(reloptions) "
                       "WHERE option_name = 'fillfactor') FROM pg_class WHERE relname = ANY(%s)", [KEY_INDEXES])
        return dict(cursor.fetchall())


def test_every_cube_table_key_index_is_packed_full_and_backwards_is_the_default():
    assert _fillfactors() == dict.fromkeys(KEY_INDEXES, "100")  # a cube table added later must be, too
    try:
        migrate([("metrics", "0025_sets_small")])
        assert _fillfactors() == dict.fromkeys(KEY_INDEXES)
    finally:
        migrate_to_latest()
    assert _fillfactors() == dict.fromkeys(KEY_INDEXES, "100")
