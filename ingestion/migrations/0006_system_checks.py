"""System checks (issue 12): the record table, and the change log's new record type."""

import django.db.models.deletion
from django.db import migrations, models


def set_fillfactor(apps, schema_editor):
    """As for the other record tables (0002): room on each page for HOT updates by the upsert."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE ingestion_systemcheck SET (fillfactor = 85)")


class Migration(migrations.Migration):

    dependencies = [
        ('cskpi', '0001_initial'),
        ('ingestion', '0005_agent_events'),
    ]

    operations = [
        migrations.AlterField(
            model_name='recordchange',
            name='record_type',
            field=models.CharField(choices=[('interaction', 'Interaction'), ('survey', 'Survey response'), ('cashout', 'Cashout'), ('system_check', 'System check')], max_length=16),
        ),
        migrations.CreateModel(
            name='SystemCheck',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('source', models.CharField(max_length=64)),
                ('external_id', models.CharField(max_length=128)),
                ('updated_at', models.DateTimeField(blank=True, help_text="The sender's modification time.", null=True)),
                ('content_hash', models.CharField(help_text='Digest of the content, updated_at excluded.', max_length=32)),
                ('received_at', models.DateTimeField(help_text='When this version was stored.')),
                ('check_name', models.CharField(max_length=64)),
                ('at', models.DateTimeField()),
                ('outcome', models.CharField(choices=[('ok', 'OK'), ('failed', 'Failed')], max_length=8)),
                ('duration_ms', models.PositiveIntegerField(blank=True, null=True)),
                ('detail', models.TextField(blank=True, null=True)),
                ('department', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='cskpi.department')),
            ],
            options={
                'indexes': [models.Index(fields=['department', 'at'], name='system_check_dept_time'), models.Index(fields=['department', 'check_name', 'at'], name='system_check_series')],
                'constraints': [models.UniqueConstraint(fields=('source', 'external_id'), name='system_check_key')],
            },
        ),
        migrations.RunPython(set_fillfactor, migrations.RunPython.noop, elidable=True),
    ]
