"""Quantile sketches in one of two layouts (`metrics.measures.sketch_pack`): where every count is at most 64,
a compact one (a tag byte, then a 16-bit word (bin << 6 | count - 1) per bin, 2 bytes), else the wide one of
0019 (a pair of 16-bit integers (bin, count) per bin, 4 bytes). Most bins of a day × agent or day × channel
sketch count a few values: the interaction sketches at 1M interactions go from 71 to 36 MB of sketch bytes
(the table 113 → 77 MB), rewritten in 39 s (68 s at 5M).

PostgreSQL: the functions of `metrics.measures.PG_SKETCH_SQL` (build from raw bins, and a merge over the
group's gathered states, `cskpi_sketch_merge(bytea[])`; made from the current code, as 0019 did, and to be
frozen here the day they change) replace 0019's (`_sketch_v2`: the aggregate
`cskpi_sketch_merge(bytea)`), and each sketch table is rewritten once through them (`ALTER COLUMN … TYPE
bytea USING`: a rewrite, so no dead rows are left behind). SQLite (development): the states are rewritten in
place. Backwards: every compact state is written in the wide layout again, and 0019's functions are made
again. The counts per bin are the same either way.
"""

from array import array
from sys import byteorder

from django.db import migrations

import metrics.measures
from metrics.migrations._sketch_v2 import PG_SKETCH_DROP_SQL_V2, PG_SKETCH_SQL_V2

COLUMNS = {
    "metrics_interactionsketchbucket": ["first_response_seconds_sketch", "resolution_seconds_sketch",
                                        "wait_seconds_sketch", "handle_seconds_sketch"],
    "metrics_cashoutsketchbucket": ["processing_seconds_sketch", "response_seconds_sketch"],
}
# As metrics.measures when this was written (the layouts are frozen here: a migration must not change with
# the code after it).
PAIR_MAX = 32767
COMPACT_TAG = 0xFE
COMPACT_COUNT_MAX = 64

_TO_WIDE = "pg_temp.cskpi_sketch_wide"
_PG_TO_WIDE = f"""CREATE FUNCTION {_TO_WIDE}(s bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT CASE WHEN substring(s FROM 1 FOR 1) <> '\\x{COMPACT_TAG:02x}'::bytea THEN s ELSE (
    SELECT string_agg(int2send((get_byte(s, i) * 4 + get_byte(s, i + 1) / 64)::int2)
                      || int2send((get_byte(s, i + 1) % 64 + 1)::int2), '' ORDER BY i)
    FROM generate_series(1, length(s) - 2, 2) AS i) END
$$"""


def _counts(state: bytes) -> dict[int, int]:
    """Counts per bin of a state in either layout."""
    compact = state[:1] == bytes((COMPACT_TAG,))
    values = array("H")
    values.frombytes(state[1:] if compact else state)
    if byteorder == "little":
        values.byteswap()
    counts: dict[int, int] = {}
    if compact:
        for word in values:
            counts[word >> 6] = (word & 63) + 1
        return counts
    for b, c in zip(values[::2], values[1::2], strict=True):
        counts[b] = counts.get(b, 0) + c
    return counts


def _wide(counts: dict[int, int]) -> bytes:
    values = array("H")
    for b, c in sorted(counts.items()):
        while c > 0:
            values.extend((b, min(c, PAIR_MAX)))
            c -= min(c, PAIR_MAX)
    if byteorder == "little":
        values.byteswap()
    return values.tobytes()


def _shorter(counts: dict[int, int]) -> bytes:
    """The stored form of `counts` in the layout metrics.measures.sketch_pack chooses: compact where every
    count is at most COMPACT_COUNT_MAX."""
    items = [(b, c) for b, c in sorted(counts.items()) if c]
    if not items or any(c > COMPACT_COUNT_MAX for _, c in items):
        return _wide(counts)
    words = array("H", (b << 6 | (c - 1) for b, c in items))
    if byteorder == "little":
        words.byteswap()
    return bytes((COMPACT_TAG,)) + words.tobytes()


def _sqlite_rewrite(schema_editor, convert) -> None:
    raw = schema_editor.connection.connection
    raw.create_function("cskpi_sketch_convert", 1,
                        lambda value: None if value is None else convert(_counts(bytes(value))))
    for table, columns in COLUMNS.items():
        sets = ", ".join(f"{c} = cskpi_sketch_convert({c})" for c in columns)
        schema_editor.execute(f"UPDATE {table} SET {sets}")


def _pg_rewrite(schema_editor, *, create, drop, using: str) -> None:
    """Make the functions `create`, rewrite every sketch column through `using` (a format string of the
    column), then drop the functions `drop`."""
    schema_editor.execute("SET LOCAL statement_timeout = 0")  # a rewrite of every sketch row
    for statement in create:
        schema_editor.execute(statement, params=None)
    for table, columns in COLUMNS.items():
        schema_editor.execute(f"ALTER TABLE {table} " + ", ".join(
            f"ALTER COLUMN {c} TYPE bytea USING {using.format(c)}" for c in columns), params=None)
    for statement in drop:
        schema_editor.execute(statement, params=None)


def sketches_compact(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        _sqlite_rewrite(schema_editor, _shorter)
        return
    _pg_rewrite(schema_editor, create=(*PG_SKETCH_DROP_SQL_V2, *metrics.measures.PG_SKETCH_SQL), drop=(),
                using="CASE WHEN length({0}) > 0 THEN cskpi_sketch_fold(ARRAY[{0}]) ELSE {0} END")


def sketches_wide(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        _sqlite_rewrite(schema_editor, _wide)
        return
    _pg_rewrite(schema_editor, create=(_PG_TO_WIDE,), using=f"{_TO_WIDE}({{0}})",
                drop=(f"DROP FUNCTION {_TO_WIDE}", *metrics.measures.PG_SKETCH_DROP_SQL, *PG_SKETCH_SQL_V2))


class Migration(migrations.Migration):

    dependencies = [
        ('metrics', '0022_agent_event_raw_exact_layer'),
    ]

    operations = [
        migrations.RunPython(sketches_compact, sketches_wide),
    ]
