"""Quantile sketches stored as bytes: a pair of 16-bit integers (bin, count) per non-empty bin
(`metrics.measures.sketch_pack`) where a bigint[] held one 64-bit (bin << 32 | count) per bin behind a
24-byte array header. A day × agent row's four sketches (~5 bins each) go from ~220 to ~80 bytes.

PostgreSQL: each sketch table is rewritten once (`ALTER COLUMN … TYPE bytea USING`, the conversion a
temporary function), and the bytes functions (`_sketch_v2`: build from raw bins,
the merge aggregate) replace the bigint[] ones (`_sketch_v1`). SQLite (development): the JSON lists are
rewritten as bytes in place (the column keeps its declared type; SQLite stores bytes as they are).
Backwards: the reverse, exactly (a count split over pairs is added up again).
"""

import json
from array import array
from sys import byteorder

from django.db import migrations, models

from metrics.migrations._sketch_v1 import PG_SKETCH_DROP_SQL_V1, PG_SKETCH_SQL_V1
from metrics.migrations._sketch_v2 import PG_SKETCH_DROP_SQL_V2, PG_SKETCH_SQL_V2

COLUMNS = {
    "metrics_interactionsketchbucket": ["first_response_seconds_sketch", "resolution_seconds_sketch",
                                        "wait_seconds_sketch", "handle_seconds_sketch"],
    "metrics_cashoutsketchbucket": ["processing_seconds_sketch", "response_seconds_sketch"],
}
PAIR_MAX = 32767  # as metrics.measures.PAIR_MAX when this was written

# Temporary conversion functions: (name, CREATE statement).
_TO_PAIRS = "pg_temp.cskpi_sketch_v1_pairs"
_PG_TO_PAIRS = f"""CREATE FUNCTION {_TO_PAIRS}(entries bigint[]) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT string_agg(int2send(b::int2) || int2send(least(total - part::bigint * {PAIR_MAX}, {PAIR_MAX})::int2), ''
                    ORDER BY b, part)
  FROM (SELECT e >> 32 AS b, sum(e & 4294967295)::bigint AS total FROM unnest(entries) AS e GROUP BY 1) grouped
  CROSS JOIN LATERAL generate_series(0, ((total - 1) / {PAIR_MAX})::int) part
  WHERE total > 0
$$"""
_TO_V1 = "pg_temp.cskpi_sketch_pairs_v1"
_PG_TO_V1 = f"""CREATE FUNCTION {_TO_V1}(pairs bytea) RETURNS bigint[]
LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT array_agg((b::bigint << 32) | total ORDER BY b)
  FROM (SELECT get_byte(pairs, i) * 256 + get_byte(pairs, i + 1) AS b,
               sum(get_byte(pairs, i + 2) * 256 + get_byte(pairs, i + 3)) AS total
        FROM generate_series(0, length(pairs) - 4, 4) AS i GROUP BY 1) grouped
$$"""


def _pairs(entries: list[int]) -> bytes:
    counts: dict[int, int] = {}
    for e in entries:
        counts[e >> 32] = counts.get(e >> 32, 0) + (e & 0xFFFFFFFF)
    pairs = array("H")
    for b, c in sorted(counts.items()):
        while c > 0:
            pairs.extend((b, min(c, PAIR_MAX)))
            c -= min(c, PAIR_MAX)
    if byteorder == "little":
        pairs.byteswap()
    return pairs.tobytes()


def _entries(pairs: bytes) -> list[int]:
    values = array("H")
    values.frombytes(pairs)
    if byteorder == "little":
        values.byteswap()
    counts: dict[int, int] = {}
    for b, c in zip(values[::2], values[1::2], strict=True):
        counts[b] = counts.get(b, 0) + c
    return [(b << 32) | c for b, c in sorted(counts.items())]


def _sqlite_rewrite(schema_editor, convert) -> None:
    raw = schema_editor.connection.connection
    raw.create_function("cskpi_sketch_convert", 1, lambda value: None if value is None else convert(value))
    for table, columns in COLUMNS.items():
        sets = ", ".join(f"{c} = cskpi_sketch_convert({c})" for c in columns)
        schema_editor.execute(f"UPDATE {table} SET {sets}")


def _pg_rewrite(schema_editor, *, create, converter: tuple[str, str], column_type: str, drop) -> None:
    """Make the sketch functions of the new form (`create`) and the temporary `converter` (name, CREATE
    statement), rewrite every sketch column to `column_type` through it, then drop it and the old
    functions (`drop`)."""
    schema_editor.execute("SET LOCAL statement_timeout = 0")  # a rewrite of every sketch row
    name, converter_sql = converter
    for statement in (*create, converter_sql):
        schema_editor.execute(statement, params=None)
    for table, columns in COLUMNS.items():
        schema_editor.execute(f"ALTER TABLE {table} " + ", ".join(
            f"ALTER COLUMN {c} TYPE {column_type} USING {name}({c})" for c in columns))
    schema_editor.execute(f"DROP FUNCTION {name}")
    for statement in drop:
        schema_editor.execute(statement, params=None)


def sketches_to_pairs(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        _sqlite_rewrite(schema_editor, lambda text: _pairs(json.loads(text)) or None)
        return
    _pg_rewrite(schema_editor, create=PG_SKETCH_SQL_V2, converter=(_TO_PAIRS, _PG_TO_PAIRS), column_type="bytea",
                drop=PG_SKETCH_DROP_SQL_V1)


def sketches_to_v1(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        _sqlite_rewrite(schema_editor, lambda value: json.dumps(_entries(bytes(value))))
        return
    _pg_rewrite(schema_editor, create=PG_SKETCH_SQL_V1, converter=(_TO_V1, _PG_TO_V1), column_type="bigint[]",
                drop=PG_SKETCH_DROP_SQL_V2)


class Migration(migrations.Migration):

    dependencies = [
        ('metrics', '0018_cube_key_as_primary_key'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(sketches_to_pairs, sketches_to_v1)],
            state_operations=[
                migrations.AlterField(model_name=model, name=column, field=models.BinaryField(blank=True, null=True))
                for model, columns in (("interactionsketchbucket", COLUMNS["metrics_interactionsketchbucket"]),
                                       ("cashoutsketchbucket", COLUMNS["metrics_cashoutsketchbucket"]))
                for column in columns
            ],
        ),
    ]
