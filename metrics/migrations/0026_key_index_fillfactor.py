"""Each cube table's key index is packed full (fillfactor 100, PostgreSQL's default for a B-tree is 90): the
rows of a cube are written in key order (a full rebuild ends by rewriting every table in key order,
`manage.py cluster_aggregates`, which keeps an index's fillfactor), and most of a cube's history is never
written again. A recompute deletes a span's rows and inserts rows of the same keys in one transaction, so a
leaf page it touches holds both until vacuum: at 90 % a page may take one small replacement without a split,
at 100 % it splits on the first. Either way a page the recompute keeps touching (the last days) ends with the
room it needs; what changes is the history nobody recomputes, which stays packed. The 1M benchmark's
interaction counts key index: 36 → 32 MB.

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
