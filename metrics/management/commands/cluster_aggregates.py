"""Rewrite the cube tables in key order (PostgreSQL CLUSTER): see metrics.services.cube_tables_cluster."""

from django.core.management.base import BaseCommand
from django.db import connection

from metrics.services import cube_tables_cluster


class Command(BaseCommand):
    help = ("Rewrite every cube table in key order so a department's range reads few pages (PostgreSQL; "
            "an exclusive lock per table while it is rewritten).")

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            self.stdout.write("nothing to do: only PostgreSQL tables are clustered")
            return
        cluster_reported(self)


def cluster_reported(command: BaseCommand) -> None:
    """Cluster the cube tables, writing a line per table to the command's output (a skipped one to stderr)."""
    for table, seconds, skipped in cube_tables_cluster():
        if skipped:
            command.stderr.write(f"skipped {table}: {skipped}; run cluster_aggregates again later")
        else:
            command.stdout.write(f"clustered {table} in {seconds:.1f} s")
