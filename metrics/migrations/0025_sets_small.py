"""Distinct sets (customers, first contacts) in one of two layouts (`metrics.measures.set_pack`): roaring's
portable serialization, or, where it is shorter, a tag byte and each id as a little-endian uint32, ascending.
A fine bucket's few customers are spread over the id space, so roaring pays a container (8 bytes) for
nearly every id: the 1M benchmark's bitmaps go from 38 to 30 MB.

PostgreSQL: each set column is rewritten once (`ALTER COLUMN … TYPE bytea USING`: a rewrite, so no dead rows
are left behind) through a function that reads a roaring serialization without run containers (what the code
writes) and gives the small layout where it is shorter, the state as it was otherwise. SQLite (development):
rewritten in place from Python. Backwards: every small set is serialized by roaring again (from Python). The
ids of every set are the same either way.
"""

from array import array
from sys import byteorder

from django.db import migrations
from pyroaring import BitMap

COLUMNS = {
    "metrics_interactionsetbucket": ["customers"],
    "metrics_interactionfirstcontactbucket": ["first_contact_customers"],
}
# As metrics.measures when this was written (the layout is frozen here: a migration must not change with the
# code after it).
SMALL_TAG = 0x01
SMALL_MAX = 64
_NO_RUN_COOKIE = "3a300000"  # roaring's portable cookie 12346, little-endian: no run container follows

_TO_SMALL = "pg_temp.cskpi_set_small"
# A roaring serialization without run containers: the cookie, the number of containers k (uint32), then per
# container its key (the ids' high 16 bits) and cardinality - 1 (uint16 each), then per container the offset
# of its values (uint32), then the values (the low 16 bits, uint16, ascending) of each array container. All
# little-endian, so an id's uint32 is its low half as stored followed by its key as stored.
_PG_TO_SMALL = f"""CREATE FUNCTION {_TO_SMALL}(s bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT AS $$
  WITH k AS (
    SELECT get_byte(s, 4) + (get_byte(s, 5) << 8) + (get_byte(s, 6) << 16) + (get_byte(s, 7) << 24) AS n
    WHERE length(s) >= 8 AND substring(s FROM 1 FOR 4) = '\\x{_NO_RUN_COOKIE}'::bytea
  ), containers AS (
    SELECT i, 1 + get_byte(s, 10 + 4 * i) + (get_byte(s, 11 + 4 * i) << 8) AS card,
           get_byte(s, 8 + 4 * n + 4 * i) + (get_byte(s, 9 + 4 * n + 4 * i) << 8)
             + (get_byte(s, 10 + 4 * n + 4 * i) << 16) + (get_byte(s, 11 + 4 * n + 4 * i) << 24) AS at
    FROM k, generate_series(0, n - 1) AS i
  ), total AS (SELECT coalesce(sum(card), 0) AS ids FROM containers)
  SELECT CASE WHEN (SELECT ids FROM total) BETWEEN 1 AND {SMALL_MAX}
                   AND 1 + 4 * (SELECT ids FROM total) < length(s)
              THEN '\\x{SMALL_TAG:02x}'::bytea || (
                SELECT string_agg(substring(s FROM at + 2 * j + 1 FOR 2) || substring(s FROM 9 + 4 * i FOR 2),
                                  '' ORDER BY i, j)
                FROM containers, generate_series(0, card - 1) AS j)
              ELSE s END
$$"""


def _small(state: bytes) -> bytes:
    ids = BitMap.deserialize(state)
    roaring_length = len(state)
    if not ids or len(ids) > SMALL_MAX or 1 + 4 * len(ids) >= roaring_length:
        return state
    packed = array("I", ids)
    if byteorder == "big":
        packed.byteswap()
    return bytes((SMALL_TAG,)) + packed.tobytes()


def _roaring(state: bytes) -> bytes:
    if state[:1] != bytes((SMALL_TAG,)):
        return state
    ids = array("I")
    ids.frombytes(state[1:])
    if byteorder == "big":
        ids.byteswap()
    return BitMap(ids).serialize()


def _python_rewrite(schema_editor, convert) -> None:
    """Each state `convert` changes, written again in place (by the row's physical id: the table has no
    other index than its key's)."""
    qn = schema_editor.quote_name
    row_id, cast = ("ctid", "::tid") if schema_editor.connection.vendor == "postgresql" else ("rowid", "")
    with schema_editor.connection.cursor() as cursor:
        for table, columns in COLUMNS.items():
            for column in columns:
                cursor.execute(f"SELECT {row_id}, {qn(column)} FROM {qn(table)} WHERE {qn(column)} IS NOT NULL")
                changed = [(new, row) for row, state in cursor.fetchall()
                           if (new := convert(bytes(state))) != bytes(state)]
                cursor.executemany(f"UPDATE {qn(table)} SET {qn(column)} = %s WHERE {row_id} = %s{cast}", changed)


def _forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        _python_rewrite(schema_editor, _small)
        return
    qn = schema_editor.quote_name
    schema_editor.execute(_PG_TO_SMALL)
    for table, columns in COLUMNS.items():
        changes = ", ".join(f"ALTER COLUMN {qn(c)} TYPE bytea USING {_TO_SMALL}({qn(c)})" for c in columns)
        schema_editor.execute(f"ALTER TABLE {qn(table)} {changes}")
    schema_editor.execute(f"DROP FUNCTION {_TO_SMALL}(bytea)")


def _backwards(apps, schema_editor):
    _python_rewrite(schema_editor, _roaring)


class Migration(migrations.Migration):

    dependencies = [
        ("metrics", "0024_zeros_as_null"),
    ]

    operations = [migrations.RunPython(_forwards, _backwards, elidable=False)]
