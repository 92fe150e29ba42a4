"""Concurrent upserts of overlapping keys on PostgreSQL: no error, no duplicate, a serialisable result."""

import random
import threading
from collections import Counter

import pytest
from django.db import connection
from rest_framework.test import APIClient

from cskpi.services import token_issue, user_grants_upsert
from ingestion.models import Interaction
from tests.factories import DepartmentFactory
from tests.ingestion.factories import interaction_payload

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 6
KEYS = 60  # keys 0..29 carry updated_at, 30..59 do not (last write wins)
ROUNDS = 3


def _version(key: int, thread: int, round_: int) -> dict:
    item = interaction_payload(external_id=f"K{key}", topic=f"t{thread}-r{round_}", wait_seconds=thread)
    if key < KEYS // 2:
        item["updated_at"] = f"2026-03-02T10:{round_:02d}:{thread:02d}Z"
    return item


def test_overlapping_concurrent_batches(db):
    DepartmentFactory(slug="cskh-hn")
    user = user_grants_upsert(username="ingester", grants=[("cskh-hn", "ingest")])
    token = token_issue(user=user)
    barrier = threading.Barrier(THREADS)
    outcomes: list[tuple[int, int, int, list]] = []
    failures: list = []
    lock = threading.Lock()

    def worker(thread: int) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        rng = random.Random(thread)
        try:
            for round_ in range(ROUNDS):
                batch = [_version(key, thread, round_) for key in range(KEYS)]
                rng.shuffle(batch)
                barrier.wait(timeout=30)
                response = client.post("/api/v1/interactions", batch, format="json")
                with lock:
                    if response.status_code != 200:
                        failures.append((thread, response.status_code, response.content[:300]))
                    else:
                        outcomes.append((thread, round_, response.json()))
        except Exception as exc:  # noqa: BLE001 - reported below
            with lock:
                failures.append((thread, repr(exc)))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert failures == []
    assert len(outcomes) == THREADS * ROUNDS

    rows = {r.external_id: r for r in Interaction.objects.all()}
    assert len(rows) == KEYS == Interaction.objects.values("source", "external_id").distinct().count()
    created = Counter(i["external_id"] for _, _, body in outcomes for i in body["items"] if i["result"] == "created")
    assert created == Counter({f"K{k}": 1 for k in range(KEYS)})

    # Versioned keys end on the newest version, whatever the commit order.
    for key in range(KEYS // 2):
        assert rows[f"K{key}"].topic == f"t{THREADS - 1}-r{ROUNDS - 1}"
    # Unversioned keys: batches are atomic, so every one of them holds the same (last committed) batch.
    last = {rows[f"K{key}"].topic for key in range(KEYS // 2, KEYS)}
    assert len(last) == 1 and last.pop().endswith(f"-r{ROUNDS - 1}")
