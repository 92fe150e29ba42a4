"""Each cube table's key index is packed full (fillfactor 100, PostgreSQL's default for a B-tree is 90): the
rows of a cube are written in key order (a full rebuild ends by rewriting every table in key order,
`manage.py cluster_aggregates`, which keeps an index's fillfactor) and a recompute replaces a span's rows
with rows of the same keys, so the 10 % a leaf page kept free only ever served a key that was new to an old
page. Where recomputes keep replacing rows (the last days), pages split as they would have; the years
nobody recomputes stay packed. The 1M benchmark's interaction counts key index: 36 → 32 MB.

PostgreSQL only (an index option; SQLite has none), rebuilt once here (`REINDEX INDEX`: writes to the table
wait, about a second a table at 1M interactions). Backwards: the default again, rebuilt.
"""

from django.db import migrations

# The key index of every cube table when this was written (`metrics.models.CubeTable.key_index`).
KEY_INDEXES = [
    "metrics_interactionbucket_pkey", "metrics_interactionsketchbucket_pkey", "metrics_interactionsetbucket_pkey",
    "metrics_interactionfirstcontactbucket_pkey", "metrics_surveybucket_pkey", "metrics_cashoutbucket_pkey",
    "metrics_cashoutsketchbucket_pkey", "metrics_agenteventbucket_pkey", "metrics_systemcheckbucket_pkey",
    "customerstockbucket_key",
]


def _set(schema_editor, option: str) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for index in KEY_INDEXES:
        schema_editor.execute(f"ALTER INDEX {schema_editor.quote_name(index)} {option}")
        schema_editor.execute(f"REINDEX INDEX {schema_editor.quote_name(index)}")


def _forwards(apps, schema_editor):
    _set(schema_editor, "SET (fillfactor = 100)")


def _backwards(apps, schema_editor):
    _set(schema_editor, "RESET (fillfactor)")


class Migration(migrations.Migration):

    dependencies = [
        ("metrics", "0025_sets_small"),
    ]

    operations = [migrations.RunPython(_forwards, _backwards, elidable=False)]
