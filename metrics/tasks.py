"""Celery entrypoints of the KPI engine: thin, idempotent, safe to run twice or concurrently."""

from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from metrics import services

# Set for CSKPI_OPEN_STATES_SECONDS when the sweep has re-marked open agent states.
OPEN_STATES_DUE = "metrics:open-states-marked-recently"

@shared_task(name="metrics.tasks.recompute_dirty_buckets", acks_late=True)
def recompute_dirty_buckets() -> int:
    # Clear the coalescing flag first: a mark committed while this runs queues another run.
    try:
        cache.delete(services.KICK_FLAG)
    except Exception:  # noqa: BLE001 - cache down: the flag expires by itself
        pass
    outcome = services.dirty_buckets_recompute()
    if outcome.exhausted:
        recompute_dirty_buckets.delay()
    return outcome.buckets


@shared_task(name="metrics.tasks.sweep_dirty_buckets", acks_late=True, expires=30)
def sweep_dirty_buckets() -> int:
    # Open agent states grow with time: their current quarter is dirty. The sweep runs every 2 s (it
    # takes over a dead worker's claims); re-marking every department's current quarter that often
    # would recompute them all every 2 s, so open states move every CSKPI_OPEN_STATES_SECONDS.
    try:
        due = cache.add(OPEN_STATES_DUE, 1, timeout=settings.CSKPI_OPEN_STATES_SECONDS)
    except Exception:  # noqa: BLE001 - cache down: mark anyway (idempotent, only costlier)
        due = True
    if due:
        services.open_states_mark()
    return services.dirty_buckets_recompute().buckets

