"""Nothing lost: platforms send every version of every record, duplicated and shuffled, from
several threads at once, through gunicorn, with a real Celery worker and beat recomputing. The test
keeps a manifest of every key it sent; afterwards the stored keys equal the manifest, each stored
record is its newest version, and the incrementally maintained cubes equal a full rebuild."""

import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings

from cskpi.services import token_issue, user_grants_upsert
from ingestion.models import Cashout, Interaction, SurveyResponse
from tests.ingestion.factories import cashout_payload, interaction_payload, survey_payload
from tests.processes import http, service_env, start_beat, start_web, start_worker, wait_until
from tests.reliability.aggregates import assert_cubes_equal_a_full_rebuild

pytestmark = [pytest.mark.worker, pytest.mark.fault, pytest.mark.django_db(transaction=True)]

BASE = datetime(2026, 3, 1, tzinfo=UTC)
KEYS_PER_TYPE = 150
THREADS = 4


def iso(moment: datetime) -> str:
    return moment.isoformat()


def interaction_version(rng, key, department, version):
    created = BASE + timedelta(minutes=rng.randint(0, 14 * 24 * 60))
    status = rng.choice(["open", "resolved", "abandoned"])
    return interaction_payload(
        department, external_id=key, updated_at=iso(BASE + timedelta(seconds=version)), created_at=iso(created),
        status=status, channel=rng.choice(["phone", "chat", "zalo"]), agent=rng.choice(["a-1", "a-2", ...]),
        first_response_at=iso(created + timedelta(seconds=rng.randint(5, 900))) if status != "abandoned" else ...,
        resolved_at=iso(created + timedelta(seconds=rng.randint(900, 9000))) if status == "resolved" else ...,
        contact_count=rng.randint(1, 3),
        # Customers and regions change between versions: the distinct sets and first contacts follow.
        customer=rng.choice(["cu-1", "cu-2", "cu-3", "cu-4", ...]), customer_region=rng.choice(["north", "south", ...]),
    )


def survey_version(rng, key, department, version):
    kind = rng.choice(["csat", "nps"])
    return survey_payload(
        department, external_id=key, updated_at=iso(BASE + timedelta(seconds=version)), kind=kind,
        score=rng.randint(1, 5) if kind == "csat" else rng.randint(0, 10),
        submitted_at=iso(BASE + timedelta(minutes=rng.randint(0, 14 * 24 * 60))),
    )


def cashout_version(rng, key, department, version):
    requested = BASE + timedelta(minutes=rng.randint(0, 14 * 24 * 60))
    status = rng.choice(["pending", "succeeded", "failed"])
    done = status in ("succeeded", "failed")
    return cashout_payload(
        department, external_id=key, updated_at=iso(BASE + timedelta(seconds=version)),
        requested_at=iso(requested), status=status, first_response_at=iso(requested + timedelta(seconds=20)),
        completed_at=iso(requested + timedelta(seconds=rng.randint(30, 3000))) if done else ...,
        failure_reason="bank timeout" if status == "failed" else ...,
    )


BUILDERS = {"interactions": (interaction_version, Interaction), "surveys": (survey_version, SurveyResponse),
            "cashouts": (cashout_version, Cashout)}


@pytest.fixture
def stack(tmp_path):
    from cskpi.celery import app

    app.control.purge()
    env = service_env(redis_url=settings.REDIS_URL, CSKPI_SWEEP_SECONDS="1")
    processes = [start_web(tmp_path, env, workers=2), start_worker(tmp_path, env, concurrency=2),
                 start_beat(tmp_path, env)]
    yield processes[0].url
    for process in processes:
        process.stop()


def test_concurrent_duplicated_shuffled_versions_lose_nothing(department, other_department, stack):
    rng = random.Random(2026)
    departments = [department.slug, other_department.slug]
    token = token_issue(user=user_grants_upsert(username="platform", staff=True))
    manifest: dict[str, set[str]] = {plural: set() for plural in BUILDERS}
    newest: dict[tuple[str, str], dict] = {}
    sends: list[tuple[str, dict]] = []
    version = 0
    for plural, (build, _) in BUILDERS.items():
        for n in range(KEYS_PER_TYPE):
            key = f"{plural[:3]}-{n}"
            for _ in range(rng.randint(1, 3)):  # versions may move the record in time and department
                version += 1
                payload = build(rng, key, rng.choice(departments), version)
                sends += [(plural, payload)] * rng.randint(1, 2)  # and some are sent twice
                newest[(plural, key)] = payload
            manifest[plural].add(key)
    rng.shuffle(sends)

    batches = []
    for plural in BUILDERS:
        items = [payload for p, payload in sends if p == plural]
        while items:
            size = rng.randint(1, 60)
            batches.append((plural, items[:size]))
            items = items[size:]
    rng.shuffle(batches)

    failures: list = []

    def client(share):
        for plural, items in share:
            for _ in range(10):
                status, headers, body = http("POST", f"{stack}/api/v1/{plural}", token=token, body=items)
                if status != 503:
                    break
            if status != 200:
                failures.append((status, body))

    threads = [threading.Thread(target=client, args=(batches[i::THREADS],)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not failures, failures[:3]

    for plural, (_, model) in BUILDERS.items():
        assert set(model.objects.values_list("external_id", flat=True)) == manifest[plural]
        for record in model.objects.select_related("department"):
            expected = newest[(plural, record.external_id)]
            assert record.updated_at == datetime.fromisoformat(expected["updated_at"])
            assert record.department.slug == expected["department"]

    def drained():
        status, _, body = http("GET", f"{stack}/api/v1/status", token=token)
        return status == 200 and body["pending_buckets"] == 0 and body["failed_buckets"] == 0
    wait_until(drained, timeout=120, interval=0.5, what="the recompute backlog draining")
    assert_cubes_equal_a_full_rebuild()
