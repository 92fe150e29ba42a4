"""Webhook attempts against a real HTTP receiver on loopback: the signature verifies, a failure is
retried with backoff and delivered once, a lost attempt is redone, the SSRF rule is applied again at
send time after resolving, and the retry period ends in `failed`."""

import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from metrics.alerting import deliveries, webhooks
from metrics.alerting.deliveries import _claim, webhook_delivery_attempt
from metrics.alerting.models import AlertEvent, WebhookDelivery
from metrics.alerting.services import alert_rule_create, alert_rules_evaluate
from tests.metrics.alerting.conftest import SECRET
from tests.metrics.alerting.receiver import Receiver, signature_verifies

pytestmark = pytest.mark.django_db



@pytest.fixture(autouse=True)
def no_recompute_kick(monkeypatch):
    monkeypatch.setattr("metrics.services.alert_evaluation_kick", lambda **kwargs: None)


def firing_event(department, url: str) -> AlertEvent:
    """An absence rule on an empty department fires at once: one event with a delivery."""
    rule = alert_rule_create(department=department, name="absence", kpi="interactions", window_seconds=900,
                             condition="below", threshold=1, min_sample_size=0, for_evaluations=1,
                             webhook_url=url, secret=SECRET, enabled=True)
    assert alert_rules_evaluate(now=timezone.now()) == 1
    return AlertEvent.objects.get(rule=rule)


def test_the_signature_verifies_and_the_body_is_the_event(department, receiver, manager):
    event = firing_event(department, receiver.url)
    result = webhook_delivery_attempt(event_id=event.id)
    assert (result.sent, result.status) == (True, "delivered")
    (request,) = receiver.requests
    assert request.headers["X-Cskpi-Event-Id"] == str(event.id)
    assert request.headers["Content-Type"] == "application/json"
    assert signature_verifies(secret=SECRET, header=request.headers["X-Cskpi-Signature"], body=request.body)
    assert not signature_verifies(secret="another-secret-0000", header=request.headers["X-Cskpi-Signature"],
                                  body=request.body)
    body = json.loads(request.body)
    assert (body["id"], body["type"], body["state"], body["value"], body["sample_size"]) == (
        str(event.id), "alert.firing", "firing", 0, 0)
    assert body["rule"]["window"] == "PT15M" and body["rule"]["department"] == "cskh-hn"
    assert body["window_start"] == event.window_start.isoformat()
    log = manager.get(f"/api/v1/alert-events/{event.id}/deliveries").json()
    assert (log["status"], log["attempts"]) == ("delivered", 1)
    assert [(a["number"], a["outcome"], a["status_code"], a["address"]) for a in log["results"]] == [
        (1, "delivered", 200, "127.0.0.1")]
    # Idempotent: running the attempt again sends nothing.
    assert webhook_delivery_attempt(event_id=event.id).sent is False and len(receiver.requests) == 1


def test_a_500_then_a_200_is_retried_with_backoff_and_delivered_once(department, manager, settings):
    receiver = Receiver(statuses=[500])
    try:
        event = firing_event(department, receiver.url)
        first = webhook_delivery_attempt(event_id=event.id)
        assert (first.sent, first.status) == (True, "pending")
        delivery = WebhookDelivery.objects.get()
        delay = (delivery.next_attempt_at - receiver_time(delivery)).total_seconds()
        assert 0.9 * settings.CSKPI_WEBHOOK_RETRY_BASE_SECONDS <= delay <= 1.1 * settings.CSKPI_WEBHOOK_RETRY_BASE_SECONDS + 1
        assert webhook_delivery_attempt(event_id=event.id).sent is False  # not due yet
        later = delivery.next_attempt_at + timedelta(seconds=1)
        assert webhook_delivery_attempt(event_id=event.id, now=later).status == "delivered"
        assert webhook_delivery_attempt(event_id=event.id, now=later + timedelta(hours=1)).sent is False
        assert receiver.event_ids() == [str(event.id)] * 2
        log = manager.get(f"/api/v1/alert-events/{event.id}/deliveries").json()
        assert [(a["outcome"], a["status_code"]) for a in log["results"]] == [("http_error", 500), ("delivered", 200)]
        assert AlertEvent.objects.count() == 1
    finally:
        receiver.stop()


def receiver_time(delivery):
    return delivery.attempt_log.get(number=1).finished_at


def test_the_backoff_doubles_and_stops_after_the_retry_period(department, settings):
    settings.CSKPI_WEBHOOK_RETRY_BASE_SECONDS = 10
    settings.CSKPI_WEBHOOK_RETRY_MAX_DELAY_SECONDS = 3600
    delays = [deliveries.retry_delay(n) for n in range(1, 12)]
    for n, delay in enumerate(delays, start=1):
        assert 0.9 * min(10 * 2 ** (n - 1), 3600) <= delay <= 1.1 * min(10 * 2 ** (n - 1), 3600)
    settings.CSKPI_WEBHOOK_RETRY_FOR_SECONDS = 0  # give up at the first failure
    receiver = Receiver(statuses=[503])
    try:
        event = firing_event(department, receiver.url)
        assert webhook_delivery_attempt(event_id=event.id).status == "failed"
        assert webhook_delivery_attempt(event_id=event.id, now=timezone.now() + timedelta(days=2)).sent is False
    finally:
        receiver.stop()


def test_no_answer_within_the_timeout_is_a_timeout(department, settings):
    settings.CSKPI_WEBHOOK_TIMEOUT_SECONDS = 0.5
    receiver = Receiver(hold_first=True)
    try:
        event = firing_event(department, receiver.url)
        assert webhook_delivery_attempt(event_id=event.id).status == "pending"
        attempt = WebhookDelivery.objects.get().attempt_log.get()
        assert attempt.outcome == "timeout" and attempt.duration_ms < 2000
    finally:
        receiver.stop()


def test_an_attempt_lost_with_its_worker_is_logged_and_redone_after_the_lease(department, receiver, settings):
    event = firing_event(department, receiver.url)
    claimed = datetime.now(UTC)
    _claim(event_id=event.id, now=claimed)  # as a worker killed right after claiming would leave it
    assert webhook_delivery_attempt(event_id=event.id, now=claimed + timedelta(seconds=1)).sent is False  # leased
    after_lease = claimed + timedelta(seconds=settings.CSKPI_WEBHOOK_LEASE_SECONDS + 1)
    assert webhook_delivery_attempt(event_id=event.id, now=after_lease).status == "delivered"
    outcomes = list(WebhookDelivery.objects.get().attempt_log.order_by("number").values_list("outcome", flat=True))
    assert outcomes == ["lost", "delivered"]
    assert receiver.event_ids() == [str(event.id)]


def test_the_ssrf_rule_is_checked_again_at_send_time(department, receiver, settings):
    event = firing_event(department, receiver.url)
    settings.CSKPI_WEBHOOK_ALLOWED_HOSTS = []  # loopback no longer exempt
    assert webhook_delivery_attempt(event_id=event.id).status == "pending"
    attempt = WebhookDelivery.objects.get().attempt_log.get()
    assert attempt.outcome == "refused" and "https_required" in attempt.error
    assert receiver.requests == []


def test_a_name_that_rebinds_to_loopback_after_creation_is_refused_without_connecting(
        department, manager, monkeypatch):
    """At creation hooks.example.net resolved to a public address; at send time it resolves to
    127.0.0.1: refused, and nothing connects (the sender only connects to a checked address)."""
    answers = iter(["93.184.216.34", "127.0.0.1"])
    real = socket.getaddrinfo

    def resolve(host, port, *args, **kwargs):
        if host == "hooks.example.net":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(webhooks.socket, "getaddrinfo", resolve)
    connects = []
    monkeypatch.setattr(webhooks.socket, "create_connection", lambda *a, **k: connects.append(a))
    created = manager.post("/api/v1/alert-rules", {
        "department": department.slug, "kpi": "interactions", "window": "PT15M", "condition": "below",
        "threshold": 1, "webhook_url": "https://hooks.example.net/cskpi", "secret": SECRET}, format="json")
    assert created.status_code == 201, created.json()
    assert alert_rules_evaluate() == 1
    event = AlertEvent.objects.get()
    webhook_delivery_attempt(event_id=event.id)
    attempt = WebhookDelivery.objects.get().attempt_log.get()
    assert attempt.outcome == "refused" and "127.0.0.1" in attempt.error and connects == []


def test_the_verification_snippet_in_the_docs_verifies_a_real_delivery(department, receiver):
    docs = (Path(__file__).resolve().parents[3] / "docs" / "alerts.md").read_text()
    snippet = docs.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(snippet, namespace)  # noqa: S102 - our own documentation
    event = firing_event(department, receiver.url)
    webhook_delivery_attempt(event_id=event.id)
    (request,) = receiver.requests
    verify = namespace["verify"]
    assert verify(SECRET, request.headers["X-Cskpi-Signature"], request.body)
    assert not verify(SECRET, request.headers["X-Cskpi-Signature"], request.body + b" ")
    assert not verify("wrong-secret-0123456", request.headers["X-Cskpi-Signature"], request.body)


def test_the_sweep_queues_only_overdue_unleased_pending_deliveries(department, receiver):
    from metrics.alerting.deliveries import webhook_deliveries_due

    event = firing_event(department, receiver.url)
    delivery = WebhookDelivery.objects.get()
    now = delivery.next_attempt_at
    assert webhook_deliveries_due(now=now) == []  # just due: its own task is on the way
    late = now + timedelta(seconds=31)
    assert webhook_deliveries_due(now=late) == [event.id]
    WebhookDelivery.objects.update(claimed_until=late + timedelta(seconds=5))
    assert webhook_deliveries_due(now=late) == []  # an attempt holds it
    WebhookDelivery.objects.update(claimed_until=None, status="delivered")
    assert webhook_deliveries_due(now=late) == []


def test_https_goes_to_the_checked_address_with_the_certificate_checked_against_the_host(
        department, tmp_path, monkeypatch, settings):
    """A TLS receiver on loopback with a certificate for hooks.test: the sender connects to the
    address it resolved and checked, and still verifies the certificate for the URL's host name."""
    import ssl
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=hooks.test", "-addext", "subjectAltName=DNS:hooks.test", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    real_resolve = socket.getaddrinfo
    monkeypatch.setattr(webhooks.socket, "getaddrinfo", lambda host, port, *a, **k: (
        [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))] if host in ("hooks.test", "other.test")
        else real_resolve(host, port, *a, **k)))
    trusting = ssl.create_default_context(cafile=cert)  # the receiver's self-signed certificate
    monkeypatch.setattr(webhooks.ssl, "create_default_context", lambda: trusting)
    settings.CSKPI_WEBHOOK_ALLOWED_HOSTS = ["hooks.test", "other.test"]  # resolves to loopback
    receiver = Receiver(tls=server_tls, host="hooks.test")
    try:
        event = firing_event(department, receiver.url)
        assert webhook_delivery_attempt(event_id=event.id).status == "delivered"
        (request,) = receiver.requests
        assert request.headers["Host"] == f"hooks.test:{receiver.port}"
        assert signature_verifies(secret=SECRET, header=request.headers["X-Cskpi-Signature"], body=request.body)
        # The same receiver under a name its certificate does not hold: refused by TLS, retried later.
        other = firing_event(department, receiver.url.replace("hooks.test", "other.test"))
        assert webhook_delivery_attempt(event_id=other.id).status == "pending"
        failed = WebhookDelivery.objects.get(event=other).attempt_log.get()
        assert failed.outcome == "connection_error" and "certificate" in failed.error.lower()
        assert len(receiver.requests) == 1
    finally:
        receiver.stop()
