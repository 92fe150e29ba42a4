"""Moving the test database between migrations, for the tests of a migration's data step."""

from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def migrate(targets):
    """Migrate to `targets` ([(app, migration)]) -> the apps (historical models) of that state."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps


def migrate_to_latest():
    """Every migration applied: the test database as every other test expects it."""
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
