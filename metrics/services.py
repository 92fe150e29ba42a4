"""Writes of the KPI engine: marking changed buckets dirty, and recomputing them."""

import logging
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from metrics.models import DirtyBucket

logger = logging.getLogger(__name__)

QUARTER = timedelta(minutes=15)
_QUARTER_SECONDS = 900
KICK_FLAG = "metrics:recompute-queued"


def quarter_floor(moment: datetime) -> datetime:
    """The UTC start of the 15-minute bucket holding `moment` (aware)."""
    ts = int(moment.timestamp()) // _QUARTER_SECONDS * _QUARTER_SECONDS
    return datetime.fromtimestamp(ts, tz=UTC)


def dirty_buckets_mark(*, record_type: str, marks: Iterable[tuple[int, datetime]]) -> int:
    """Mark the quarter-hours holding these (department id, anchor time) pairs as needing recompute.

    Call inside the transaction that changes the records, so the marks commit with them. A mark on
    an already-dirty bucket gives it a new version (and clears any claim), so a worker that is
    recomputing the old version leaves the row for another pass.
    """
    keys = {(department_id, quarter_floor(anchor)) for department_id, anchor in marks}
    if not keys:
        return 0
    now = timezone.now()
    version = secrets.randbits(62)
    DirtyBucket.objects.bulk_create(
        [
            DirtyBucket(
                record_type=record_type, department_id=department_id, quarter_start=quarter,
                version=version, first_marked_at=now, marked_at=now,
            )
            for department_id, quarter in sorted(keys)
        ],
        update_conflicts=True,
        unique_fields=["record_type", "department", "quarter_start"],
        update_fields=["version", "marked_at", "claimed_until", "attempts", "failed_at", "last_error"],
    )
    return len(keys)


def recompute_kick_on_commit() -> None:
    """After the current transaction commits, get the dirty buckets recomputed.

    In-process mode (no REDIS_URL) recomputes before the response returns. With a broker, one
    task is queued for many requests (a short-lived cache flag coalesces them); if the broker is
    down the marks are safe in the database and the beat sweep finds them later.
    """
    transaction.on_commit(_kick)


def _kick() -> None:
    from metrics import tasks

    if settings.CELERY_TASK_ALWAYS_EAGER:
        tasks.recompute_dirty_buckets.apply()
        return
    try:
        if cache.add(KICK_FLAG, 1, timeout=30):
            tasks.recompute_dirty_buckets.delay()
    except Exception:  # noqa: BLE001 - broker or cache down: the sweep picks the marks up later
        logger.warning("could not queue the recompute; the sweep will pick it up", exc_info=True)


def department_buckets_invalidate(*, department_id: int) -> None:
    """Mark every quarter-hour holding a record of the department dirty (e.g. its zone changed)."""
    from ingestion.registry import RECORD_KINDS

    for kind in RECORD_KINDS.values():
        anchors = kind.model.objects.filter(department_id=department_id).values_list(kind.anchor, flat=True)
        dirty_buckets_mark(record_type=kind.record_type, marks=((department_id, a) for a in anchors.iterator()))
    recompute_kick_on_commit()


def dirty_buckets_recompute() -> int:
    """Recompute the aggregates of every claimable dirty bucket; returns how many were done.

    Until the aggregates exist (KPI engine issue) there is nothing to recompute from them.
    """
    return 0
