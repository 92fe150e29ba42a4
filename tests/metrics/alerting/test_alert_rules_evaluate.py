"""Evaluation: a rule's KPI over its rolling window (read through kpi_series_get) moves it ok →
pending → firing → ok; each transition is an event holding the numbers, checked here against a
plain-Python count of the raw records; webhooks only on firing and resolved."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from metrics.alerting.models import AlertEvent, WebhookDelivery
from metrics.alerting.services import alert_rule_create, alert_rule_update, alert_rules_evaluate, next_state
from tests.metrics.alerting.conftest import SECRET
from tests.metrics.records import cashout_build, interaction_build, recompute_all, records_store

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 5, 4, 10, 7, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def no_recompute_kick(monkeypatch):
    """Evaluate only when the test says, at the time it says (the hook itself is tested below)."""
    monkeypatch.setattr("metrics.services.alert_evaluation_kick", lambda **kwargs: None)


def reference_window(now: datetime, seconds: int) -> tuple[datetime, datetime]:
    """Quarter-hours overlapping [now − window, now], computed on epoch seconds."""
    def floor(t: float) -> datetime:
        return datetime.fromtimestamp(t - t % 900, tz=UTC)
    return floor(now.timestamp() - seconds), floor(now.timestamp()) + timedelta(minutes=15)


def in_window(records, anchor: str, now: datetime, seconds: int):
    start, end = reference_window(now, seconds)
    return [r for r in records if start <= getattr(r, anchor) < end]


def rule(department, **fields):
    base = dict(name="", kpi="interactions", window_seconds=900, condition="above", threshold=10,
                min_sample_size=0, for_evaluations=1, webhook_url="", secret="", enabled=True)
    return alert_rule_create(department=department, **{**base, **fields})


def events(r):
    return list(AlertEvent.objects.filter(rule=r).order_by("at", "id"))


def test_next_state_needs_for_evaluations_breaches_in_a_row():
    assert next_state(state="ok", breaches=0, breaching=True, for_evaluations=3) == ("pending", 1)
    assert next_state(state="pending", breaches=1, breaching=True, for_evaluations=3) == ("pending", 2)
    assert next_state(state="pending", breaches=2, breaching=True, for_evaluations=3) == ("firing", 3)
    assert next_state(state="pending", breaches=2, breaching=False, for_evaluations=3) == ("ok", 0)
    assert next_state(state="firing", breaches=5, breaching=True, for_evaluations=3) == ("firing", 6)
    assert next_state(state="firing", breaches=5, breaching=False, for_evaluations=3) == ("ok", 0)
    assert next_state(state="ok", breaches=0, breaching=True, for_evaluations=1) == ("firing", 1)


def test_error_rate_goes_pending_firing_then_resolves_as_data_changes(department, receiver):
    r = rule(department, kpi="cashout_error_rate", window_seconds=3600, threshold=50, for_evaluations=2,
             min_sample_size=3, webhook_url=receiver.url, secret=SECRET)
    stored = [cashout_build(department=department, requested_at=NOW - timedelta(minutes=m), status=s)
              for m, s in ((5, "failed"), (20, "failed"), (50, "failed"), (55, "succeeded"))]
    # Outside the window (more than an hour and a quarter before): never counted.
    stored.append(cashout_build(department=department, requested_at=NOW - timedelta(minutes=90), status="succeeded"))
    records_store(stored)

    def reference(now):
        settled = [c for c in in_window(stored, "requested_at", now, 3600) if c.status in ("succeeded", "failed")]
        return sum(c.status == "failed" for c in settled) / len(settled) * 100, len(settled)

    assert alert_rules_evaluate(now=NOW) == 1
    assert alert_rules_evaluate(now=NOW + timedelta(minutes=1)) == 1
    assert alert_rules_evaluate(now=NOW + timedelta(minutes=2)) == 0  # still firing: no new event
    pending, firing = events(r)
    assert (pending.previous_state, pending.state, firing.state) == ("ok", "pending", "firing")
    value, sample = reference(NOW + timedelta(minutes=1))
    assert (firing.value, firing.sample_size) == (pytest.approx(value), sample) == (pytest.approx(75.0), 4)
    assert (firing.threshold, firing.condition, firing.window_seconds) == (50, "above", 3600)
    assert (firing.window_start, firing.window_end) == reference_window(NOW + timedelta(minutes=1), 3600)

    more = [cashout_build(department=department, requested_at=NOW - timedelta(minutes=m), status="succeeded")
            for m in (1, 2, 3)]
    stored += more
    records_store(more)
    assert alert_rules_evaluate(now=NOW + timedelta(minutes=3)) == 1
    resolved = events(r)[-1]
    value, sample = reference(NOW + timedelta(minutes=3))
    assert (resolved.previous_state, resolved.state) == ("firing", "ok")
    assert (resolved.value, resolved.sample_size) == (pytest.approx(value), sample) == (pytest.approx(3 / 7 * 100), 7)
    # A webhook for firing and for resolved, none for pending.
    assert set(WebhookDelivery.objects.values_list("event_id", flat=True)) == {firing.id, resolved.id}
    r.refresh_from_db()
    assert (r.state, r.breaches, r.last_value) == ("ok", 0, pytest.approx(value))


def test_an_absence_rule_fires_when_data_stops_and_resolves_when_it_returns(department):
    """"No interaction in the last 15 minutes": interactions, PT15M, below 1."""
    r = rule(department, kpi="interactions", window_seconds=900, condition="below", threshold=1)
    records_store([interaction_build(department=department, created_at=NOW - timedelta(minutes=4))])
    assert alert_rules_evaluate(now=NOW) == 0  # one in the window: ok
    later = NOW + timedelta(minutes=30)
    assert alert_rules_evaluate(now=later) == 1
    (fired,) = events(r)
    assert (fired.state, fired.value, fired.sample_size) == ("firing", 0, 0)
    records_store([interaction_build(department=department, created_at=later - timedelta(minutes=1))])
    assert alert_rules_evaluate(now=later + timedelta(seconds=30)) == 1
    assert (events(r)[-1].state, events(r)[-1].value) == ("ok", 1)


def test_change_above_compares_with_the_window_just_before(department):
    r = rule(department, kpi="interactions", window_seconds=3600, condition="change_above", threshold=100)
    now = datetime(2026, 5, 4, 10, 0, 0, tzinfo=UTC)  # window [09:00, 10:15), the one before [07:45, 09:00)
    before = [interaction_build(department=department, created_at=now - timedelta(minutes=m)) for m in (70, 80, 90, 100)]
    current = [interaction_build(department=department, created_at=now - timedelta(minutes=m)) for m in range(1, 60, 6)]
    records_store(before + current)
    assert alert_rules_evaluate(now=now) == 1
    (fired,) = events(r)
    start, end = reference_window(now, 3600)
    baseline = [i for i in before + current if start - (end - start) <= i.created_at < start]
    value = [i for i in before + current if start <= i.created_at < end]
    assert (fired.value, fired.baseline_value) == (len(value), len(baseline)) == (10, 4)
    assert fired.change_percent == pytest.approx((10 - 4) / 4 * 100)
    type(r).objects.filter(id=r.id).update(threshold=-50, condition="change_below")
    assert alert_rules_evaluate(now=now + timedelta(seconds=1)) == 1  # +150 % is not below -50 %: resolved


def test_too_small_a_sample_is_not_a_breach(department):
    r = rule(department, kpi="cashout_error_rate", window_seconds=3600, threshold=10, min_sample_size=5)
    records_store([cashout_build(department=department, requested_at=NOW - timedelta(minutes=m), status="failed")
                   for m in (1, 2, 3, 4)])
    assert alert_rules_evaluate(now=NOW) == 0
    records_store([cashout_build(department=department, requested_at=NOW - timedelta(minutes=6), status="failed")])
    assert alert_rules_evaluate(now=NOW) == 1 and events(r)[0].sample_size == 5


def test_filters_and_other_departments_do_not_count(department, other_department):
    r = rule(department, kpi="interactions", threshold=1, agent="a-1", channel="chat")
    records_store([
        interaction_build(department=department, created_at=NOW - timedelta(minutes=2), agent="a-1", channel="chat"),
        interaction_build(department=department, created_at=NOW - timedelta(minutes=3), agent="a-2", channel="chat"),
        interaction_build(department=department, created_at=NOW - timedelta(minutes=3), agent="a-1", channel="phone"),
        *[interaction_build(department=other_department, created_at=NOW - timedelta(minutes=3), agent="a-1",
                            channel="chat") for _ in range(5)],
    ])
    assert alert_rules_evaluate(now=NOW) == 0
    r.refresh_from_db()
    assert (r.last_value, r.last_sample_size) == (1, 1)


def test_disabling_a_firing_rule_resolves_it(department, receiver):
    r = rule(department, condition="below", threshold=1, webhook_url=receiver.url, secret=SECRET)
    assert alert_rules_evaluate(now=NOW) == 1
    alert_rule_update(rule=r, enabled=False)
    fired, ended = events(r)
    assert (ended.previous_state, ended.state, ended.reason) == ("firing", "ok", "disabled")
    assert WebhookDelivery.objects.filter(event=ended).exists()
    assert alert_rules_evaluate(now=NOW + timedelta(minutes=5)) == 0  # disabled: not evaluated


def test_a_recompute_evaluates_the_departments_rules(department, monkeypatch, settings,
                                                   django_capture_on_commit_callbacks):
    from metrics.alerting.services import alert_evaluation_kick

    monkeypatch.setattr("metrics.services.alert_evaluation_kick", alert_evaluation_kick)
    settings.CELERY_TASK_ALWAYS_EAGER = True  # in-process, as without a broker (the worker test covers the queue)
    r = rule(department, kpi="interactions", window_seconds=900, threshold=1)
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        records_store([interaction_build(department=department, created_at=now) for _ in range(2)])
    (fired,) = events(r)  # evaluated in-process (no broker here) by the recompute, on the real clock
    assert (fired.state, fired.value) == ("firing", 2)


def test_beat_leaves_a_rule_with_changes_waiting_for_recompute_to_the_recompute(department):
    """An ingestion backlog is not an absence: beat does not read a window whose records are stored
    but not yet aggregated (the evaluation after their recompute does)."""
    r = rule(department, kpi="interactions", window_seconds=2700, condition="below", threshold=1)
    records_store([interaction_build(department=department, created_at=NOW - timedelta(minutes=2))], then=None)
    assert alert_rules_evaluate(now=NOW, defer_to_recompute=True) == 0
    r.refresh_from_db()
    assert (r.state, r.last_evaluated_at) == ("ok", None)  # not read at all
    recompute_all()
    assert alert_rules_evaluate(now=NOW, defer_to_recompute=True) == 0
    r.refresh_from_db()
    assert (r.state, r.last_value) == ("ok", 1)
    # Without the check the same kind of backlog reads as silence and fires, in a window read from the
    # cubes: at 11:50:30 the window is 11:00-12:00 UTC, the hour cube. (A window no cube fits, such as
    # 09:15-10:15 above, is read from the raw records, where stored records count at once.)
    records_store([interaction_build(department=department, created_at=NOW + timedelta(minutes=98))], then=None)
    assert alert_rules_evaluate(now=NOW + timedelta(minutes=103), defer_to_recompute=True) == 0
    assert alert_rules_evaluate(now=NOW + timedelta(minutes=103)) == 1
    assert events(r)[0].value == 0


def test_a_mean_kpi_rule_reads_the_mean_over_the_window(department):
    r = rule(department, kpi="average_handle_time", window_seconds=1800, threshold=350)
    stored = [interaction_build(department=department, created_at=NOW - timedelta(minutes=m), handle_seconds=h)
              for m, h in ((1, 300), (10, 700), (25, 520), (35, 50), (80, 9000))]
    records_store(stored)
    assert alert_rules_evaluate(now=NOW) == 1
    (fired,) = events(r)
    counted = [i.handle_seconds for i in in_window(stored, "created_at", NOW, 1800)]
    assert (fired.value, fired.sample_size) == (pytest.approx(sum(counted) / len(counted)), len(counted))
    assert len(counted) == 4  # 80 minutes ago is outside [09:30, 10:15)
