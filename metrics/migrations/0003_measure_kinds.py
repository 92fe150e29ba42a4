"""Measure kinds: descriptive measure and cube names, quantile sketches, the contact-attempt split, topic.

Renames the component columns and cube keys to descriptive names (data kept), adds the new measures
and the PostgreSQL sketch-merge aggregate, and marks every quarter-hour that holds records dirty so
the new columns of existing buckets are computed by the workers (the old columns stay served meanwhile).
"""

import secrets

import django.db.models.deletion
from django.db import migrations, models

import metrics.measures
from metrics.migrations._sketch_v1 import PG_SKETCH_DROP_SQL_V1, PG_SKETCH_SQL_V1

CUBE_RENAMES = [('DT', 'day'), ('DC', 'day_channel'), ('DA', 'day_agent'), ('H', 'hour_channel'), ('D', 'day_agent_channel'), ('Q', 'quarter_agent_channel_topic')]
TABLES = ("metrics_interactionbucket", "metrics_surveybucket", "metrics_cashoutbucket")
SOURCES = (("interaction", "ingestion", "Interaction", "created_at"),
           ("survey", "ingestion", "SurveyResponse", "submitted_at"),
           ("cashout", "ingestion", "Cashout", "requested_at"))


def cube_keys_rename(apps, schema_editor, reverse=False):
    with schema_editor.connection.cursor() as cursor:
        for table in TABLES:
            for old, new in CUBE_RENAMES:
                a, b = (new, old) if reverse else (old, new)
                cursor.execute(f"UPDATE {table} SET cube = %s WHERE cube = %s", [b, a])


def cube_keys_restore(apps, schema_editor):
    cube_keys_rename(apps, schema_editor, reverse=True)


def buckets_mark_all(apps, schema_editor):
    """Every quarter-hour holding a record needs its new measures computed."""
    from datetime import UTC, datetime

    from django.utils import timezone

    now = timezone.now()
    version = secrets.randbits(62)
    if schema_editor.connection.vendor == "postgresql":
        for record_type, app, model_name, anchor in SOURCES:
            table = apps.get_model(app, model_name)._meta.db_table
            schema_editor.execute(
                "INSERT INTO metrics_dirtybucket (record_type, department_id, quarter_start, version, "
                "first_marked_at, marked_at, attempts, last_error) "
                f"SELECT DISTINCT %s, department_id, date_bin('15 minutes', {anchor}, TIMESTAMPTZ '2000-01-01'), "
                f"%s, %s, %s, 0, '' FROM {table} ON CONFLICT DO NOTHING",
                [record_type, version, now, now],
            )
        return
    DirtyBucket = apps.get_model("metrics", "DirtyBucket")
    for record_type, app, model_name, anchor in SOURCES:
        model = apps.get_model(app, model_name)
        quarters = set()
        for department_id, moment in model.objects.values_list("department_id", anchor).iterator(chunk_size=10_000):
            quarters.add((department_id, int(moment.timestamp()) // 900 * 900))
        marks = [DirtyBucket(record_type=record_type, department_id=d, quarter_start=datetime.fromtimestamp(q, tz=UTC),
                             version=version, first_marked_at=now, marked_at=now)
                 for d, q in sorted(quarters)]
        DirtyBucket.objects.bulk_create(marks, batch_size=5000, ignore_conflicts=True)


def no_statement_timeout(apps, schema_editor):
    """Renaming and marking touch every cube row and record: not bounded by the web's statement timeout."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET LOCAL statement_timeout = 0")


def sketch_sql(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in PG_SKETCH_SQL_V1:
            schema_editor.execute(statement, params=None)


def sketch_sql_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in PG_SKETCH_DROP_SQL_V1:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ('ingestion', '0001_initial'),
        ('metrics', '0002_cubes'),
    ]

    operations = [
        migrations.RunPython(no_statement_timeout, no_statement_timeout),
        migrations.RenameField(model_name='interactionbucket', old_name='n', new_name='interactions'),
        migrations.RenameField(model_name='interactionbucket', old_name='frt_sum', new_name='first_response_seconds_sum'),
        migrations.RenameField(model_name='interactionbucket', old_name='frt_n', new_name='first_responses'),
        migrations.RenameField(model_name='interactionbucket', old_name='res_sum', new_name='resolution_seconds_sum'),
        migrations.RenameField(model_name='interactionbucket', old_name='res_n', new_name='resolutions'),
        migrations.RenameField(model_name='interactionbucket', old_name='fcr_n', new_name='resolved_first_contact'),
        migrations.RenameField(model_name='interactionbucket', old_name='wait_sum', new_name='wait_seconds_sum'),
        migrations.RenameField(model_name='interactionbucket', old_name='wait_n', new_name='waits'),
        migrations.RenameField(model_name='interactionbucket', old_name='handle_sum', new_name='handle_seconds_sum'),
        migrations.RenameField(model_name='interactionbucket', old_name='handle_n', new_name='handles'),
        migrations.RenameField(model_name='interactionbucket', old_name='self_service', new_name='self_served'),
        migrations.RenameField(model_name='surveybucket', old_name='csat_n', new_name='csat_responses'),
        migrations.RenameField(model_name='surveybucket', old_name='csat_pos', new_name='csat_satisfied'),
        migrations.RenameField(model_name='surveybucket', old_name='csat_sum', new_name='csat_score_sum'),
        migrations.RenameField(model_name='surveybucket', old_name='nps_n', new_name='nps_responses'),
        migrations.RenameField(model_name='surveybucket', old_name='ces_sum', new_name='ces_score_sum'),
        migrations.RenameField(model_name='surveybucket', old_name='ces_n', new_name='ces_responses'),
        migrations.RenameField(model_name='surveybucket', old_name='qa_sum', new_name='qa_score_sum'),
        migrations.RenameField(model_name='surveybucket', old_name='qa_n', new_name='qa_reviews'),
        migrations.RenameField(model_name='cashoutbucket', old_name='n', new_name='cashouts'),
        migrations.RenameField(model_name='cashoutbucket', old_name='proc_sum', new_name='processing_seconds_sum'),
        migrations.RenameField(model_name='cashoutbucket', old_name='proc_n', new_name='processed'),
        migrations.RenameField(model_name='cashoutbucket', old_name='resp_sum', new_name='response_seconds_sum'),
        migrations.RenameField(model_name='cashoutbucket', old_name='resp_n', new_name='responses'),
        migrations.AddField(model_name='interactionbucket', name='resolved_second_contact', field=models.BigIntegerField(default=0)),
        migrations.AddField(model_name='interactionbucket', name='resolved_third_contact', field=models.BigIntegerField(default=0)),
        migrations.AddField(model_name='interactionbucket', name='resolved_later_contact', field=models.BigIntegerField(default=0)),
        migrations.AddField(model_name='interactionbucket', name='unresolved', field=models.BigIntegerField(default=0)),
        migrations.AlterField(model_name='interactionbucket', name='cube', field=models.CharField(choices=[('day', 'local day × department'), ('day_channel', 'local day × department × channel'), ('day_topic', 'local day × department × topic'), ('day_agent', 'local day × department × agent'), ('hour_channel', 'UTC hour × department × channel'), ('day_agent_channel', 'local day × department × agent × channel'), ('quarter_agent_channel_topic', 'UTC quarter-hour × department × agent × channel × topic')], max_length=32)),
        migrations.AlterField(model_name='surveybucket', name='cube', field=models.CharField(choices=[('day', 'local day × department'), ('day_channel', 'local day × department × channel'), ('day_topic', 'local day × department × topic'), ('day_agent', 'local day × department × agent'), ('hour_channel', 'UTC hour × department × channel'), ('day_agent_channel', 'local day × department × agent × channel'), ('quarter_agent_channel_topic', 'UTC quarter-hour × department × agent × channel × topic')], max_length=32)),
        migrations.AlterField(model_name='cashoutbucket', name='cube', field=models.CharField(choices=[('day', 'local day × department'), ('day_channel', 'local day × department × channel'), ('day_topic', 'local day × department × topic'), ('day_agent', 'local day × department × agent'), ('hour_channel', 'UTC hour × department × channel'), ('day_agent_channel', 'local day × department × agent × channel'), ('quarter_agent_channel_topic', 'UTC quarter-hour × department × agent × channel × topic')], max_length=32)),
        migrations.AddField(model_name='interactionbucket', name='topic', field=models.CharField(blank=True, default='', max_length=128)),
        migrations.RemoveConstraint(model_name='interactionbucket', name='interactionbucket_key'),
        migrations.AddConstraint(model_name='interactionbucket', constraint=models.UniqueConstraint(fields=('department', 'cube', 'bucket_start', 'agent', 'channel', 'topic'), name='interactionbucket_key')),
        migrations.AddField(model_name='surveybucket', name='topic', field=models.CharField(blank=True, default='', max_length=128)),
        migrations.RemoveConstraint(model_name='surveybucket', name='surveybucket_key'),
        migrations.AddConstraint(model_name='surveybucket', constraint=models.UniqueConstraint(fields=('department', 'cube', 'bucket_start', 'agent', 'channel', 'topic'), name='surveybucket_key')),
        migrations.AddField(model_name='cashoutbucket', name='topic', field=models.CharField(blank=True, default='', max_length=128)),
        migrations.RemoveConstraint(model_name='cashoutbucket', name='cashoutbucket_key'),
        migrations.AddConstraint(model_name='cashoutbucket', constraint=models.UniqueConstraint(fields=('department', 'cube', 'bucket_start', 'agent', 'channel', 'topic'), name='cashoutbucket_key')),
        migrations.CreateModel(
            name='CashoutSketchBucket',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('cube', models.CharField(choices=[('day', 'local day × department'), ('day_channel', 'local day × department × channel'), ('day_topic', 'local day × department × topic'), ('day_agent', 'local day × department × agent'), ('hour_channel', 'UTC hour × department × channel'), ('day_agent_channel', 'local day × department × agent × channel'), ('quarter_agent_channel_topic', 'UTC quarter-hour × department × agent × channel × topic')], max_length=32)),
                ('bucket_start', models.DateTimeField(help_text='UTC instant where the bucket starts.')),
                ('agent', models.CharField(blank=True, default='', max_length=128)),
                ('channel', models.CharField(blank=True, default='', max_length=32)),
                ('topic', models.CharField(blank=True, default='', max_length=128)),
                ('processing_seconds_sketch', metrics.measures.SketchField(blank=True, null=True)),
                ('response_seconds_sketch', metrics.measures.SketchField(blank=True, null=True)),
                ('department', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='cskpi.department')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('department', 'cube', 'bucket_start', 'agent', 'channel', 'topic'), name='cashoutsketchbucket_key')],
            },
        ),
        migrations.CreateModel(
            name='InteractionSketchBucket',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('cube', models.CharField(choices=[('day', 'local day × department'), ('day_channel', 'local day × department × channel'), ('day_topic', 'local day × department × topic'), ('day_agent', 'local day × department × agent'), ('hour_channel', 'UTC hour × department × channel'), ('day_agent_channel', 'local day × department × agent × channel'), ('quarter_agent_channel_topic', 'UTC quarter-hour × department × agent × channel × topic')], max_length=32)),
                ('bucket_start', models.DateTimeField(help_text='UTC instant where the bucket starts.')),
                ('agent', models.CharField(blank=True, default='', max_length=128)),
                ('channel', models.CharField(blank=True, default='', max_length=32)),
                ('topic', models.CharField(blank=True, default='', max_length=128)),
                ('first_response_seconds_sketch', metrics.measures.SketchField(blank=True, null=True)),
                ('resolution_seconds_sketch', metrics.measures.SketchField(blank=True, null=True)),
                ('wait_seconds_sketch', metrics.measures.SketchField(blank=True, null=True)),
                ('handle_seconds_sketch', metrics.measures.SketchField(blank=True, null=True)),
                ('department', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='cskpi.department')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('department', 'cube', 'bucket_start', 'agent', 'channel', 'topic'), name='interactionsketchbucket_key')],
            },
        ),
        migrations.RunPython(cube_keys_rename, cube_keys_restore),
        migrations.RunPython(sketch_sql, sketch_sql_drop),
        migrations.RunPython(buckets_mark_all, migrations.RunPython.noop),
    ]
