from celery.signals import worker_init
from django.apps import AppConfig
from django.db.backends.signals import connection_created

from cskpi.signals import department_timezone_changed, health_collected
from ingestion.signals import record_changes_marked
from metrics.cubes import sqlite_bucket_start, sqlite_local_part, sqlite_period_index

# SQLite twins of the PostgreSQL SQL, registered on every connection: (name, arity, callable). The
# sketch ones come from metrics.measures, which reads models: added in ready().
SQLITE_FUNCTIONS = [("cskpi_bucket_start", 4, sqlite_bucket_start), ("cskpi_period_index", 2, sqlite_period_index),
                    ("cskpi_local_part", 3, sqlite_local_part)]
SQLITE_AGGREGATES: list[tuple[str, int, type]] = []


def _sqlite_functions(sender, connection, **kwargs):
    if connection.vendor == "sqlite":
        raw = connection.connection
        for name, arity, function in SQLITE_FUNCTIONS:
            raw.create_function(name, arity, function, deterministic=True)
        for name, arity, aggregate in SQLITE_AGGREGATES:
            raw.create_aggregate(name, arity, aggregate)


class MetricsConfig(AppConfig):
    name = "metrics"
    verbose_name = "Metrics: KPI aggregates"

    def ready(self):
        # Django's way to connect receivers: their module uses models, importable only once apps are ready.
        from metrics import receivers
        from metrics.measures import (
            SqliteSketchBuild,
            SqliteSketchMerge,
            sqlite_seconds_between,
            sqlite_sketch_bin,
        )

        if not SQLITE_AGGREGATES:
            SQLITE_FUNCTIONS.append(("cskpi_sketch_bin", 1, sqlite_sketch_bin))
            SQLITE_FUNCTIONS.append(("cskpi_seconds_between", 2, sqlite_seconds_between))
            SQLITE_AGGREGATES.extend([("cskpi_sketch_build", 1, SqliteSketchBuild),
                                      ("cskpi_sketch_merge", 1, SqliteSketchMerge)])

        connection_created.connect(_sqlite_functions, dispatch_uid="metrics-sqlite-functions")
        record_changes_marked.connect(receivers.recompute_kick_on_commit, dispatch_uid="metrics-recompute-kick")
        department_timezone_changed.connect(receivers.department_zone_changed, dispatch_uid="metrics-zone-change")
        health_collected.connect(receivers.recompute_backlog, dispatch_uid="metrics-recompute-backlog")
        worker_init.connect(receivers.recompute_sql_warm_before_fork, dispatch_uid="metrics-recompute-sql-warm")
