"""Alerts end to end with a real Celery worker and a real HTTP receiver on loopback: records
committed → recompute → evaluation (kicked by the recompute) → signed webhook; a 500 is retried and
delivered once per event id; a worker SIGKILLed while delivering redelivers the same event id and
no second event is made."""

import json
import os
import signal
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from metrics.alerting.models import AlertEvent, WebhookDelivery
from metrics.alerting.services import alert_rule_create
from metrics.services import KICK_FLAG
from tests.metrics.alerting.receiver import Receiver, signature_verifies
from tests.metrics.records import cashout_build, records_store
from tests.processes import service_env, start_worker, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SECRET = "worker-test-secret-0123"


@pytest.fixture(autouse=True)
def empty_queue():
    from cskpi.celery import app

    app.control.purge()
    cache.delete(KICK_FLAG)


@pytest.fixture
def worker_env():
    return service_env(redis_url=settings.REDIS_URL, CSKPI_WEBHOOK_ALLOWED_HOSTS="127.0.0.1",
                       CSKPI_WEBHOOK_RETRY_BASE_SECONDS="0.5", CSKPI_WEBHOOK_LEASE_SECONDS="2")


def error_rate_rule(department, url: str):
    return alert_rule_create(department=department, name="cashout errors", kpi="cashout_error_rate",
                             window_seconds=3600, condition="above", threshold=50, min_sample_size=2,
                             for_evaluations=1, webhook_url=url, secret=SECRET)


def cashouts(department, statuses):
    now = timezone.now()
    records_store([cashout_build(department=department, requested_at=now - timedelta(seconds=i), status=s)
                   for i, s in enumerate(statuses)], then="kick")


def test_firing_then_resolved_as_data_changes_signed_and_kicked_by_the_recompute(department, tmp_path,
                                                                                  worker_env):
    receiver = Receiver()
    worker = start_worker(tmp_path, worker_env, pool="prefork", concurrency=1)
    try:
        rule = error_rate_rule(department, receiver.url)
        cashouts(department, ["failed", "failed", "succeeded"])  # 66.7 % > 50
        wait_until(lambda: len(receiver.requests) >= 1, timeout=30, what="the firing webhook")
        cashouts(department, ["succeeded"] * 4)  # 2 / 7 = 28.6 %
        wait_until(lambda: len(receiver.requests) >= 2, timeout=30, what="the resolved webhook")
        time.sleep(1)
    finally:
        worker.stop()
        receiver.stop()
    firing, resolved = (json.loads(r.body) for r in receiver.requests)
    for request in receiver.requests:
        assert signature_verifies(secret=SECRET, header=request.headers["X-Cskpi-Signature"], body=request.body)
    assert (firing["type"], firing["value"], firing["sample_size"]) == ("alert.firing", pytest.approx(200 / 3), 3)
    assert (resolved["type"], resolved["value"], resolved["sample_size"]) == (
        "alert.resolved", pytest.approx(200 / 7), 7)
    events = list(AlertEvent.objects.filter(rule=rule).order_by("at"))
    assert [(e.previous_state, e.state) for e in events] == [("ok", "firing"), ("firing", "ok")]
    assert receiver.event_ids() == [str(e.id) for e in events]
    assert "evaluate_department_alerts" in worker.output()


def test_a_500_then_a_200_is_retried_and_delivered_once_per_event_id(department, tmp_path, worker_env):
    receiver = Receiver(statuses=[500])
    worker = start_worker(tmp_path, worker_env, pool="prefork", concurrency=1)
    try:
        error_rate_rule(department, receiver.url)
        cashouts(department, ["failed", "failed"])
        wait_until(lambda: WebhookDelivery.objects.filter(status="delivered").exists(), timeout=30,
                   what="the delivery after a retry")
        time.sleep(2)  # nothing more arrives once delivered
    finally:
        worker.stop()
        receiver.stop()
    (event,) = AlertEvent.objects.all()
    assert receiver.event_ids() == [str(event.id)] * 2
    delivery = WebhookDelivery.objects.get()
    assert list(delivery.attempt_log.order_by("number").values_list("outcome", "status_code")) == [
        ("http_error", 500), ("delivered", 200)]


def test_a_worker_killed_while_delivering_redelivers_the_same_event_id(department, tmp_path, worker_env):
    receiver = Receiver(hold_first=True)  # the first POST is held open: the worker is mid-send
    worker = start_worker(tmp_path, worker_env, pool="prefork", concurrency=1)
    try:
        error_rate_rule(department, receiver.url)
        cashouts(department, ["failed", "failed"])
        assert receiver.holding.wait(30), "the first webhook never arrived"
        for child in worker.children():
            os.kill(child, signal.SIGKILL)
        worker.wait_for_output("WorkerLostError")
        wait_until(lambda: WebhookDelivery.objects.filter(status="delivered").exists(), timeout=30,
                   what="the redelivery after the kill")
        time.sleep(1)
    finally:
        worker.stop()
        receiver.stop()
    (event,) = AlertEvent.objects.all()  # no second event
    assert receiver.event_ids() == [str(event.id)] * 2
    outcomes = list(WebhookDelivery.objects.get().attempt_log.order_by("number").values_list("outcome", flat=True))
    assert outcomes == ["lost", "delivered"]


def test_beat_fires_an_absence_rule_with_no_recompute_at_all(department, tmp_path, worker_env):
    """No interaction on the channel in the last 15 minutes: only the beat evaluation can notice."""
    from tests.metrics.records import interaction_build
    from tests.processes import start_beat

    env = {**worker_env, "CSKPI_ALERT_EVAL_SECONDS": "1"}
    receiver = Receiver()
    worker = start_worker(tmp_path, env, pool="prefork", concurrency=1)
    beat = start_beat(tmp_path, env)
    try:
        rule = alert_rule_create(department=department, name="zalo silent", kpi="interactions", channel="zalo",
                                 window_seconds=900, condition="below", threshold=1, webhook_url=receiver.url,
                                 secret=SECRET)
        wait_until(lambda: len(receiver.requests) >= 1, timeout=30, what="the firing webhook from beat")
        records_store([interaction_build(department=department, created_at=timezone.now(), channel="zalo")],
                      then="kick")
        wait_until(lambda: len(receiver.requests) >= 2, timeout=30, what="the resolved webhook")
    finally:
        beat.stop()
        worker.stop()
        receiver.stop()
    firing, resolved = (json.loads(r.body) for r in receiver.requests)
    assert (firing["type"], firing["value"], resolved["type"], resolved["value"]) == (
        "alert.firing", 0, "alert.resolved", 1)
    assert [e.state for e in AlertEvent.objects.filter(rule=rule).order_by("at")] == ["firing", "ok"]
    assert "evaluate_all_alerts" in worker.output()
