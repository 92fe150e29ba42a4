"""The change log moves to ingestion: copy every mark into `ingestion.RecordChange`, then drop
`DirtyBucket`.

The copy and the drop run in one transaction on PostgreSQL, after an EXCLUSIVE lock on the old
table: an ingest still writing marks there (old code during a deploy) waits, then fails and rolls
back its records with its marks, so no pending mark is lost. Failed (parked) marks keep their
error and attempts. Reversible: the marks go back the same way.
"""

from django.db import migrations

COLUMNS = ("record_type", "department_id", "quarter_start", "version", "first_marked_at", "marked_at",
           "claimed_until", "attempts", "failed_at", "last_error")


def _copy(schema_editor, source, target) -> None:
    quote = schema_editor.quote_name
    source_table, target_table = quote(source._meta.db_table), quote(target._meta.db_table)
    columns = ", ".join(quote(c) for c in COLUMNS)
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"LOCK TABLE {source_table} IN EXCLUSIVE MODE")
    schema_editor.execute(f"INSERT INTO {target_table} ({columns}) SELECT {columns} FROM {source_table}")


def marks_to_ingestion(apps, schema_editor):
    _copy(schema_editor, apps.get_model("metrics", "DirtyBucket"), apps.get_model("ingestion", "RecordChange"))


def marks_to_metrics(apps, schema_editor):
    _copy(schema_editor, apps.get_model("ingestion", "RecordChange"), apps.get_model("metrics", "DirtyBucket"))
    apps.get_model("ingestion", "RecordChange").objects.all().delete()


class Migration(migrations.Migration):

    dependencies = [
        ("ingestion", "0003_record_change"),
        ("metrics", "0003_measure_kinds"),
    ]

    operations = [
        migrations.RunPython(marks_to_ingestion, marks_to_metrics),
        migrations.DeleteModel(name="DirtyBucket"),
    ]
