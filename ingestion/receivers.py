"""How ingestion reacts to what cskpi announces (connected in `IngestionConfig.ready`)."""

import logging

from django.conf import settings
from django.db import transaction

from cskpi.models import DepartmentCalendar, SlaPolicy
from ingestion import tasks
from ingestion.service_levels import remeasure_request

logger = logging.getLogger(__name__)


def service_levels_changed(*, department, since, **kwargs) -> None:
    """Receiver of `cskpi.signals.department_service_levels_changed`: measure the affected records
    again, in the background (in-process mode: after the commit, before the response)."""
    remeasure_request(department=department, since=since)
    transaction.on_commit(_kick)


def zone_changed(*, department, **kwargs) -> None:
    """Receiver of `cskpi.signals.department_timezone_changed`: local business hours are other instants."""
    if DepartmentCalendar.objects.filter(department=department).exists() or \
            SlaPolicy.objects.filter(department=department).exists():
        service_levels_changed(department=department, since=None)


def _kick() -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        tasks.remeasure_records.apply()
        return
    try:
        tasks.remeasure_records.delay()
    except Exception:  # noqa: BLE001 - broker down: the request is in the database, the sweep runs it
        logger.warning("could not queue the remeasure; the sweep will pick it up", exc_info=True)
