"""Drop the cube rows that copied another cube of the same grain: a cube keeping a dimension its
record type does not declare held '' there, the rows of the cube without it (metrics.planner.cubes_kept).
Queries read the cube without it since this version; nothing is recomputed."""

from django.db import migrations

# Per cube table, the cubes its record type no longer keeps (as cubes_kept gave them at this version).
DROPPED = {
    "SurveyBucket": ["day_region_segment", "day_topic", "month_region_segment"],
    "CashoutBucket": ["day_agent", "day_agent_channel", "day_region_segment", "day_topic", "month_agent",
                      "month_agent_channel", "month_region_segment"],
    "AgentEventBucket": ["day_agent_channel", "day_channel", "day_region_segment", "day_topic", "hour_channel",
                         "month_agent_channel", "month_channel", "month_region_segment"],
    "SystemCheckBucket": ["day_agent", "day_agent_channel", "day_channel", "day_region_segment", "day_topic",
                          "hour_channel", "month_agent", "month_agent_channel", "month_channel",
                          "month_region_segment"],
    "CustomerStockBucket": ["day_agent", "day_agent_channel", "day_channel", "day_topic", "hour_channel",
                            "month_agent", "month_agent_channel", "month_channel"],
}
DROPPED["CashoutSketchBucket"] = DROPPED["CashoutBucket"]


def copied_cubes_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET LOCAL statement_timeout = 0")
    for name, cubes in DROPPED.items():
        apps.get_model("metrics", name).objects.filter(cube__in=cubes).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('metrics', '0015_hour_and_half_hour_cubes'),
    ]

    operations = [
        migrations.RunPython(copied_cubes_drop, migrations.RunPython.noop, elidable=True),
    ]
