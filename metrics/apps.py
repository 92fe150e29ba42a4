from django.apps import AppConfig
from django.db.backends.signals import connection_created


def _sqlite_functions(sender, connection, **kwargs):
    if connection.vendor == "sqlite":
        from metrics.cubes import sqlite_bucket_start, sqlite_local_part, sqlite_period_index
        from metrics.measures import SqliteSketchBuild, SqliteSketchMerge, sqlite_sketch_bin

        raw = connection.connection
        raw.create_function("cskpi_bucket_start", 3, sqlite_bucket_start, deterministic=True)
        raw.create_function("cskpi_period_index", 2, sqlite_period_index, deterministic=True)
        raw.create_function("cskpi_local_part", 3, sqlite_local_part, deterministic=True)
        raw.create_function("cskpi_sketch_bin", 1, sqlite_sketch_bin, deterministic=True)
        raw.create_aggregate("cskpi_sketch_build", 1, SqliteSketchBuild)
        raw.create_aggregate("cskpi_sketch_merge", 1, SqliteSketchMerge)


class MetricsConfig(AppConfig):
    name = "metrics"
    verbose_name = "Metrics: KPI aggregates"

    def ready(self):
        connection_created.connect(_sqlite_functions, dispatch_uid="metrics-sqlite-functions")
