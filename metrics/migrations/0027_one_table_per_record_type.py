"""A record type's stores share one cube table: the sketches, distinct sets and first contacts of interactions,
and the sketches of cashouts, move into their counts table (`metrics.models.CUBE_TABLES`).

Each store had its own table, so a bucket's key (department, cube, bucket start, six dimensions), its tuple
header and its key index entry were paid once per store: at 1M interactions the four interaction tables held
307 MB, one table holds the same states in 204 MB. Every key of the other stores is a key of the counts (they
are built from the same records; the counts keep every cube the others keep), so the rows join one to one; a
row of another store whose key the counts lack (none is expected) is kept, its counts NULL (zero).

PostgreSQL: the joined rows go to a temporary table, the counts table is emptied, given the new columns and
filled again in key order (no dead row is left and the key index is written packed); the other tables are
dropped. SQLite: the columns are added and set from the other tables. Backwards: each store's table is
created again (as the state before this migration declares it) and filled with the rows of the cubes it kept
(the first contacts: the rows holding one), and the columns are dropped.
"""

from django.db import migrations, models

KEY = ["department_id", "cube", "bucket_start", "agent", "channel", "topic", "check_name", "customer_region",
       "segment"]
_LOCAL = ["month", "month_channel", "month_region_segment", "month_agent", "month_agent_channel", "day",
          "day_channel", "day_topic", "day_check", "day_region_segment", "day_agent"]
# (the table into which the others move, [(moved model, its columns, the cubes it kept, only rows with a state)])
MOVES = [
    ("interactionbucket", [
        ("interactionsketchbucket", ["first_response_seconds_sketch", "handle_seconds_sketch",
                                     "resolution_seconds_sketch", "wait_seconds_sketch"], _LOCAL, False),
        ("interactionsetbucket", ["customers"],
         ["month", "month_channel", "month_agent", "month_region_segment", "day", "day_channel", "day_agent",
          "day_region_segment", "hour"], False),
        ("interactionfirstcontactbucket", ["first_contact_customers"], ["month", "day", "hour"], True),
    ]),
    ("cashoutbucket", [
        ("cashoutsketchbucket", ["processing_seconds_sketch", "response_seconds_sketch"], _LOCAL, False),
    ]),
]


def _table(apps, model: str) -> str:
    return apps.get_model("metrics", model)._meta.db_table


def _forwards(apps, schema_editor):
    q = schema_editor.quote_name
    postgres = schema_editor.connection.vendor == "postgresql"
    for owner_model, moved in MOVES:
        owner = _table(apps, owner_model)
        columns = [c for _, cs, _, _ in moved for c in cs]
        tables = [_table(apps, m) for m, _, _, _ in moved]
        key = ", ".join(q(k) for k in KEY)
        if postgres:
            kept = [f.column for f in apps.get_model("metrics", owner_model)._meta.concrete_fields
                    if f.column not in KEY]
            joins = " ".join(f"FULL JOIN {q(t)} USING ({key})" for t in tables)
            schema_editor.execute(
                f"CREATE TEMPORARY TABLE cskpi_merged ON COMMIT DROP AS SELECT {key}, "
                f"{', '.join(f'o.{q(c)}' for c in kept)}, {', '.join(q(c) for c in columns)} "
                f"FROM {q(owner)} o {joins}")
            schema_editor.execute(f"TRUNCATE {q(owner)}")
            for column in columns:
                schema_editor.execute(f"ALTER TABLE {q(owner)} ADD COLUMN {q(column)} bytea NULL")
            every = ", ".join(q(c) for c in [*KEY, *kept, *columns])
            schema_editor.execute(f"INSERT INTO {q(owner)} ({every}) SELECT {every} FROM cskpi_merged ORDER BY {key}")
            schema_editor.execute("DROP TABLE cskpi_merged")
        else:
            for column in columns:
                schema_editor.execute(f"ALTER TABLE {q(owner)} ADD COLUMN {q(column)} BLOB NULL")
            for table, (_, cs, _, _) in zip(tables, moved, strict=True):
                same = " AND ".join(f"t.{q(k)} = {q(owner)}.{q(k)}" for k in KEY)
                sets = ", ".join(f"{q(c)} = (SELECT t.{q(c)} FROM {q(table)} t WHERE {same})" for c in cs)
                schema_editor.execute(f"UPDATE {q(owner)} SET {sets}")
                lacking = " AND ".join(f"o.{q(k)} = t.{q(k)}" for k in KEY)
                listed = ", ".join(q(c) for c in [*KEY, *cs])
                schema_editor.execute(
                    f"INSERT INTO {q(owner)} ({listed}) SELECT {', '.join(f't.{q(c)}' for c in [*KEY, *cs])} "
                    f"FROM {q(table)} t WHERE NOT EXISTS (SELECT 1 FROM {q(owner)} o WHERE {lacking})")
        for table in tables:
            schema_editor.execute(f"DROP TABLE {q(table)}")


def _backwards(apps, schema_editor):
    q = schema_editor.quote_name
    postgres = schema_editor.connection.vendor == "postgresql"
    for owner_model, moved in MOVES:
        owner = _table(apps, owner_model)
        for model_name, columns, cubes, holding in moved:
            model = apps.get_model("metrics", model_name)
            schema_editor.create_model(model)
            listed = ", ".join(q(c) for c in [*KEY, *columns])
            held = f" AND ({' OR '.join(f'{q(c)} IS NOT NULL' for c in columns)})" if holding else ""
            schema_editor.execute(
                f"INSERT INTO {q(model._meta.db_table)} ({listed}) SELECT {listed} FROM {q(owner)} "
                f"WHERE cube IN ({', '.join(['%s'] * len(cubes))}){held}", cubes)
            if postgres:  # as migration 0026 left it
                index = q(f"{model._meta.db_table}_pkey")
                schema_editor.execute(f"ALTER INDEX {index} SET (fillfactor = 100)")
                schema_editor.execute(f"REINDEX INDEX {index}")
            for column in columns:
                schema_editor.execute(f"ALTER TABLE {q(owner)} DROP COLUMN {q(column)}")


def _state_field():
    return models.BinaryField(blank=True, null=True)


class Migration(migrations.Migration):

    dependencies = [
        ("metrics", "0026_key_index_fillfactor"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(_forwards, _backwards, elidable=False)],
            state_operations=[
                *(migrations.AddField(model_name=owner, name=column, field=_state_field())
                  for owner, moved in MOVES for _, columns, _, _ in moved for column in columns),
                *(migrations.DeleteModel(name=model) for _, moved in MOVES for model, _, _, _ in moved),
            ],
        ),
    ]
