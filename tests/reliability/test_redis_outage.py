"""Redis dies while platforms are ingesting: ingestion keeps accepting and storing records (the
change to recompute is recorded in PostgreSQL with the records), nothing answers 500, and when
Redis comes back the backlog drains by itself and the aggregates equal a full rebuild.

A private redis-server on a free loopback port plays the broker, so it can be killed and
restarted without touching the machine's Redis."""

import random

import pytest

from cskpi.services import token_issue, user_grants_upsert
from ingestion.models import Interaction
from tests.ingestion.factories import interaction_payload
from tests.processes import http, service_env, start_beat, start_redis, start_web, start_worker, wait_until
from tests.reliability.aggregates import assert_cubes_equal_a_full_rebuild

pytestmark = [pytest.mark.worker, pytest.mark.fault, pytest.mark.django_db(transaction=True)]


def batch(department: str, rng: random.Random, size: int = 40) -> list[dict]:
    return [
        interaction_payload(department, created_at=f"2026-03-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
                                                    f"{rng.randint(0, 59):02d}:00+07:00",
                            first_response_at=..., resolved_at=..., status=rng.choice(["open", "abandoned"]),
                            channel=rng.choice(["phone", "chat"]), agent=f"a-{rng.randint(1, 4)}")
        for _ in range(size)
    ]


@pytest.fixture
def stack(tmp_path):
    redis = start_redis(tmp_path)
    env = service_env(redis_url=redis.url, CSKPI_SWEEP_SECONDS="1")
    processes = [start_web(tmp_path, env), start_worker(tmp_path, env), start_beat(tmp_path, env)]
    yield {"redis": redis, "web": processes[0], "tmp_path": tmp_path}
    for process in processes:
        process.stop()
    redis.stop()


def test_ingestion_survives_a_redis_outage_and_the_backlog_drains(department, stack):
    rng = random.Random(7)
    web, token = stack["web"].url, token_issue(user=user_grants_upsert(username="p", staff=True))
    sent: set[str] = set()

    def ingest(expect_up: bool) -> None:
        items = batch(department.slug, rng)
        status, headers, body = http("POST", f"{web}/api/v1/interactions", token=token, body=items)
        assert status != 500
        if status == 503:  # allowed while a dependency is down, never silently
            assert not expect_up and int(headers["Retry-After"]) > 0
            return
        assert status == 200, body
        sent.update(item["external_id"] for item in items)

    ingest(expect_up=True)
    stack["redis"].stop()
    for _ in range(5):
        ingest(expect_up=False)
    status, _, health = http("GET", f"{web}/api/v1/health")
    assert status == 503 and health["broker"].startswith("error")
    assert len(sent) >= 5 * 40, "ingestion stopped accepting while Redis was down"
    assert set(Interaction.objects.values_list("external_id", flat=True)) == sent

    status, _, backlog = http("GET", f"{web}/api/v1/status", token=token)
    assert status == 200 and backlog["pending_buckets"] > 0, backlog  # the changes wait, recorded

    # Redis returns; nothing else is sent: beat's sweep must find and drain the backlog by itself.
    stack["redis"] = start_redis(stack["tmp_path"], port=stack["redis"].port)

    def drained():
        status, _, body = http("GET", f"{web}/api/v1/status", token=token)
        return status == 200 and body["pending_buckets"] == 0 and body["failed_buckets"] == 0
    wait_until(drained, timeout=90, interval=0.5, what="the backlog draining after Redis returned")

    status, _, body = http("GET", f"{web}/api/v1/metrics?kpi=interactions&granularity=total"
                                  f"&start=2026-03-01&end=2026-03-29&department={department.slug}", token=token)
    assert status == 200, body
    assert body["results"][0]["value"] == len(sent)
    assert_cubes_equal_a_full_rebuild()
