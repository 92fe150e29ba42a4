"""Reads of alerting, scoped like every read: a caller sees a rule or event only if it may read the
numbers behind it (managers and staff: all of the department; viewers: rules without an agent
filter; agents: rules filtered on their own agent)."""

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import reduce
from operator import or_

from django.db.models import Q, QuerySet

from cskpi.access import Access
from cskpi.choices import ReadLevel
from cskpi.errors import NotFoundError
from metrics.alerting.models import AlertEvent, AlertRule, WebhookAttempt
from metrics.catalog import KPIS


def _visible(access: Access) -> Q | None:
    """The rules/events (both carry department and agent) the caller may read; None: nothing."""
    if access.is_staff:
        return Q()
    parts = []
    for grant in access.readable():
        # A rule on a KPI the grant may not read (MRR below managers) shows its values: hidden with it.
        readable = Q(kpi__in=[k.key for k in KPIS.values() if k.read_level <= grant.read_level])
        if grant.read_level >= ReadLevel.FULL:
            parts.append(Q(department_id=grant.department.id))
        elif grant.read_level == ReadLevel.DEPARTMENT:
            parts.append(Q(department_id=grant.department.id, agent="") & readable)
        elif grant.read_level == ReadLevel.AGENT and grant.agent:
            parts.append(Q(department_id=grant.department.id, agent=grant.agent) & readable)
    return reduce(or_, parts) if parts else None


def _scoped(queryset: QuerySet, access: Access) -> QuerySet:
    visible = _visible(access)
    return queryset.none() if visible is None else queryset.filter(visible)


def can_manage(*, access: Access, department_id: int) -> bool:
    """Managers of the department and staff create, change and delete its rules."""
    if access.is_staff:
        return True
    return any(g.department.id == department_id and g.read_level >= ReadLevel.FULL for g in access.readable())


def alert_rule_list(*, access: Access, department: str | None = None) -> QuerySet:
    rules = AlertRule.objects.select_related("department").order_by("created_at", "id")
    if department:
        rules = rules.filter(department__slug=department)
    return _scoped(rules, access)


def alert_rule_get(*, access: Access, rule_id) -> AlertRule | None:
    return _scoped(AlertRule.objects.select_related("department"), access).filter(id=rule_id).first()


@dataclass(frozen=True)
class EventQuery:
    rule: object = None
    department: str | None = None
    state: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    cursor: str | None = None
    page_size: int = 100


def cursor_encode(event: AlertEvent) -> str:
    return base64.urlsafe_b64encode(f"{event.at.isoformat()}|{event.id}".encode()).decode()


def cursor_decode(cursor: str) -> tuple[datetime, uuid.UUID] | None:
    try:
        at, event_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        moment = datetime.fromisoformat(at)
        # In UTC: PostgreSQL refuses an offset beyond ±15:59 (a 503), and an instant before year 1 in UTC has none.
        return (moment.astimezone(UTC), uuid.UUID(event_id)) if moment.tzinfo else None
    except (ValueError, UnicodeError, binascii.Error, OverflowError):
        return None


def alert_event_list(*, access: Access, query: EventQuery) -> tuple[list[AlertEvent], str | None]:
    """Newest first, one page; the cursor of the next page (or None)."""
    events = AlertEvent.objects.select_related("department", "delivery")
    if query.rule:
        events = events.filter(rule_id=query.rule)
    if query.department:
        events = events.filter(department__slug=query.department)
    if query.state:
        events = events.filter(state=query.state)
    if query.start:
        events = events.filter(at__gte=query.start)
    if query.end:
        events = events.filter(at__lt=query.end)
    if query.cursor:
        decoded = cursor_decode(query.cursor)
        if decoded is None:  # 404 like the record lists: the page this cursor names does not exist
            raise NotFoundError("Invalid cursor.", [
                {"field": "cursor", "code": "invalid_cursor", "message": "Use the `next` link of a previous page."}])
        at, event_id = decoded
        events = events.filter(Q(at__lt=at) | Q(at=at, id__lt=event_id))
    page = list(_scoped(events, access).order_by("-at", "-id")[:query.page_size + 1])
    more = len(page) > query.page_size
    page = page[:query.page_size]
    return page, cursor_encode(page[-1]) if more else None


def alert_event_get(*, access: Access, event_id) -> AlertEvent | None:
    return _scoped(AlertEvent.objects.select_related("department", "delivery"), access).filter(id=event_id).first()


def webhook_attempt_list(*, event: AlertEvent) -> list[WebhookAttempt]:
    return list(WebhookAttempt.objects.filter(delivery_id=event.id).order_by("number"))
