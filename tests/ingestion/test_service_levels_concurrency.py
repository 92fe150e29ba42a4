"""A calendar change waits for the batches measuring records with the old calendar (PostgreSQL): no
record is left measured with a calendar that was replaced before it committed."""

import threading
import time

import pytest
from django.db import connection, transaction

from cskpi.models import Department
from cskpi.services import department_calendar_put
from ingestion.fields import RECORD_SPECS
from ingestion.models import Interaction
from ingestion.service_levels import pending_remeasures_run
from ingestion.services import record_batch_upsert, record_batch_validate
from tests.factories import DepartmentFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CLOSED_AT_NIGHT = {"versions": [{"effective_from": "2026-01-01",
                                 "weekly": {d: [["08:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}}]}


def test_a_calendar_change_waits_for_a_batch_in_flight(db):
    DepartmentFactory(slug="cskh-hn", timezone="Asia/Ho_Chi_Minh")
    spec = RECORD_SPECS["interactions"]
    # Mon 2 Mar 2026 20:00-21:00 local: an hour of calendar time, closed under the new calendar.
    rows = record_batch_validate(spec=spec, items=[{
        "external_id": "i-1", "department": "cskh-hn", "channel": "chat", "status": "open",
        "created_at": "2026-03-02T13:00:00Z", "first_response_at": "2026-03-02T14:00:00Z"}])
    measured = threading.Event()
    release = threading.Event()
    changed_at: list[float] = []

    def ingest() -> None:
        try:
            with transaction.atomic():
                record_batch_upsert(spec=spec, rows=rows)  # measured 24/7: no calendar yet
                measured.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    def change() -> None:
        try:
            department_calendar_put(department=Department.objects.get(slug="cskh-hn"), body=CLOSED_AT_NIGHT)
            changed_at.append(time.monotonic())
        finally:
            connection.close()

    batch = threading.Thread(target=ingest)
    batch.start()
    assert measured.wait(timeout=30)
    writer = threading.Thread(target=change)
    writer.start()
    time.sleep(0.5)
    assert not changed_at, "the calendar changed while a batch measured with the old one was in flight"
    committed = time.monotonic()
    release.set()
    batch.join(timeout=30)
    writer.join(timeout=30)
    assert changed_at and changed_at[0] >= committed
    pending_remeasures_run(time_budget=30)  # the worker's pass after the change
    assert Interaction.objects.get().first_response_business_seconds == 0
