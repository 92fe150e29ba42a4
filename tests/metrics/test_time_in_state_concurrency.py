"""Concurrent writers of one agent's events, with a recompute running meanwhile (PostgreSQL): the
intervals end up those of the final event set, with no lock between the writers."""

import random
import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from cskpi.services import token_issue, user_grants_upsert
from metrics.catalog import KPIS
from metrics.selectors import DepartmentScope, KpiQuery, kpi_series_get
from metrics.services import OPEN_STATES_MARKED, dirty_buckets_recompute
from tests.factories import DepartmentFactory
from tests.metrics.test_time_in_state import TIMEOUT, reference

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

START = datetime(2026, 3, 2, tzinfo=UTC)
NOW = START + timedelta(days=2)
THREADS = 4


def test_concurrent_writers_and_a_recompute_give_the_final_sets_intervals(monkeypatch, settings):
    settings.CSKPI_PRESENCE_TIMEOUT_SECONDS = TIMEOUT
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    cache.delete(OPEN_STATES_MARKED)
    department = DepartmentFactory(slug="cskh-hn", timezone="Asia/Ho_Chi_Minh")
    token = token_issue(user=user_grants_upsert(username="writer", grants=[("cskh-hn", "ingest")]))
    failures: list = []
    done = threading.Event()

    def writer(thread: int) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        rng = random.Random(thread)
        try:
            for round_ in range(6):
                # Interleaved events of the same two agents from every thread; some move earlier ones.
                batch = [{"external_id": f"t{thread}-{n}", "department": "cskh-hn", "agent": f"a-{n % 2}",
                          "status": rng.choice(["available", "busy", "away", "offline"]),
                          "at": (START + timedelta(minutes=rng.randrange(0, 36 * 60))).isoformat()}
                         for n in range(round_ * 3, round_ * 3 + 5)]
                response = client.post("/api/v1/agent-events", batch, format="json")
                if response.status_code != 200:
                    failures.append((thread, response.status_code, response.content[:300]))
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append((thread, repr(exc)))
        finally:
            connection.close()

    def recomputer() -> None:
        try:
            while not done.is_set():
                dirty_buckets_recompute(time_budget=5)
        except Exception as exc:  # noqa: BLE001
            failures.append(("recompute", repr(exc)))
        finally:
            connection.close()

    background = threading.Thread(target=recomputer)
    background.start()
    threads = [threading.Thread(target=writer, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    done.set()
    background.join(timeout=120)
    assert failures == []
    dirty_buckets_recompute(time_budget=60)

    for granularity in ("hour", "day"):
        query = KpiQuery(kpis=(KPIS["agent_busy_time"], KPIS["agent_online_time"]),
                         scopes=(DepartmentScope(department),), start=START, end=NOW, zone="UTC",
                         granularity=granularity, group_by=("agent",))
        results = kpi_series_get(query=query)["results"]
        for kpi in ("agent_busy_time", "agent_online_time"):
            expected = reference(kpi=kpi, now=NOW, departments=[department], start=START, end=NOW,
                                 zone=ZoneInfo("UTC"), granularity=granularity, group_by=("agent",), agents=(),
                                 agent_scope=None)
            got = {(r["group"]["agent"],): r for r in results if r["kpi"] == kpi}
            assert set(got) <= set(expected)
            for agent, ((value, _), periods) in expected.items():
                if agent not in got:  # offline all along: no row
                    assert value == 0
                    continue
                assert got[agent]["value"] == pytest.approx(value)
                series = {datetime.fromisoformat(p["start"]): p["value"] for p in got[agent]["series"]}
                assert series == pytest.approx({p: v for p, (v, _) in periods.items()})
