from django.apps import AppConfig
from django.db.backends.signals import connection_created

from cskpi.signals import department_timezone_changed, health_collected
from ingestion.signals import record_changes_marked
from metrics.cubes import sqlite_bucket_start, sqlite_local_part, sqlite_period_index
from metrics.measures import SqliteSketchBuild, SqliteSketchMerge, sqlite_seconds_between, sqlite_sketch_bin


def _sqlite_functions(sender, connection, **kwargs):
    if connection.vendor == "sqlite":
        raw = connection.connection
        raw.create_function("cskpi_bucket_start", 3, sqlite_bucket_start, deterministic=True)
        raw.create_function("cskpi_period_index", 2, sqlite_period_index, deterministic=True)
        raw.create_function("cskpi_local_part", 3, sqlite_local_part, deterministic=True)
        raw.create_function("cskpi_sketch_bin", 1, sqlite_sketch_bin, deterministic=True)
        raw.create_function("cskpi_seconds_between", 2, sqlite_seconds_between, deterministic=True)
        raw.create_aggregate("cskpi_sketch_build", 1, SqliteSketchBuild)
        raw.create_aggregate("cskpi_sketch_merge", 1, SqliteSketchMerge)


class MetricsConfig(AppConfig):
    name = "metrics"
    verbose_name = "Metrics: KPI aggregates"

    def ready(self):
        # Django's way to connect receivers: their module uses models, importable only once apps are ready.
        from metrics import receivers

        connection_created.connect(_sqlite_functions, dispatch_uid="metrics-sqlite-functions")
        record_changes_marked.connect(receivers.recompute_kick_on_commit, dispatch_uid="metrics-recompute-kick")
        department_timezone_changed.connect(receivers.department_zone_changed, dispatch_uid="metrics-zone-change")
        health_collected.connect(receivers.recompute_backlog, dispatch_uid="metrics-recompute-backlog")
