"""Celery entrypoints of the KPI engine: thin, idempotent, safe to run twice or concurrently."""

from celery import shared_task
from django.core.cache import cache

from metrics import services


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
    services.open_states_mark()  # open agent states grow with time: their current quarter is dirty
    return services.dirty_buckets_recompute().buckets
