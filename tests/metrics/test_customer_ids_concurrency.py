"""Customer ids assigned concurrently on PostgreSQL: one id per customer, no error, no deadlock."""

import random
import threading

import pytest
from django.db import connection, transaction

from metrics.customers import customer_ids_get
from metrics.models import CustomerKey

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 4
CUSTOMERS = [f"c-{i}" for i in range(300)]


def test_concurrent_transactions_agree_on_every_id():
    barrier = threading.Barrier(THREADS)
    answers: list[dict] = []
    failures: list = []
    lock = threading.Lock()

    def worker(thread: int) -> None:
        rng = random.Random(thread)
        wanted = rng.sample(CUSTOMERS, 200)  # overlapping, in a different order each
        try:
            barrier.wait(timeout=30)
            with transaction.atomic():  # as the recompute does: inside a longer transaction
                ids = customer_ids_get(customers=wanted)
            with lock:
                answers.append(ids)
        except Exception as exc:  # noqa: BLE001 - reported below
            with lock:
                failures.append((thread, repr(exc)))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures
    stored = dict(CustomerKey.objects.values_list("customer", "id"))
    assert len(stored) == len({c for ids in answers for c in ids})
    for ids in answers:
        assert all(stored[c] == i for c, i in ids.items())
    assert len(set(stored.values())) == len(stored)
