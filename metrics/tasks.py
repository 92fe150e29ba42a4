"""Celery entrypoints of the KPI engine: thin, idempotent, safe to run twice or concurrently."""

from celery import shared_task

from metrics import services


@shared_task(name="metrics.tasks.recompute_dirty_buckets", acks_late=True)
def recompute_dirty_buckets() -> int:
    return services.dirty_buckets_recompute()


@shared_task(name="metrics.tasks.sweep_dirty_buckets", acks_late=True, expires=30)
def sweep_dirty_buckets() -> int:
    return services.dirty_buckets_recompute()
