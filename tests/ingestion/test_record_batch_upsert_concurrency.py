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


def test_racing_for_a_key_across_departments_never_moves_another_departments_record(db):
    """An ingest-only caller of A and staff writing the same new key into B at the same moment:
    whoever commits first, the A caller never overwrites B's record (403) and staff may move it."""
    DepartmentFactory(slug="cskh-hn")
    DepartmentFactory(slug="cskh-hcm")
    tokens = {
        "a": token_issue(user=user_grants_upsert(username="ingest-a", grants=[("cskh-hn", "ingest")])),
        "staff": token_issue(user=user_grants_upsert(username="root", staff=True)),
    }
    rounds = 25
    barrier = threading.Barrier(2)
    seen: dict[str, list] = {"a": [], "staff": []}
    failures: list = []

    def worker(who: str, department: str) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens[who]}")
        try:
            for n in range(rounds):
                barrier.wait(timeout=30)
                response = client.post("/api/v1/interactions",
                                        [interaction_payload(department, external_id=f"R{n}")], format="json")
                body = response.json()
                seen[who].append((response.status_code, body["items"][0]["result"] if response.status_code == 200
                                  else [e["code"] for e in body["errors"]]))
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append((who, repr(exc)))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=("a", "cskh-hn")),
               threading.Thread(target=worker, args=("staff", "cskh-hcm"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert failures == []
    for n in range(rounds):
        a, staff = seen["a"][n], seen["staff"][n]
        assert a in ((200, "created"), (403, ["record_in_other_department"]))
        # staff always wins in the end: it creates the record, or moves A's freshly created one
        assert staff == ((200, "updated") if a[0] == 200 else (200, "created"))
    assert set(Interaction.objects.values_list("department__slug", flat=True)) == {"cskh-hcm"}
    assert Interaction.objects.count() == rounds
