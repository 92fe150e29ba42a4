"""System checks (issue 12): their cube tables, the check dimension (`check_name`) in every cube
table and its key, the day_check cube, and alert rules' check filter. No data step: existing rows
hold '' (no check), which is what the other record types have."""

import django.db.models.deletion
from django.db import migrations, models


def no_statement_timeout(apps, schema_editor):
    """Adding a column and rebuilding the key of every cube table is not bounded by the web's timeout."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET LOCAL statement_timeout = 0")


class Migration(migrations.Migration):

    dependencies = [
        ('cskpi', '0001_initial'),
        ('metrics', '0006_agent_events'),
    ]

    operations = [
        migrations.RunPython(no_statement_timeout, no_statement_timeout),
        migrations.CreateModel(
            name='SystemCheckBucket',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('cube', models.CharField(choices=[('day', 'local day × department'), ('day_channel', 'local day × department × channel'), ('day_topic', 'local day × department × topic'), ('day_check', 'local day × department × check'), ('day_agent', 'local day × department × agent'), ('hour_channel', 'UTC hour × department × channel'), ('day_agent_channel', 'local day × department × agent × channel'), ('quarter_agent_channel_topic', 'UTC quarter-hour × department × agent × channel × topic × check')], max_length=32)),
                ('bucket_start', models.DateTimeField(help_text='UTC instant where the bucket starts.')),
                ('agent', models.CharField(blank=True, default='', max_length=128)),
                ('channel', models.CharField(blank=True, default='', max_length=32)),
                ('topic', models.CharField(blank=True, default='', max_length=128)),
                ('check_name', models.CharField(blank=True, default='', max_length=64)),
                ('system_checks', models.BigIntegerField(default=0)),
                ('system_checks_failed', models.BigIntegerField(default=0)),
                ('check_interval_seconds_sum', models.FloatField(default=0)),
                ('check_intervals', models.BigIntegerField(default=0)),
            ],
        ),
        migrations.RemoveConstraint(
            model_name='cashoutbucket',
            name='cashoutbucket_key',
        ),
        migrations.RemoveConstraint(
            model_name='cashoutsketchbucket',
            name='cashoutsketchbucket_key',
        ),
        migrations.RemoveConstraint(
            model_name='interactionbucket',
            name='interactionbucket_key',
        ),
        migrations.RemoveConstraint(
            model_name='interactionsketchbucket',
            name='interactionsketchbucket_key',
        ),
        migrations.RemoveConstraint(
            model_name='surveybucket',
            name='surveybucket_key',
        ),
        migrations.AddField(
            model_name='alertevent',
            name='check_name',
            field=models.CharField(blank=True, default='', max_length=64),
        ),
        migrations.AddField(
            model_name='alertrule',
            name='check_name',
            field=models.CharField(blank=True, default='', help_text='Filter: only this system check.', max_length=64),
        ),
        migrations.AddField(
            model_name='cashoutbucket',
            name='check_name',
            field=models.CharField(blank=True, default='', max_length=64),
        ),
        migrations.AddField(
            model_name='cashoutsketchbucket',
            name='check_name',
            field=models.CharField(blank=True, default='', max_length=64),
        ),
        migrations.AddField(
            model_name='interactionbucket',
            name='check_name',
            field=models.CharField(blank=True, default='', max_length=64),
        ),
        migrations.AddField(
            model_name='interactionsketchbucket',
            name='check_name',
            field=models.CharField(blank=True, default='', max_length=64),
        ),
        migrations.AddField(
            model_name='surveybucket',
            name='check_name',
            field=models.CharField(blank=True, default='', max_length=64),
        ),
        migrations.AlterField(
            model_name='cashoutbucket',
            name='cube',
            field=models.CharField(choices=[('day', 'local day × department'), ('day_channel', 'local day × department × channel'), ('day_topic', 'local day × department × topic'), ('day_check', 'local day × department × check'), ('day_agent', 'local day × department × agent'), ('hour_channel', 'UTC hour × department × channel'), ('day_agent_channel', 'local day × department × agent × channel'), ('quarter_agent_channel_topic', 'UTC quarter-hour × department × agent × channel × topic × check')], max_length=32),
        ),
        migrations.AlterField(
            model_name='cashoutsketchbucket',
            name='cube',
            field=models.CharField(choices=[('day', 'local day × department'), ('day_channel', 'local day × department × channel'), ('day_topic', 'local day × department × topic'), ('day_check', 'local day × department × check'), ('day_agent', 'local day × department × agent'), ('hour_channel', 'UTC hour × department × channel'), ('day_agent_channel', 'local day × department × agent × channel'), ('quarter_agent_channel_topic', 'UTC quarter-hour × department × agent × channel × topic × check')], max_length=32),
        ),
        migrations.AlterField(
            model_name='interactionbucket',
            name='cube',
            field=models.CharField(choices=[('day', 'local day × department'), ('day_channel', 'local day × department × channel'), ('day_topic', 'local day × department × topic'), ('day_check', 'local day × department × check'), ('day_agent', 'local day × department × agent'), ('hour_channel', 'UTC hour × department × channel'), ('day_agent_channel', 'local day × department × agent × channel'), ('quarter_agent_channel_topic', 'UTC quarter-hour × department × agent × channel × topic × check')], max_length=32),
        ),
        migrations.AlterField(
            model_name='interactionsketchbucket',
            name='cube',
            field=models.CharField(choices=[('day', 'local day × department'), ('day_channel', 'local day × department × channel'), ('day_topic', 'local day × department × topic'), ('day_check', 'local day × department × check'), ('day_agent', 'local day × department × agent'), ('hour_channel', 'UTC hour × department × channel'), ('day_agent_channel', 'local day × department × agent × channel'), ('quarter_agent_channel_topic', 'UTC quarter-hour × department × agent × channel × topic × check')], max_length=32),
        ),
        migrations.AlterField(
            model_name='recomputestamp',
            name='record_type',
            field=models.CharField(choices=[('interaction', 'Interaction'), ('survey', 'Survey response'), ('cashout', 'Cashout'), ('system_check', 'System check')], max_length=16),
        ),
        migrations.AlterField(
            model_name='surveybucket',
            name='cube',
            field=models.CharField(choices=[('day', 'local day × department'), ('day_channel', 'local day × department × channel'), ('day_topic', 'local day × department × topic'), ('day_check', 'local day × department × check'), ('day_agent', 'local day × department × agent'), ('hour_channel', 'UTC hour × department × channel'), ('day_agent_channel', 'local day × department × agent × channel'), ('quarter_agent_channel_topic', 'UTC quarter-hour × department × agent × channel × topic × check')], max_length=32),
        ),
        migrations.AddConstraint(
            model_name='cashoutbucket',
            constraint=models.UniqueConstraint(fields=('department', 'cube', 'bucket_start', 'agent', 'channel', 'topic', 'check_name'), name='cashoutbucket_key'),
        ),
        migrations.AddConstraint(
            model_name='cashoutsketchbucket',
            constraint=models.UniqueConstraint(fields=('department', 'cube', 'bucket_start', 'agent', 'channel', 'topic', 'check_name'), name='cashoutsketchbucket_key'),
        ),
        migrations.AddConstraint(
            model_name='interactionbucket',
            constraint=models.UniqueConstraint(fields=('department', 'cube', 'bucket_start', 'agent', 'channel', 'topic', 'check_name'), name='interactionbucket_key'),
        ),
        migrations.AddConstraint(
            model_name='interactionsketchbucket',
            constraint=models.UniqueConstraint(fields=('department', 'cube', 'bucket_start', 'agent', 'channel', 'topic', 'check_name'), name='interactionsketchbucket_key'),
        ),
        migrations.AddConstraint(
            model_name='surveybucket',
            constraint=models.UniqueConstraint(fields=('department', 'cube', 'bucket_start', 'agent', 'channel', 'topic', 'check_name'), name='surveybucket_key'),
        ),
        migrations.AddField(
            model_name='systemcheckbucket',
            name='department',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='cskpi.department'),
        ),
        migrations.AddConstraint(
            model_name='systemcheckbucket',
            constraint=models.UniqueConstraint(fields=('department', 'cube', 'bucket_start', 'agent', 'channel', 'topic', 'check_name'), name='systemcheckbucket_key'),
        ),
    ]
