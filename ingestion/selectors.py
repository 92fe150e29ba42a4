"""Reads of ingestion: records back, scoped to what the caller may read, keyset-paginated."""

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db.models import F, Q, QuerySet
from django.utils import timezone

from cskpi.access import (
    Access,
    DepartmentAccess,
    PresenceView,
    agent_detail_check,
    presence_view,
    read_scopes_resolve,
)
from cskpi.choices import ReadLevel
from cskpi.errors import NotFoundError
from ingestion.choices import ONLINE_STATUSES, AgentStatus
from ingestion.fields import AGENT_EVENT, RecordSpec
from ingestion.presence import current_state, presence_timeout


@dataclass(frozen=True)
class RecordQuery:
    departments: tuple[str, ...] = ()
    start: datetime | None = None  # on the record type's time (its anchor, or the start of a span)
    end: datetime | None = None
    # Public name -> the values a record may have (any of them; empty: no filter), of the filterable fields.
    filters: dict[str, tuple[str, ...]] = field(default_factory=dict)
    cursor: str | None = None
    page_size: int = 100


def _scopes(*, access: Access, departments: tuple[str, ...]) -> list[DepartmentAccess]:
    return read_scopes_resolve(access=access, slugs=departments)


def _scope_q(spec: RecordSpec, scopes: list[DepartmentAccess]) -> Q:
    q = Q(pk__in=[])
    owner = spec.owner
    for scope in scopes:
        if scope.read_level >= ReadLevel.DEPARTMENT:
            q |= Q(department_id=scope.department.id)
        elif scope.read_level == ReadLevel.AGENT and owner and scope.agent:
            q |= Q(department_id=scope.department.id, **{owner: scope.agent})
    return q


def _queryset(spec: RecordSpec) -> QuerySet:
    return spec.model.objects.annotate(department_slug=F("department__slug"))


def cursor_encode(anchor: datetime, pk: int) -> str:
    raw = json.dumps([anchor.isoformat(), pk]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_decode(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        anchor, pk = json.loads(raw)
        moment = datetime.fromisoformat(anchor)
        if moment.tzinfo is None or type(pk) is not int:
            raise ValueError
        # In UTC: PostgreSQL refuses an offset beyond ±15:59 (a 503), and an instant before year 1 in UTC has none.
        return moment.astimezone(UTC), pk
    except (ValueError, TypeError, UnicodeDecodeError, OverflowError):
        # 404 like DRF's own cursor pagination: the page this cursor names does not exist.
        raise NotFoundError("Invalid cursor.", [
            {"field": "cursor", "code": "invalid_cursor", "message": "Use the `next` link of a previous page."}
        ]) from None


def record_list(*, spec: RecordSpec, access: Access, query: RecordQuery) -> tuple[list, dict, str | None]:
    """-> (one page of records, scopes by department id, cursor of the next page or None)."""
    scopes = _scopes(access=access, departments=query.departments)
    owner = next((f.name for f in spec.fields if f.owner), None)
    if owner is not None and query.filters.get(owner):
        agent_detail_check(scopes=scopes, agents=tuple(query.filters[owner]))
    anchor = spec.time
    queryset = _queryset(spec).filter(_scope_q(spec, scopes))
    if query.start is not None:
        queryset = queryset.filter(**{f"{anchor}__gte": query.start})
    if query.end is not None:
        queryset = queryset.filter(**{f"{anchor}__lt": query.end})
    for name, value in query.filters.items():
        filterable = spec.field_named(name)
        if filterable is None or not filterable.filterable:
            raise ValueError(f"{name} is not a filter of {spec.plural}")  # the filter serializer allows none
        if value:
            queryset = queryset.filter(**{f"{filterable.target}__in": value})
    if query.cursor:
        moment, pk = cursor_decode(query.cursor)
        queryset = queryset.filter(Q(**{f"{anchor}__gt": moment}) | Q(**{anchor: moment, "pk__gt": pk}))
    page = list(queryset.order_by(anchor, "pk")[: query.page_size + 1])
    next_cursor = None
    if len(page) > query.page_size:
        page = page[: query.page_size]
        last = page[-1]
        next_cursor = cursor_encode(getattr(last, anchor), last.pk)
    return page, {s.department.id: s for s in scopes}, next_cursor


def record_get(*, spec: RecordSpec, access: Access, source: str, external_id: str):
    """-> (record, scopes) or (None, {}) when missing or not readable (indistinguishable)."""
    if "\x00" in source or "\x00" in external_id:
        return None, {}  # no stored key holds a NUL (the validator refuses them; PostgreSQL cannot)
    scopes = access.readable()
    record = (
        _queryset(spec)
        .filter(_scope_q(spec, scopes), source=source, external_id=external_id)
        .first()
    )
    if record is None:
        return None, {}
    return record, {s.department.id: s for s in scopes}


# --- who is online now -----------------------------------------------------------------------
def agents_now_get(*, access: Access, departments: Sequence[str] = ()) -> dict:
    """Each agent's current status in the departments read (as `presence_view` lets the caller see
    it), since when, and the counts per status. An agent silent for longer than the presence timeout
    is offline, since its last event timed out. Events after now (clock skew) are not counted yet."""
    spec = AGENT_EVENT
    now, timeout = timezone.now(), presence_timeout()
    out = []
    for scope in read_scopes_resolve(access=access, slugs=departments):
        view = presence_view(scope=scope)
        events = spec.model.objects.filter(department_id=scope.department.id, at__lte=now)
        if view == PresenceView.SELF:
            agents = [scope.agent] if scope.agent else []
        else:
            agents = list(events.values_list("agent", flat=True).distinct().order_by("agent"))
        listed = []
        counts = dict.fromkeys(AgentStatus.values, 0)
        for agent in agents:
            # Newest first, read in small slices: a run of one status is rarely long.
            history = events.filter(agent=agent).order_by("-at", "-source", "-external_id").values_list(
                "status", "at").iterator(chunk_size=50)
            state = current_state(history, now=now, timeout=timeout)
            if state is None:
                continue
            status, since, last_at = state
            counts[status] += 1
            listed.append({"agent": agent, "status": status, "since": since, "last_event_at": last_at})
        out.append({
            "department": scope.department.slug,
            "counts": counts,
            "online": sum(n for status, n in counts.items() if status in ONLINE_STATUSES),
            "agents": None if view == PresenceView.COUNTS else listed,
        })
    return {"as_of": now, "timeout_seconds": int(timeout.total_seconds()), "departments": out}
