"""How metrics reacts to what cskpi and ingestion announce (connected in `MetricsConfig.ready`).

cskpi and ingestion do not import metrics: they send signals, and metrics connects here. Receivers
only hand over to a service or queue a task; the work stays in `metrics.services`.
"""

import logging

from django.conf import settings
from django.core.cache import cache
from django.db import connections, transaction

from ingestion.models import RecordChange
from metrics import tasks
from metrics.services import KICK_FLAG, department_buckets_invalidate, recompute_sql_warm

logger = logging.getLogger(__name__)


def recompute_kick_on_commit(**kwargs) -> None:
    """After the current transaction commits, get the marked buckets recomputed.

    Receiver of `ingestion.changes.record_changes_marked`. In-process mode (no REDIS_URL)
    recomputes before the response returns. With a broker, one task is queued for many requests (a
    short-lived cache flag coalesces them); if the broker is down the marks are safe in the
    database and the beat sweep finds them later.
    """
    transaction.on_commit(_kick)


def _kick() -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        tasks.recompute_dirty_buckets.apply()
        return
    try:
        if cache.add(KICK_FLAG, 1, timeout=30):
            tasks.recompute_dirty_buckets.delay()
    except Exception:  # noqa: BLE001 - broker or cache down: the sweep picks the marks up later
        logger.warning("could not queue the recompute; the sweep will pick it up", exc_info=True)


def department_zone_changed(*, department, **kwargs) -> None:
    """Receiver of `cskpi.signals.department_timezone_changed`: re-cut the day cubes."""
    department_buckets_invalidate(department_id=department.id)


def recompute_backlog(**kwargs) -> dict:
    """Receiver of `cskpi.signals.health_collected`: the marks waiting for a recompute."""
    return {"pending_buckets": RecordChange.objects.count()}


def recompute_sql_warm_before_fork(**kwargs) -> None:
    """Receiver of Celery's `worker_init` (the worker's main process, before its pool forks): compile
    the recompute's SQL once, so every pool process, one restarted after a kill included, inherits it.
    The main process's database connection is closed afterwards: a forked child must not share it."""
    if connections["default"].vendor != "postgresql":  # SQLite: the embedded default has no worker pool
        return
    try:
        shapes = recompute_sql_warm()
        logger.info("recompute SQL compiled ahead: %d statement shapes", shapes)
    except Exception:  # noqa: BLE001 - no database yet: each pool process compiles on demand
        logger.warning("could not compile the recompute SQL ahead", exc_info=True)
    finally:
        connections.close_all()
