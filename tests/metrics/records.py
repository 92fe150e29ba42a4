"""Raw records written the way ingestion writes them: derived columns filled, marks in the same
transaction, recompute kicked after commit (in-process in tests without a broker)."""

import hashlib
import itertools
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from ingestion.changes import record_changes_mark
from ingestion.choices import RecordType
from ingestion.models import Cashout, Interaction, SurveyResponse
from metrics.services import dirty_buckets_recompute

_ids = itertools.count(1)


def _hash(fields: dict) -> str:
    return hashlib.md5(repr(sorted(fields.items())).encode()).hexdigest()


def _seconds(later: datetime | None, anchor: datetime) -> float | None:
    return None if later is None else (later - anchor).total_seconds()


def interaction_build(*, department, created_at: datetime, channel: str = "phone", agent: str | None = "a-1",
                      status: str = "resolved", first_response_after: float | None = 60,
                      resolved_after: float | None = 600, wait_seconds: float | None = 20,
                      handle_seconds: float | None = 300, contact_count: int = 1, self_service: bool = False,
                      external_id: str | None = None, topic: str | None = None, customer: str | None = None,
                      customer_region: str | None = None) -> Interaction:
    first = created_at + timedelta(seconds=first_response_after) if first_response_after is not None else None
    resolved = created_at + timedelta(seconds=resolved_after) if resolved_after is not None else None
    fields = dict(
        department=department, source="api", external_id=external_id or f"i-{next(_ids)}", channel=channel,
        agent=agent, topic=topic, customer=customer, customer_region=customer_region, created_at=created_at, first_response_at=first, resolved_at=resolved, status=status,
        wait_seconds=wait_seconds, handle_seconds=handle_seconds, contact_count=contact_count,
        self_service=self_service, first_response_seconds=_seconds(first, created_at),
        resolution_seconds=_seconds(resolved, created_at),
        # The departments these builders write for have no calendar (open 24/7) and no SLA policy.
        first_response_business_seconds=_seconds(first, created_at),
        resolution_business_seconds=_seconds(resolved, created_at),
    )
    return Interaction(**fields, content_hash=_hash(fields), received_at=timezone.now())


def survey_build(*, department, submitted_at: datetime, kind: str = "csat", score: float = 5,
                 agent: str | None = "a-1", channel: str | None = "chat",
                 external_id: str | None = None) -> SurveyResponse:
    fields = dict(department=department, source="api", external_id=external_id or f"s-{next(_ids)}", kind=kind,
                  score=score, submitted_at=submitted_at, agent=agent, channel=channel)
    return SurveyResponse(**fields, content_hash=_hash(fields), received_at=timezone.now())


def cashout_build(*, department, requested_at: datetime, status: str = "succeeded", channel: str | None = "app",
                  processing_after: float | None = 120, response_after: float | None = 30,
                  external_id: str | None = None) -> Cashout:
    completed = requested_at + timedelta(seconds=processing_after) if processing_after is not None else None
    first = requested_at + timedelta(seconds=response_after) if response_after is not None else None
    fields = dict(department=department, source="api", external_id=external_id or f"c-{next(_ids)}",
                  customer="cust-1", amount=Decimal("100000"), currency="VND", channel=channel,
                  requested_at=requested_at, first_response_at=first, completed_at=completed, status=status,
                  processing_seconds=_seconds(completed, requested_at),
                  response_seconds=_seconds(first, requested_at))
    return Cashout(**fields, content_hash=_hash(fields), received_at=timezone.now())


ANCHOR = {Interaction: "created_at", SurveyResponse: "submitted_at", Cashout: "requested_at"}
RECORD_TYPE = {Interaction: RecordType.INTERACTION, SurveyResponse: RecordType.SURVEY,
               Cashout: RecordType.CASHOUT}


def records_store(records, *, old_places=(), then: str | None = "recompute") -> None:
    """Save records (new or changed) and mark their buckets, plus `old_places` [(record, department_id,
    anchor)] a change moved them away from, in one transaction. The marks kick the recompute after
    commit, as ingestion's do (metrics.receivers; a test inside the test transaction never commits);
    "recompute" also recomputes here and now, as the eager task would."""
    with transaction.atomic():
        marks: dict = {}
        for record in records:
            record.save()
            marks.setdefault(type(record), []).append((record.department_id, getattr(record, ANCHOR[type(record)])))
        for record, department_id, anchor in old_places:
            marks.setdefault(type(record), []).append((department_id, anchor))
        for model, pairs in marks.items():
            record_changes_mark(record_type=RECORD_TYPE[model], marks=pairs)
    if then == "recompute":
        recompute_all()


def recompute_all() -> int:
    return dirty_buckets_recompute(time_budget=60).buckets


def system_checks_upsert(items: list[dict]) -> dict:
    """System checks written through ingestion's real upsert (validation, the series' successor marks):
    the interval KPI is exact only with those marks, which `records_store` does not write."""
    from ingestion.fields import SYSTEM_CHECK
    from ingestion.services import record_batch_upsert, record_batch_validate

    return record_batch_upsert(spec=SYSTEM_CHECK, rows=record_batch_validate(spec=SYSTEM_CHECK, items=items))
