"""record_batch_upsert as a service: retries after a deadlock, results without HTTP."""

import pytest
from django.db import OperationalError

import ingestion.services as services
from ingestion.fields import INTERACTION
from ingestion.models import Interaction
from tests.ingestion.factories import interaction_payload

pytestmark = pytest.mark.django_db


class _Deadlock(Exception):
    sqlstate = "40P01"


def test_a_deadlocked_transaction_is_retried(department, monkeypatch):
    rows = services.record_batch_validate(spec=INTERACTION, items=[interaction_payload(external_id="D")])
    real = services._upsert
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            real(*args, **kwargs)  # the first attempt writes, then dies: its writes must roll back
            raise OperationalError("deadlock detected") from _Deadlock()
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "_upsert", flaky)
    outcome = services.record_batch_upsert(spec=INTERACTION, rows=rows)
    assert calls["n"] == 2
    assert outcome["created"] == 1
    assert Interaction.objects.filter(external_id="D").count() == 1


def test_other_database_errors_are_not_retried(department, monkeypatch):
    rows = services.record_batch_validate(spec=INTERACTION, items=[interaction_payload()])
    calls = {"n": 0}

    def broken(*args, **kwargs):
        calls["n"] += 1
        raise OperationalError("connection lost")

    monkeypatch.setattr(services, "_upsert", broken)
    with pytest.raises(OperationalError):
        services.record_batch_upsert(spec=INTERACTION, rows=rows)
    assert calls["n"] == 1
    assert Interaction.objects.count() == 0
