"""The raw status events are the exact layer of time in state, as the raw records are of counts: the
quarter-hour × agent rows of `AgentEventBucket` are dropped (859k rows and 118 MB of its 128 MB for
547k events a year, 1.57 rows per event). Three cubes kept only by a record type that holds state take
over what they served in SQL: UTC hour × agent and UTC hour from half past × agent (by agent in UTC,
whole-hour and half-hour zones, agent × hour), and UTC quarter-hour × department (zones with a
45-minute offset such as Asia/Kathmandu). The recompute cuts the state intervals of the raw events at
the quarter-hours and adds them to each finest cube's buckets (the same values the quarters summed to);
a query no cube fits (by agent in a 45-minute zone) cuts them in Python (metrics.reader).

The quarters of every UTC hour holding time in some state (the `hour` cube's rows) are marked in the
change log: the recompute builds the new cubes' rows there. Until it has run, queries they serve read
no time: run the worker (or `manage.py rebuild_aggregates`) first. Backwards the same quarters are
marked, and the recompute of the code before this rebuilds their quarter rows; the new cubes' rows,
which that code would never read nor replace, are deleted. The dropped rows leave
dead space in PostgreSQL until `VACUUM FULL metrics_agenteventbucket`.
"""

import secrets

from django.db import migrations, models

EXACT = "quarter"
NEW_CUBES = ["hour_agent", "hour_30_agent", "quarter_department"]


def hours_mark(apps, schema_editor):
    """Every quarter of every UTC hour holding time in some state, for agent events."""
    from datetime import UTC, timedelta

    from django.utils import timezone

    now = timezone.now()
    version = secrets.randbits(62)
    RecordChange = apps.get_model("ingestion", "RecordChange")
    hours = apps.get_model("metrics", "AgentEventBucket").objects.filter(cube="hour").values_list(
        "department_id", "bucket_start")
    marks = [RecordChange(record_type="agent_event", department_id=d, quarter_start=(start + n * timedelta(minutes=15))
                          .astimezone(UTC), version=version, first_marked_at=now, marked_at=now)
             for d, start in hours.iterator(chunk_size=10_000) for n in range(4)]
    RecordChange.objects.bulk_create(marks, batch_size=5000, ignore_conflicts=True)


def quarters_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET LOCAL statement_timeout = 0")
    apps.get_model("metrics", "AgentEventBucket").objects.filter(cube=EXACT).delete()


def forwards(apps, schema_editor):
    hours_mark(apps, schema_editor)
    quarters_drop(apps, schema_editor)


def backwards(apps, schema_editor):
    hours_mark(apps, schema_editor)
    apps.get_model("metrics", "AgentEventBucket").objects.filter(cube__in=NEW_CUBES).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('ingestion', '0014_record_change_department_index_dropped'),
        ('metrics', '0021_month_agent_channel_sketches'),
    ]

    operations = [
        migrations.RunPython(forwards, backwards, elidable=True),
        migrations.AlterField(
            model_name='agenteventbucket',
            name='cube',
            field=models.CharField(choices=[('month', 'local month × department'), ('month_channel', 'local month × department × channel'), ('month_region_segment', 'local month × department × customer region × segment'), ('month_agent', 'local month × department × agent'), ('month_agent_channel', 'local month × department × agent × channel'), ('day', 'local day × department'), ('day_channel', 'local day × department × channel'), ('day_topic', 'local day × department × topic'), ('day_check', 'local day × department × check'), ('day_region_segment', 'local day × department × customer region × segment'), ('day_agent', 'local day × department × agent'), ('hour', 'UTC hour × department'), ('hour_30', 'UTC hour from half past × department'), ('hour_agent', 'UTC hour × department × agent (time in state)'), ('hour_30_agent', 'UTC hour from half past × department × agent (time in state)'), ('quarter_department', 'UTC quarter-hour × department (time in state)'), ('quarter', 'UTC quarter-hour × department × every dimension (agent, channel, topic, check, customer region, segment)')], max_length=32),
        ),
        migrations.AlterField(
            model_name='cashoutbucket',
            name='cube',
            field=models.CharField(choices=[('month', 'local month × department'), ('month_channel', 'local month × department × channel'), ('month_region_segment', 'local month × department × customer region × segment'), ('month_agent', 'local month × department × agent'), ('month_agent_channel', 'local month × department × agent × channel'), ('day', 'local day × department'), ('day_channel', 'local day × department × channel'), ('day_topic', 'local day × department × topic'), ('day_check', 'local day × department × check'), ('day_region_segment', 'local day × department × customer region × segment'), ('day_agent', 'local day × department × agent'), ('hour', 'UTC hour × department'), ('hour_30', 'UTC hour from half past × department'), ('hour_agent', 'UTC hour × department × agent (time in state)'), ('hour_30_agent', 'UTC hour from half past × department × agent (time in state)'), ('quarter_department', 'UTC quarter-hour × department (time in state)'), ('quarter', 'UTC quarter-hour × department × every dimension (agent, channel, topic, check, customer region, segment)')], max_length=32),
        ),
        migrations.AlterField(
            model_name='cashoutsketchbucket',
            name='cube',
            field=models.CharField(choices=[('month', 'local month × department'), ('month_channel', 'local month × department × channel'), ('month_region_segment', 'local month × department × customer region × segment'), ('month_agent', 'local month × department × agent'), ('month_agent_channel', 'local month × department × agent × channel'), ('day', 'local day × department'), ('day_channel', 'local day × department × channel'), ('day_topic', 'local day × department × topic'), ('day_check', 'local day × department × check'), ('day_region_segment', 'local day × department × customer region × segment'), ('day_agent', 'local day × department × agent'), ('hour', 'UTC hour × department'), ('hour_30', 'UTC hour from half past × department'), ('hour_agent', 'UTC hour × department × agent (time in state)'), ('hour_30_agent', 'UTC hour from half past × department × agent (time in state)'), ('quarter_department', 'UTC quarter-hour × department (time in state)'), ('quarter', 'UTC quarter-hour × department × every dimension (agent, channel, topic, check, customer region, segment)')], max_length=32),
        ),
        migrations.AlterField(
            model_name='customerstockbucket',
            name='cube',
            field=models.CharField(choices=[('month', 'local month × department'), ('month_channel', 'local month × department × channel'), ('month_region_segment', 'local month × department × customer region × segment'), ('month_agent', 'local month × department × agent'), ('month_agent_channel', 'local month × department × agent × channel'), ('day', 'local day × department'), ('day_channel', 'local day × department × channel'), ('day_topic', 'local day × department × topic'), ('day_check', 'local day × department × check'), ('day_region_segment', 'local day × department × customer region × segment'), ('day_agent', 'local day × department × agent'), ('hour', 'UTC hour × department'), ('hour_30', 'UTC hour from half past × department'), ('hour_agent', 'UTC hour × department × agent (time in state)'), ('hour_30_agent', 'UTC hour from half past × department × agent (time in state)'), ('quarter_department', 'UTC quarter-hour × department (time in state)'), ('quarter', 'UTC quarter-hour × department × every dimension (agent, channel, topic, check, customer region, segment)')], max_length=32),
        ),
        migrations.AlterField(
            model_name='interactionbucket',
            name='cube',
            field=models.CharField(choices=[('month', 'local month × department'), ('month_channel', 'local month × department × channel'), ('month_region_segment', 'local month × department × customer region × segment'), ('month_agent', 'local month × department × agent'), ('month_agent_channel', 'local month × department × agent × channel'), ('day', 'local day × department'), ('day_channel', 'local day × department × channel'), ('day_topic', 'local day × department × topic'), ('day_check', 'local day × department × check'), ('day_region_segment', 'local day × department × customer region × segment'), ('day_agent', 'local day × department × agent'), ('hour', 'UTC hour × department'), ('hour_30', 'UTC hour from half past × department'), ('hour_agent', 'UTC hour × department × agent (time in state)'), ('hour_30_agent', 'UTC hour from half past × department × agent (time in state)'), ('quarter_department', 'UTC quarter-hour × department (time in state)'), ('quarter', 'UTC quarter-hour × department × every dimension (agent, channel, topic, check, customer region, segment)')], max_length=32),
        ),
        migrations.AlterField(
            model_name='interactionfirstcontactbucket',
            name='cube',
            field=models.CharField(choices=[('month', 'local month × department'), ('month_channel', 'local month × department × channel'), ('month_region_segment', 'local month × department × customer region × segment'), ('month_agent', 'local month × department × agent'), ('month_agent_channel', 'local month × department × agent × channel'), ('day', 'local day × department'), ('day_channel', 'local day × department × channel'), ('day_topic', 'local day × department × topic'), ('day_check', 'local day × department × check'), ('day_region_segment', 'local day × department × customer region × segment'), ('day_agent', 'local day × department × agent'), ('hour', 'UTC hour × department'), ('hour_30', 'UTC hour from half past × department'), ('hour_agent', 'UTC hour × department × agent (time in state)'), ('hour_30_agent', 'UTC hour from half past × department × agent (time in state)'), ('quarter_department', 'UTC quarter-hour × department (time in state)'), ('quarter', 'UTC quarter-hour × department × every dimension (agent, channel, topic, check, customer region, segment)')], max_length=32),
        ),
        migrations.AlterField(
            model_name='interactionsetbucket',
            name='cube',
            field=models.CharField(choices=[('month', 'local month × department'), ('month_channel', 'local month × department × channel'), ('month_region_segment', 'local month × department × customer region × segment'), ('month_agent', 'local month × department × agent'), ('month_agent_channel', 'local month × department × agent × channel'), ('day', 'local day × department'), ('day_channel', 'local day × department × channel'), ('day_topic', 'local day × department × topic'), ('day_check', 'local day × department × check'), ('day_region_segment', 'local day × department × customer region × segment'), ('day_agent', 'local day × department × agent'), ('hour', 'UTC hour × department'), ('hour_30', 'UTC hour from half past × department'), ('hour_agent', 'UTC hour × department × agent (time in state)'), ('hour_30_agent', 'UTC hour from half past × department × agent (time in state)'), ('quarter_department', 'UTC quarter-hour × department (time in state)'), ('quarter', 'UTC quarter-hour × department × every dimension (agent, channel, topic, check, customer region, segment)')], max_length=32),
        ),
        migrations.AlterField(
            model_name='interactionsketchbucket',
            name='cube',
            field=models.CharField(choices=[('month', 'local month × department'), ('month_channel', 'local month × department × channel'), ('month_region_segment', 'local month × department × customer region × segment'), ('month_agent', 'local month × department × agent'), ('month_agent_channel', 'local month × department × agent × channel'), ('day', 'local day × department'), ('day_channel', 'local day × department × channel'), ('day_topic', 'local day × department × topic'), ('day_check', 'local day × department × check'), ('day_region_segment', 'local day × department × customer region × segment'), ('day_agent', 'local day × department × agent'), ('hour', 'UTC hour × department'), ('hour_30', 'UTC hour from half past × department'), ('hour_agent', 'UTC hour × department × agent (time in state)'), ('hour_30_agent', 'UTC hour from half past × department × agent (time in state)'), ('quarter_department', 'UTC quarter-hour × department (time in state)'), ('quarter', 'UTC quarter-hour × department × every dimension (agent, channel, topic, check, customer region, segment)')], max_length=32),
        ),
        migrations.AlterField(
            model_name='surveybucket',
            name='cube',
            field=models.CharField(choices=[('month', 'local month × department'), ('month_channel', 'local month × department × channel'), ('month_region_segment', 'local month × department × customer region × segment'), ('month_agent', 'local month × department × agent'), ('month_agent_channel', 'local month × department × agent × channel'), ('day', 'local day × department'), ('day_channel', 'local day × department × channel'), ('day_topic', 'local day × department × topic'), ('day_check', 'local day × department × check'), ('day_region_segment', 'local day × department × customer region × segment'), ('day_agent', 'local day × department × agent'), ('hour', 'UTC hour × department'), ('hour_30', 'UTC hour from half past × department'), ('hour_agent', 'UTC hour × department × agent (time in state)'), ('hour_30_agent', 'UTC hour from half past × department × agent (time in state)'), ('quarter_department', 'UTC quarter-hour × department (time in state)'), ('quarter', 'UTC quarter-hour × department × every dimension (agent, channel, topic, check, customer region, segment)')], max_length=32),
        ),
        migrations.AlterField(
            model_name='systemcheckbucket',
            name='cube',
            field=models.CharField(choices=[('month', 'local month × department'), ('month_channel', 'local month × department × channel'), ('month_region_segment', 'local month × department × customer region × segment'), ('month_agent', 'local month × department × agent'), ('month_agent_channel', 'local month × department × agent × channel'), ('day', 'local day × department'), ('day_channel', 'local day × department × channel'), ('day_topic', 'local day × department × topic'), ('day_check', 'local day × department × check'), ('day_region_segment', 'local day × department × customer region × segment'), ('day_agent', 'local day × department × agent'), ('hour', 'UTC hour × department'), ('hour_30', 'UTC hour from half past × department'), ('hour_agent', 'UTC hour × department × agent (time in state)'), ('hour_30_agent', 'UTC hour from half past × department × agent (time in state)'), ('quarter_department', 'UTC quarter-hour × department (time in state)'), ('quarter', 'UTC quarter-hour × department × every dimension (agent, channel, topic, check, customer region, segment)')], max_length=32),
        ),
    ]
