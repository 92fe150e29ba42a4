"""Celery entrypoints of ingestion: thin, idempotent, safe to run twice or concurrently."""

from celery import shared_task

from ingestion import service_levels


@shared_task(name="ingestion.tasks.remeasure_records", acks_late=True)
def remeasure_records() -> int:
    """Measure again the records of departments whose calendar, policy or zone changed."""
    outcome = service_levels.pending_remeasures_run()
    if outcome.exhausted:
        remeasure_records.delay()
    return outcome.records


@shared_task(name="ingestion.tasks.service_levels_sweep", acks_late=True, expires=60)
def service_levels_sweep() -> int:
    """The beat's pass: any measuring left waiting, then the records whose deadline passed."""
    outcome = service_levels.pending_remeasures_run()
    if outcome.exhausted:
        remeasure_records.delay()
    return service_levels.overdue_records_mark()
