"""The exact layer's cube key is "quarter" (was "quarter_agent_channel_topic"): every row and every index
entry holds the key, so the 20 bytes less are taken from each twice — 36 MB of the agent events' 164 MB of
cubes at 1M interactions (859,000 quarter rows). Nothing is recomputed: the rows are renamed, and
(PostgreSQL) each table that held some is written again in key order (`_rename`), so no old row version is
left behind. Backwards: the old name again, the same way."""

from django.db import migrations, models

OLD, NEW = "quarter_agent_channel_topic", "quarter"
_KEY = "department_id, cube, bucket_start, agent, channel, topic, check_name, customer_region, segment"
# Every cube table at this migration, and its key (the customer stock table's adds `since`).
TABLES = {
    **{f"metrics_{name}": _KEY for name in (
        "interactionbucket", "interactionsketchbucket", "interactionsetbucket", "interactionfirstcontactbucket",
        "surveybucket", "cashoutbucket", "cashoutsketchbucket", "agenteventbucket", "systemcheckbucket")},
    "metrics_customerstockbucket": f"{_KEY}, since",
}


def _rename(schema_editor, old: str, new: str) -> None:
    """Rename the cube key in every table holding it. PostgreSQL: the table is copied aside, renamed
    there, emptied and filled again in key order, all in the migration's transaction. An UPDATE in place
    would leave every old row version in the table and its index (an exact layer twice its size), and a
    CLUSTER in the same transaction has to keep them too (the transaction might still roll back)."""
    postgresql = schema_editor.connection.vendor == "postgresql"
    if postgresql:
        schema_editor.execute("SET LOCAL statement_timeout = 0")  # every row of the tables holding it
    with schema_editor.connection.cursor() as cursor:
        for table, key in TABLES.items():
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE cube = %s)", [old])
            if not cursor.fetchone()[0]:
                continue
            if not postgresql:
                cursor.execute(f"UPDATE {table} SET cube = %s WHERE cube = %s", [new, old])
                continue
            cursor.execute(f"CREATE TEMPORARY TABLE cskpi_cube_rows ON COMMIT DROP AS SELECT * FROM {table}")
            cursor.execute("UPDATE cskpi_cube_rows SET cube = %s WHERE cube = %s", [new, old])
            cursor.execute(f"TRUNCATE {table}")
            cursor.execute(f"INSERT INTO {table} SELECT * FROM cskpi_cube_rows ORDER BY {key}")
            cursor.execute("DROP TABLE cskpi_cube_rows")


def cube_key_shorten(apps, schema_editor):
    _rename(schema_editor, OLD, NEW)


def cube_key_restore(apps, schema_editor):
    _rename(schema_editor, NEW, OLD)


class Migration(migrations.Migration):

    dependencies = [
        ('metrics', '0019_sketch_pairs'),
    ]

    operations = [
        migrations.RunPython(cube_key_shorten, cube_key_restore),
        migrations.AlterField(
            model_name='agenteventbucket',
            name='cube',
            field=models.CharField(choices=[('month', 'local month × department'), ('month_channel', 'local month × department × channel'), ('month_region_segment', 'local month × department × customer region × segment'), ('month_agent', 'local month × department × agent'), ('month_agent_channel', 'local month × department × agent × channel'), ('day', 'local day × department'), ('day_channel', 'local day × department × channel'), ('day_topic', 'local day × department × topic'), ('day_check', 'local day × department × check'), ('day_region_segment', 'local day × department × customer region × segment'), ('day_agent', 'local day × department × agent'), ('hour', 'UTC hour × department'), ('hour_30', 'UTC hour from half past × department'), ('quarter', 'UTC quarter-hour × department × every dimension (agent, channel, topic, check, customer region, segment)')], max_length=32),
        ),
        migrations.AlterField(
            model_name='cashoutbucket',
            name='cube',
            field=models.CharField(choices=[('month', 'local month × department'), ('month_channel', 'local month × department × channel'), ('month_region_segment', 'local month × department × customer region × segment'), ('month_agent', 'local month × department × agent'), ('month_agent_channel', 'local month × department × agent × channel'), ('day', 'local day × department'), ('day_channel', 'local day × department × channel'), ('day_topic', 'local day × department × topic'), ('day_check', 'local day × department × check'), ('day_region_segment', 'local day × department × customer region × segment'), ('day_agent', 'local day × department × agent'), ('hour', 'UTC hour × department'), ('hour_30', 'UTC hour from half past × department'), ('quarter', 'UTC quarter-hour × department × every dimension (agent, channel, topic, check, customer region, segment)')], max_length=32),
        ),
        migrations.AlterField(
            model_name='cashoutsketchbucket',
            name='cube',
            field=models.CharField(choices=[('month', 'local month × department'), ('month_channel', 'local month × department × channel'), ('month_region_segment', 'local month × department × customer region × segment'), ('month_agent', 'local month × department × agent'), ('month_agent_channel', 'local month × department × agent × channel'), ('day', 'local day × department'), ('day_channel', 'local day × department × channel'), ('day_topic', 'local day × department × topic'), ('day_check', 'local day × department × check'), ('day_region_segment', 'local day × department × customer region × segment'), ('day_agent', 'local day × department × agent'), ('hour', 'UTC hour × department'), ('hour_30', 'UTC hour from half past × department'), ('quarter', 'UTC quarter-hour × department × every dimension (agent, channel, topic, check, customer region, segment)')], max_length=32),
        ),
        migrations.AlterField(
            model_name='customerstockbucket',
            name='cube',
            field=models.CharField(choices=[('month', 'local month × department'), ('month_channel', 'local month × department × channel'), ('month_region_segment', 'local month × department × customer region × segment'), ('month_agent', 'local month × department × agent'), ('month_agent_channel', 'local month × department × agent × channel'), ('day', 'local day × department'), ('day_channel', 'local day × department × channel'), ('day_topic', 'local day × department × topic'), ('day_check', 'local day × department × check'), ('day_region_segment', 'local day × department × customer region × segment'), ('day_agent', 'local day × department × agent'), ('hour', 'UTC hour × department'), ('hour_30', 'UTC hour from half past × department'), ('quarter', 'UTC quarter-hour × department × every dimension (agent, channel, topic, check, customer region, segment)')], max_length=32),
        ),
        migrations.AlterField(
            model_name='interactionbucket',
            name='cube',
            field=models.CharField(choices=[('month', 'local month × department'), ('month_channel', 'local month × department × channel'), ('month_region_segment', 'local month × department × customer region × segment'), ('month_agent', 'local month × department × agent'), ('month_agent_channel', 'local month × department × agent × channel'), ('day', 'local day × department'), ('day_channel', 'local day × department × channel'), ('day_topic', 'local day × department × topic'), ('day_check', 'local day × department × check'), ('day_region_segment', 'local day × department × customer region × segment'), ('day_agent', 'local day × department × agent'), ('hour', 'UTC hour × department'), ('hour_30', 'UTC hour from half past × department'), ('quarter', 'UTC quarter-hour × department × every dimension (agent, channel, topic, check, customer region, segment)')], max_length=32),
        ),
        migrations.AlterField(
            model_name='interactionfirstcontactbucket',
            name='cube',
            field=models.CharField(choices=[('month', 'local month × department'), ('month_channel', 'local month × department × channel'), ('month_region_segment', 'local month × department × customer region × segment'), ('month_agent', 'local month × department × agent'), ('month_agent_channel', 'local month × department × agent × channel'), ('day', 'local day × department'), ('day_channel', 'local day × department × channel'), ('day_topic', 'local day × department × topic'), ('day_check', 'local day × department × check'), ('day_region_segment', 'local day × department × customer region × segment'), ('day_agent', 'local day × department × agent'), ('hour', 'UTC hour × department'), ('hour_30', 'UTC hour from half past × department'), ('quarter', 'UTC quarter-hour × department × every dimension (agent, channel, topic, check, customer region, segment)')], max_length=32),
        ),
        migrations.AlterField(
            model_name='interactionsetbucket',
            name='cube',
            field=models.CharField(choices=[('month', 'local month × department'), ('month_channel', 'local month × department × channel'), ('month_region_segment', 'local month × department × customer region × segment'), ('month_agent', 'local month × department × agent'), ('month_agent_channel', 'local month × department × agent × channel'), ('day', 'local day × department'), ('day_channel', 'local day × department × channel'), ('day_topic', 'local day × department × topic'), ('day_check', 'local day × department × check'), ('day_region_segment', 'local day × department × customer region × segment'), ('day_agent', 'local day × department × agent'), ('hour', 'UTC hour × department'), ('hour_30', 'UTC hour from half past × department'), ('quarter', 'UTC quarter-hour × department × every dimension (agent, channel, topic, check, customer region, segment)')], max_length=32),
        ),
        migrations.AlterField(
            model_name='interactionsketchbucket',
            name='cube',
            field=models.CharField(choices=[('month', 'local month × department'), ('month_channel', 'local month × department × channel'), ('month_region_segment', 'local month × department × customer region × segment'), ('month_agent', 'local month × department × agent'), ('month_agent_channel', 'local month × department × agent × channel'), ('day', 'local day × department'), ('day_channel', 'local day × department × channel'), ('day_topic', 'local day × department × topic'), ('day_check', 'local day × department × check'), ('day_region_segment', 'local day × department × customer region × segment'), ('day_agent', 'local day × department × agent'), ('hour', 'UTC hour × department'), ('hour_30', 'UTC hour from half past × department'), ('quarter', 'UTC quarter-hour × department × every dimension (agent, channel, topic, check, customer region, segment)')], max_length=32),
        ),
        migrations.AlterField(
            model_name='surveybucket',
            name='cube',
            field=models.CharField(choices=[('month', 'local month × department'), ('month_channel', 'local month × department × channel'), ('month_region_segment', 'local month × department × customer region × segment'), ('month_agent', 'local month × department × agent'), ('month_agent_channel', 'local month × department × agent × channel'), ('day', 'local day × department'), ('day_channel', 'local day × department × channel'), ('day_topic', 'local day × department × topic'), ('day_check', 'local day × department × check'), ('day_region_segment', 'local day × department × customer region × segment'), ('day_agent', 'local day × department × agent'), ('hour', 'UTC hour × department'), ('hour_30', 'UTC hour from half past × department'), ('quarter', 'UTC quarter-hour × department × every dimension (agent, channel, topic, check, customer region, segment)')], max_length=32),
        ),
        migrations.AlterField(
            model_name='systemcheckbucket',
            name='cube',
            field=models.CharField(choices=[('month', 'local month × department'), ('month_channel', 'local month × department × channel'), ('month_region_segment', 'local month × department × customer region × segment'), ('month_agent', 'local month × department × agent'), ('month_agent_channel', 'local month × department × agent × channel'), ('day', 'local day × department'), ('day_channel', 'local day × department × channel'), ('day_topic', 'local day × department × topic'), ('day_check', 'local day × department × check'), ('day_region_segment', 'local day × department × customer region × segment'), ('day_agent', 'local day × department × agent'), ('hour', 'UTC hour × department'), ('hour_30', 'UTC hour from half past × department'), ('quarter', 'UTC quarter-hour × department × every dimension (agent, channel, topic, check, customer region, segment)')], max_length=32),
        ),
    ]
