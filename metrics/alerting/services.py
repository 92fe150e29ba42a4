"""Writes of alerting: rules (create, update, delete) and their evaluation into state transitions.

Evaluation reads the rule's KPI over its rolling window through the public KPI read API
(`kpi_series_get`, granularity total) and moves the rule ok → pending → firing → ok. Each
transition is an event; a transition to firing, and one from firing back to ok (resolved), also
gets a webhook delivery, written in the same transaction and sent after commit.
"""

import json
import logging
import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from cskpi.celery import app as celery_app
from cskpi.errors import NotFoundError
from cskpi.models import Department
from ingestion.models import RecordChange
from metrics.alerting.choices import AlertCondition, AlertState
from metrics.alerting.deliveries import webhook_delivery_create
from metrics.alerting.models import AlertEvent, AlertRule
from metrics.alerting.windows import duration_format, window_bounds
from metrics.catalog import KPIS
from metrics.periods import Granularity
from metrics.selectors import DepartmentScope, KpiQuery, kpi_series_get

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Condition:
    on_change: bool  # compares the percentage change vs the window before, not the value
    breached: Callable[[float, float], bool]


CONDITIONS: dict[str, Condition] = {
    AlertCondition.ABOVE: Condition(False, operator.gt),
    AlertCondition.BELOW: Condition(False, operator.lt),
    AlertCondition.CHANGE_ABOVE: Condition(True, operator.gt),
    AlertCondition.CHANGE_BELOW: Condition(True, operator.lt),
}


# --- rules -----------------------------------------------------------------------------------

RULE_FIELDS = ("name", "kpi", "agent", "channel", "check_name", "window_seconds", "condition", "threshold", "min_sample_size",
               "for_evaluations", "webhook_url", "secret", "enabled")


def alert_rule_create(*, department: Department, created_by=None, **fields) -> AlertRule:
    """Store a rule (its fields already validated by the input serializer)."""
    rule = AlertRule(department=department, created_by=created_by, state_since=timezone.now(),
                     **{k: v for k, v in fields.items() if k in RULE_FIELDS})
    rule.save()
    return rule


def alert_rule_update(*, rule: AlertRule, **fields) -> AlertRule:
    """Change some fields. Disabling a rule that is not ok ends its episode: an `ok` event (with the
    resolved webhook when it was firing), so a receiver never keeps an incident open forever."""
    with transaction.atomic():
        rule = AlertRule.objects.select_for_update(of=("self",)).select_related("department").filter(id=rule.id).first()
        if rule is None:  # deleted meanwhile
            raise NotFoundError("No such alert rule, or not one you may read.")
        for name, value in fields.items():
            if name in RULE_FIELDS:
                setattr(rule, name, value)
        if not rule.enabled and rule.state != AlertState.OK:
            now = timezone.now()
            start, end = window_bounds(window_seconds=rule.window_seconds, now=now)
            _transition(rule=rule, state=AlertState.OK, reading=Reading(rule.last_value, rule.last_sample_size or 0,
                                                                         None, None, start, end, False),
                        now=now, reason="disabled")
            rule.breaches = 0
        rule.save()
    return rule


def alert_rule_delete(*, rule: AlertRule) -> None:
    rule.delete()


# --- evaluation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    value: float | None
    sample_size: int
    baseline_value: float | None
    change_percent: float | None
    window_start: datetime
    window_end: datetime
    breaching: bool


def _kpi_total(rule: AlertRule, start: datetime, end: datetime) -> tuple[float | None, int]:
    query = KpiQuery(
        kpis=(KPIS[rule.kpi],), scopes=(DepartmentScope(rule.department),), start=start, end=end,
        zone=rule.department.timezone, granularity=Granularity.TOTAL,
        agents=(rule.agent,) if rule.agent else (), channels=(rule.channel,) if rule.channel else (),
        checks=(rule.check_name,) if rule.check_name else (),
    )
    result = kpi_series_get(query=query)["results"][0]
    return result["value"], result["sample_size"]


def rule_read(*, rule: AlertRule, now: datetime) -> Reading:
    """The rule's KPI over its window ending `now`, and whether it breaches the condition.

    Not enough data (a null value, fewer than `min_sample_size`, or for a change condition a
    baseline that is null, zero or too small) is not a breach."""
    start, end = window_bounds(window_seconds=rule.window_seconds, now=now)
    condition = CONDITIONS[rule.condition]
    value, sample = _kpi_total(rule, start, end)
    enough = value is not None and sample >= rule.min_sample_size
    baseline = change = None
    measured = value
    if condition.on_change:
        baseline, baseline_sample = _kpi_total(rule, start - (end - start), start)
        if baseline is not None and baseline != 0 and value is not None:
            change = (value - baseline) / abs(baseline) * 100
        enough = enough and change is not None and baseline_sample >= rule.min_sample_size
        measured = change
    breaching = bool(enough and condition.breached(measured, rule.threshold))
    return Reading(value, sample, baseline, change, start, end, breaching)


def next_state(*, state: str, breaches: int, breaching: bool, for_evaluations: int) -> tuple[str, int]:
    """(state, consecutive breaches) after one evaluation."""
    if not breaching:
        return AlertState.OK, 0
    breaches += 1
    if state == AlertState.FIRING or breaches >= for_evaluations:
        return AlertState.FIRING, breaches
    return AlertState.PENDING, breaches


def _changes_waiting(rule: AlertRule, now: datetime) -> bool:
    """Whether records in the rule's windows are stored but not yet in the aggregates."""
    start, end = window_bounds(window_seconds=rule.window_seconds, now=now)
    if CONDITIONS[rule.condition].on_change:
        start -= end - start
    return RecordChange.objects.filter(department_id=rule.department_id, failed_at__isnull=True,
                                      quarter_start__gte=start, quarter_start__lt=end).exists()


def alert_rule_evaluate(*, rule_id, now: datetime | None = None, defer_to_recompute: bool = False
                        ) -> AlertEvent | None:
    """Evaluate one enabled rule; the event of its transition, if any.

    The rule row is locked for the evaluation, so concurrent evaluations (after a recompute and by
    beat) run one after the other and the later one reads the later data. With
    `defer_to_recompute` (beat), a rule whose window has changes waiting for recompute is left to
    the evaluation that follows that recompute: read now, an ingestion backlog would look like
    missing data (an absence rule would fire, then resolve seconds later)."""
    with transaction.atomic():
        rule = (AlertRule.objects.select_for_update(of=("self",)).select_related("department")
                .filter(id=rule_id, enabled=True).first())
        if rule is None:
            return None
        now = now or timezone.now()
        if defer_to_recompute and _changes_waiting(rule, now):
            return None
        reading = rule_read(rule=rule, now=now)
        state, rule.breaches = next_state(state=rule.state, breaches=rule.breaches, breaching=reading.breaching,
                                          for_evaluations=rule.for_evaluations)
        event = None
        if state != rule.state:
            event = _transition(rule=rule, state=state, reading=reading, now=now, reason="evaluation")
        rule.last_evaluated_at, rule.last_value, rule.last_sample_size = now, reading.value, reading.sample_size
        rule.save(update_fields=["state", "breaches", "state_since", "last_evaluated_at", "last_value",
                                 "last_sample_size"])
        return event


def _transition(*, rule: AlertRule, state: str, reading: Reading, now: datetime, reason: str) -> AlertEvent:
    previous = rule.state
    event = AlertEvent(
        rule=rule, department=rule.department, kpi=rule.kpi, agent=rule.agent, channel=rule.channel,
        check_name=rule.check_name,
        condition=rule.condition, threshold=rule.threshold, window_seconds=rule.window_seconds, state=state,
        previous_state=previous, value=reading.value, sample_size=reading.sample_size,
        baseline_value=reading.baseline_value, change_percent=reading.change_percent,
        window_start=reading.window_start, window_end=reading.window_end, at=now, reason=reason,
    )
    rule.state, rule.state_since = state, now
    notify = rule.webhook_url and (state == AlertState.FIRING or previous == AlertState.FIRING)
    if notify:
        event.payload = json.dumps(_payload(rule, event), separators=(",", ":"), allow_nan=False)
    event.save()
    if notify:
        webhook_delivery_create(event=event, now=now)
    return event


def _payload(rule: AlertRule, event: AlertEvent) -> dict:
    return {
        "id": str(event.id),
        "type": "alert.firing" if event.state == AlertState.FIRING else "alert.resolved",
        "occurred_at": event.at.isoformat(),
        "rule": {
            "id": str(rule.id), "name": rule.name, "department": rule.department.slug, "kpi": rule.kpi,
            "filters": {"agent": rule.agent or None, "channel": rule.channel or None,
                        "check": rule.check_name or None},
            "condition": rule.condition, "threshold": rule.threshold, "window": duration_format(rule.window_seconds),
            "min_sample_size": rule.min_sample_size, "for_evaluations": rule.for_evaluations,
        },
        "state": event.state,
        "previous_state": event.previous_state,
        "value": event.value,
        "sample_size": event.sample_size,
        "baseline_value": event.baseline_value,
        "change_percent": event.change_percent,
        "window_start": event.window_start.isoformat(),
        "window_end": event.window_end.isoformat(),
        "reason": event.reason,
    }


def alert_rules_evaluate(*, department_id: int | None = None, now: datetime | None = None,
                         defer_to_recompute: bool = False) -> int:
    """Evaluate every enabled rule (of one department); returns the number of transitions.

    A rule whose evaluation raises is logged and skipped: it must not stop the others."""
    rules = AlertRule.objects.filter(enabled=True)
    if department_id is not None:
        rules = rules.filter(department_id=department_id)
    transitions = 0
    for rule_id in rules.order_by("created_at").values_list("id", flat=True):
        try:
            transitions += alert_rule_evaluate(rule_id=rule_id, now=now,
                                               defer_to_recompute=defer_to_recompute) is not None
        except Exception:  # noqa: BLE001 - one broken rule must not block the department's others
            logger.exception("evaluation of alert rule %s failed", rule_id)
    return transitions


EVALUATE_TASK = "metrics.alerting.evaluate_department_alerts"


def _evaluation_flag(department_id: int) -> str:
    return f"alerts:evaluation-queued:{department_id}"


def alert_evaluation_kick(*, department_id: int) -> None:
    """A recompute of the department completed: evaluate its rules on the new numbers.

    In-process mode evaluates now; with a broker one task per department is queued (a short-lived
    cache flag coalesces the kicks of many recompute groups; the task clears it before it reads)."""
    try:
        if not AlertRule.objects.filter(department_id=department_id, enabled=True).exists():
            return
        if settings.CELERY_TASK_ALWAYS_EAGER:
            alert_rules_evaluate(department_id=department_id)
        elif cache.add(_evaluation_flag(department_id), 1, timeout=30):
            celery_app.send_task(EVALUATE_TASK, args=(department_id,))  # by name: the task module imports this one
    except Exception:  # noqa: BLE001 - never fails the recompute that kicked it; beat catches up
        logger.warning("could not evaluate or queue the alert rules of department %s; beat will",
                       department_id, exc_info=True)


def evaluation_flag_clear(*, department_id: int) -> None:
    try:
        cache.delete(_evaluation_flag(department_id))
    except Exception:  # noqa: BLE001 - cache down: the flag expires by itself
        pass


