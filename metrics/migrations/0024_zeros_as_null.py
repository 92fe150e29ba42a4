"""Additive cube columns (counts, sums, time in state, gaps) store a zero as NULL (`metrics.measures._Additive`):
a fine bucket holds a handful of records, so most of its counts and sums are zero, and a NULL takes no byte in
the row where a zero takes 4 or 8. The 1M benchmark's interaction counts table went from 114 to 99 MB (heap).

The columns become nullable, then each table is rewritten once with its zeros as NULL (`ALTER COLUMN … TYPE
… USING NULLIF`: a rewrite in one statement a table, so no dead rows are left behind); SQLite (development):
updated in place. Backwards: every NULL becomes a zero again before the columns are NOT NULL again. The tables
and columns are the ones this migration alters (`_columns`), so it does not change with the catalog after it.
"""

from django.db import migrations, models

# The additive columns, each now nullable (as `makemigrations` wrote them).
ALTERED = [
    migrations.AlterField(
        model_name='agenteventbucket',
        name='available_seconds',
        field=models.FloatField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='agenteventbucket',
        name='away_seconds',
        field=models.FloatField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='agenteventbucket',
        name='busy_seconds',
        field=models.FloatField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='cashoutbucket',
        name='cashout_response_breached',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='cashoutbucket',
        name='cashout_response_met',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='cashoutbucket',
        name='cashouts',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='cashoutbucket',
        name='failed',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='cashoutbucket',
        name='processed',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='cashoutbucket',
        name='processing_seconds_sum',
        field=models.FloatField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='cashoutbucket',
        name='response_seconds_sum',
        field=models.FloatField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='cashoutbucket',
        name='responses',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='cashoutbucket',
        name='settled',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='cashoutbucket',
        name='succeeded',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='interactionbucket',
        name='abandoned',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='interactionbucket',
        name='first_response_business_seconds_sum',
        field=models.FloatField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='interactionbucket',
        name='first_response_seconds_sum',
        field=models.FloatField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='interactionbucket',
        name='first_responses',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='interactionbucket',
        name='handle_seconds_sum',
        field=models.FloatField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='interactionbucket',
        name='handles',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='interactionbucket',
        name='interactions',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='interactionbucket',
        name='missed',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='interactionbucket',
        name='resolution_business_seconds_sum',
        field=models.FloatField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='interactionbucket',
        name='resolution_seconds_sum',
        field=models.FloatField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='interactionbucket',
        name='resolutions',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='interactionbucket',
        name='resolved',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='interactionbucket',
        name='resolved_first_contact',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='interactionbucket',
        name='resolved_later_contact',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='interactionbucket',
        name='resolved_second_contact',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='interactionbucket',
        name='resolved_third_contact',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='interactionbucket',
        name='self_served',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='interactionbucket',
        name='sla_first_response_breached',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='interactionbucket',
        name='sla_first_response_met',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='interactionbucket',
        name='sla_resolution_breached',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='interactionbucket',
        name='sla_resolution_met',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='interactionbucket',
        name='unresolved',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='interactionbucket',
        name='wait_seconds_sum',
        field=models.FloatField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='interactionbucket',
        name='waits',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='surveybucket',
        name='ces_responses',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='surveybucket',
        name='ces_score_sum',
        field=models.FloatField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='surveybucket',
        name='csat_responses',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='surveybucket',
        name='csat_satisfied',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='surveybucket',
        name='csat_score_sum',
        field=models.FloatField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='surveybucket',
        name='nps_detractors',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='surveybucket',
        name='nps_promoters',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='surveybucket',
        name='nps_responses',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='surveybucket',
        name='qa_reviews',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='surveybucket',
        name='qa_score_sum',
        field=models.FloatField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='systemcheckbucket',
        name='check_interval_seconds_sum',
        field=models.FloatField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='systemcheckbucket',
        name='check_intervals',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='systemcheckbucket',
        name='system_checks',
        field=models.IntegerField(blank=True, null=True),
    ),
    migrations.AlterField(
        model_name='systemcheckbucket',
        name='system_checks_failed',
        field=models.IntegerField(blank=True, null=True),
    ),
]


def _columns(operations) -> dict[str, list[tuple[str, str]]]:
    """{table: [(column, SQL type), ...]} of the fields altered above."""
    tables: dict[str, list[tuple[str, str]]] = {}
    for operation in operations:
        sql_type = "integer" if isinstance(operation.field, models.IntegerField) else "double precision"
        tables.setdefault(f"metrics_{operation.model_name}", []).append((operation.name, sql_type))
    return tables


def _rewrite(schema_editor, *, zeros_to_null: bool) -> None:
    qn = schema_editor.quote_name
    value = "NULLIF({0}, 0)" if zeros_to_null else "COALESCE({0}, 0)"
    for table, columns in _columns(ALTERED).items():
        if schema_editor.connection.vendor == "postgresql":
            changes = ", ".join(f"ALTER COLUMN {qn(c)} TYPE {t} USING {value.format(qn(c))}" for c, t in columns)
            schema_editor.execute(f"ALTER TABLE {qn(table)} {changes}")
        else:
            schema_editor.execute(f"UPDATE {qn(table)} SET "
                                  + ", ".join(f"{qn(c)} = {value.format(qn(c))}" for c, _ in columns))


def _forwards(apps, schema_editor):
    _rewrite(schema_editor, zeros_to_null=True)


def _backwards(apps, schema_editor):
    _rewrite(schema_editor, zeros_to_null=False)


class Migration(migrations.Migration):

    dependencies = [
        ('metrics', '0023_sketch_compact'),
    ]

    operations = [*ALTERED, migrations.RunPython(_forwards, _backwards, elidable=False)]
