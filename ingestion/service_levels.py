"""Per-record numbers measured with the department's calendar and SLA policy.

Each record type declares its business durations and SLA clocks (`RecordSpec.business_durations`,
`RecordSpec.sla_clocks`); this module fills their columns:

- on write (`BatchMeasure`, called by the upsert for the rows it writes, under a shared
  lock on the departments' calendars and policies, with the compiled calendars cached per process
  and checked against their revision once per batch);
- again in the background after a calendar, policy or zone change (`records_remeasure`, for the
  records the change affects: `ServiceLevelRemeasure` says which);
- when a deadline passes (`overdue_records_mark`): a record still pending whose deadline is past
  becomes breached, without any new event. The beat runs it every CSKPI_SLA_SWEEP_SECONDS; it
  reads only the pending records due before now (a partial index), so each run costs what it flips.

Every change marks the record's quarter in the change log, so the KPI engine recomputes it.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import itemgetter
from time import monotonic
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Max, Min, Q
from django.utils import timezone

from cskpi.calendars import MICROS, BusinessCalendar, from_micros, micros, versions_load
from cskpi.choices import SlaClockKind
from cskpi.db import pg_cursor
from cskpi.models import Department, DepartmentCalendar, SlaPolicy
from cskpi.service_levels import SlaPolicyBody, sla_policy_load
from cskpi.services import service_levels_lock
from ingestion.changes import record_changes_mark, record_changes_mark_span
from ingestion.choices import ChangeScope, SlaState
from ingestion.fields import RECORD_SPECS, RecordSpec
from ingestion.models import ServiceLevelRemeasure

logger = logging.getLogger(__name__)

MET, BREACHED, PENDING = SlaState.MET.value, SlaState.BREACHED.value, SlaState.PENDING.value
MEASURED_SPECS: tuple[RecordSpec, ...] = tuple(s for s in RECORD_SPECS.values() if s.service_level_columns)


def now() -> datetime:
    """The clock SLA states are decided with (a test may replace it)."""
    return timezone.now()


# --- the departments' compiled calendars and policies ------------------------------------------
@dataclass(frozen=True)
class ServiceLevels:
    """What a department's records are measured with, compiled."""

    key: tuple  # (zone, calendar revision, policy revision): compiled again when it changes
    calendar: BusinessCalendar
    policy: SlaPolicyBody | None


# A department with neither calendar nor policy: open 24/7, no target (the OpenAPI examples use it).
NONE_SET = ServiceLevels((), BusinessCalendar([], ZoneInfo("UTC")), None)
_COMPILED: dict[int, ServiceLevels] = {}
_MAX_COMPILED = 2000


def service_levels_get(*, department_ids: Iterable[int]) -> dict[int, ServiceLevels]:
    """The departments' calendars and policies, compiled (cached per process by revision)."""
    found: dict[int, ServiceLevels] = {}
    rows = Department.objects.filter(id__in=set(department_ids)).values_list(
        "id", "timezone", "calendar__revision", "sla_policy__revision")
    for department_id, zone, calendar_revision, policy_revision in rows:
        key = (zone, calendar_revision, policy_revision)
        cached = _COMPILED.get(department_id)
        if cached is None or cached.key != key:
            if len(_COMPILED) >= _MAX_COMPILED:
                _COMPILED.clear()
            cached = _COMPILED[department_id] = _compile(department_id, key)
        found[department_id] = cached
    return found


def _compile(department_id: int, key: tuple) -> ServiceLevels:
    zone = ZoneInfo(key[0])
    stored = DepartmentCalendar.objects.filter(department_id=department_id).values_list("versions", flat=True).first()
    policy = SlaPolicy.objects.filter(department_id=department_id).values_list("body", flat=True).first()
    return ServiceLevels(key, BusinessCalendar(versions_load(stored or []), zone), sla_policy_load(policy))


# --- measuring rows ----------------------------------------------------------------------------
def rows_measure(*, spec: RecordSpec, rows: Iterable[dict], levels: dict[int, ServiceLevels],
                 moment: datetime) -> None:
    """Fill the service-level columns of typed rows (keyed by column) in place, as of `moment`.

    The hot path of the upsert (once per record written): column names and each department's targets
    are resolved once, an always-open clock is plain subtraction, and a calendar clock measures every
    duration and deadline of a record from one lookup of its anchor.
    """
    if not (spec.business_durations or spec.sla_clocks):
        return  # a record type with no business durations or SLA targets (agent events, checks, customers)
    anchor_column = spec.anchor
    duration_columns = [column for column, _ in spec.business_durations]
    duration_stops = [stop for _, stop in spec.business_durations]
    clocks = spec.sla_clocks
    state_columns = [c.state_column for c in clocks]
    due_columns = [c.due_column for c in clocks]
    clock_stops = [c.stop for c in clocks]
    exempt = [frozenset(c.exempt_statuses) for c in clocks]
    now_us = micros(moment)
    plans: dict[int, tuple] = {}
    for row in rows:
        department_id = row["department_id"]
        plan = plans.get(department_id)
        if plan is None:
            department = levels[department_id]
            policy = department.policy
            business_clock = tuple(policy is not None and policy.clock(c.target) == SlaClockKind.BUSINESS
                                   for c in clocks)
            plan = plans[department_id] = (department.calendar, policy, business_clock)
        calendar, policy, business_clock = plan
        anchor = micros(row[anchor_column])
        clock = calendar.clock_at(anchor)
        stops = tuple(None if row[c] is None else micros(row[c]) for c in duration_stops)
        if policy is None:
            targets = ()
        else:
            channel = row.get("channel")
            targets = tuple(None if row["status"] in exempt[k] else policy.target(c.target, channel)
                            for k, c in enumerate(clocks))
        if clock is None:
            spans = [None if s is None else max(s - anchor, 0) for s in stops]
            deadlines = [None if t is None else anchor + t * MICROS for t in targets]
        else:
            business_targets = tuple(t * MICROS if t is not None and business_clock[k] else None
                                     for k, t in enumerate(targets))
            spans, deadlines = clock.measure(anchor, stops, business_targets)
            deadlines = [d if business_clock[k] else (None if targets[k] is None else anchor + targets[k] * MICROS)
                         for k, d in enumerate(deadlines)]
        for column, span in zip(duration_columns, spans, strict=True):
            row[column] = None if span is None else span / MICROS
        if policy is None:
            for k in range(len(clocks)):
                row[state_columns[k]] = row[due_columns[k]] = None
            continue
        for k, due in enumerate(deadlines):
            if targets[k] is None:
                row[state_columns[k]] = row[due_columns[k]] = None
                continue
            row[due_columns[k]] = None if due is None else from_micros(due)
            stop = row[clock_stops[k]]
            if stop is not None:
                row[state_columns[k]] = MET if due is None or micros(stop) <= due else BREACHED
            else:
                row[state_columns[k]] = BREACHED if due is not None and now_us > due else PENDING


class BatchMeasure:
    """The upsert's step: fill the service-level columns of the rows it writes. Used inside the write
    transaction: on first use it locks the batch's departments' calendars and policies (shared), so
    they stay as read until the batch commits (a change waits), and reads them once for the batch."""

    def __init__(self, spec: RecordSpec, rows: Sequence[dict]):
        self.spec = spec
        self.department_ids = {row["department_id"] for row in rows} if spec.service_level_columns else set()
        self.levels: dict[int, ServiceLevels] | None = None
        self.moment = now()

    def __call__(self, rows: Sequence[dict]) -> None:
        if not rows or not self.department_ids:
            return
        if self.levels is None:
            service_levels_lock(department_ids=self.department_ids, shared=True)
            self.levels = service_levels_get(department_ids=self.department_ids)
        rows_measure(spec=self.spec, rows=rows, levels=self.levels, moment=self.moment)


# --- measuring stored records again ------------------------------------------------------------
def remeasure_request(*, department: Department, since: datetime | None) -> None:
    """Ask for the department's records from `since` (None: all) to be measured again. Call in the
    transaction of the change; a pending request widens to cover both."""
    stamp = timezone.now()
    version = secrets.randbits(62)
    pending = ServiceLevelRemeasure.objects.select_for_update().filter(department=department).first()
    if pending is None:
        ServiceLevelRemeasure.objects.create(department=department, since=since, version=version,
                                             requested_at=stamp)
        return
    if pending.since is not None and (since is None or since < pending.since):
        pending.since = since
    pending.version = version
    pending.claimed_until = None
    pending.save(update_fields=["since", "version", "claimed_until"])


_WINDOW = timedelta(days=7)


def records_remeasure(*, department_id: int, since: datetime | None, window: timedelta = _WINDOW,
                      progress=None) -> int:
    """Measure the department's records anchored from `since` (None: all) again with its calendar
    and policy as committed now; write and mark only those whose numbers changed. -> records read.

    One transaction per window of anchor time (a week), oldest first: the quarters a window marks are
    contiguous, so the KPI engine recomputes them as a few long spans. A record the upsert changed
    meanwhile is left as the upsert measured it (the write is guarded by its content hash).
    """
    read = 0
    for spec in MEASURED_SPECS:
        records = spec.model.objects.filter(department_id=department_id)
        if since is not None:
            records = records.filter(**{f"{spec.anchor}__gte": since})
        bounds = records.aggregate(lo=Min(spec.anchor), hi=Max(spec.anchor))
        if bounds["lo"] is None:
            continue
        columns = _read_columns(spec)
        level_columns = itemgetter(*spec.service_level_columns)
        start = bounds["lo"]
        while start <= bounds["hi"]:
            end = start + window
            with transaction.atomic():
                service_levels_lock(department_ids=[department_id], shared=True)
                levels = service_levels_get(department_ids=[department_id])
                if not levels:
                    return read  # deleted meanwhile
                fetched = _rows_read(records.filter(**{f"{spec.anchor}__gte": start, f"{spec.anchor}__lt": end}),
                                     ["id", "content_hash", *columns])
                stored = [level_columns(r) for r in fetched]
                rows_measure(spec=spec, rows=fetched, levels=levels, moment=now())
                changed = [r for r, old in zip(fetched, stored, strict=True) if level_columns(r) != old]
                written = _rows_update(spec=spec, rows=changed)
                if written:
                    # Every quarter from the first changed record to the last, those without records
                    # too: one contiguous span for the KPI engine, not a scatter of single quarters.
                    record_changes_mark_span(record_type=spec.record_type, department_id=department_id,
                                             scope=ChangeScope.SERVICE_LEVELS,
                                             start=min(r[spec.anchor] for r in written),
                                             end=max(r[spec.anchor] for r in written))
            read += len(fetched)
            if progress and fetched:
                progress(len(fetched))
            start = end
    return read


def _rows_read(records, names: list[str]) -> list[dict]:
    """The records' columns as dicts. On PostgreSQL read in binary: Django's own timestamptz loader
    parses text in Python, which was a third of measuring a year again (five timestamps per record)."""
    if connection.vendor != "postgresql":
        return list(records.values(*names))
    sql, params = records.values_list(*names).query.sql_with_params()
    with pg_cursor(connection) as cursor:
        cursor.execute(sql, params, binary=True)
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _read_columns(spec: RecordSpec) -> list[str]:
    needed = {"department_id", spec.anchor, "status", *spec.service_level_columns}
    needed |= {stop for _, stop in spec.business_durations} | {c.stop for c in spec.sla_clocks}
    if any(f.name == "channel" for f in spec.fields):
        needed.add("channel")
    return sorted(needed)


def _rows_update(*, spec: RecordSpec, rows: list[dict]) -> list[dict]:
    """Write the rows' service-level columns where the record is still the version read; -> those
    written."""
    if not rows:
        return []
    table = spec.model._meta.db_table
    columns = list(spec.service_level_columns)
    qn = connection.ops.quote_name
    if connection.vendor == "postgresql":
        fields = {f.column: f for f in spec.model._meta.concrete_fields}
        types = {c: fields[c].cast_db_type(connection).split("(")[0] for c in columns}
        with pg_cursor(connection) as cursor:
            cursor.execute(
                f"UPDATE {table} AS t SET " + ", ".join(f"{qn(c)} = v.{qn(c)}" for c in columns)
                + " FROM unnest(%b::bigint[], %b::text[], "
                + ", ".join(f"%b::{types[c]}[]" for c in columns)
                + f") AS v(id, content_hash, {', '.join(qn(c) for c in columns)}) "
                "WHERE t.id = v.id AND t.content_hash = v.content_hash RETURNING t.id",
                [[r["id"] for r in rows], [r["content_hash"] for r in rows], *[[r[c] for r in rows] for c in columns]],
            )
            written = {i for (i,) in cursor.fetchall()}
        return [r for r in rows if r["id"] in written]
    adapt = connection.ops.adapt_datetimefield_value
    written_rows = []
    with connection.cursor() as cursor:
        for r in rows:
            values = [adapt(r[c]) if isinstance(r[c], datetime) else r[c] for c in columns]
            cursor.execute(
                f"UPDATE {table} SET " + ", ".join(f"{qn(c)} = %s" for c in columns)
                + " WHERE id = %s AND content_hash = %s", [*values, r["id"], r["content_hash"]])
            if cursor.rowcount:
                written_rows.append(r)
    return written_rows


@dataclass(frozen=True)
class RemeasureOutcome:
    departments: int
    records: int
    exhausted: bool


def pending_remeasures_run(*, time_budget: float | None = None) -> RemeasureOutcome:
    """Work through the departments waiting to be measured again, until none is left or the budget
    runs out. Safe to run concurrently (leased claims) and twice (measuring again changes nothing)."""
    budget = settings.CSKPI_RECOMPUTE_TIME_BUDGET if time_budget is None else time_budget
    deadline = monotonic() + budget
    departments = records = 0
    while monotonic() < deadline:
        claim = _remeasure_claim()
        if claim is None:
            return RemeasureOutcome(departments, records, False)

        def progress(n: int, claim=claim) -> None:
            lease = timezone.now() + timedelta(seconds=settings.CSKPI_REMEASURE_LEASE_SECONDS)
            ServiceLevelRemeasure.objects.filter(id=claim.id).update(records_done=F("records_done") + n,
                                                                      claimed_until=lease)

        records += records_remeasure(department_id=claim.department_id, since=claim.since, progress=progress)
        # Done, unless a newer request arrived meanwhile (its version differs: it stays for a pass).
        ServiceLevelRemeasure.objects.filter(id=claim.id, version=claim.version).delete()
        departments += 1
    return RemeasureOutcome(departments, records, True)


def _remeasure_claim() -> ServiceLevelRemeasure | None:
    stamp = timezone.now()
    with transaction.atomic():
        claim = (
            ServiceLevelRemeasure.objects.select_for_update(skip_locked=True)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=stamp))
            .order_by("requested_at").first()
        )
        if claim is None:
            return None
        claim.claimed_until = stamp + timedelta(seconds=settings.CSKPI_REMEASURE_LEASE_SECONDS)
        claim.records_done = 0
        claim.save(update_fields=["claimed_until", "records_done"])
        return claim


# --- deadlines passing -------------------------------------------------------------------------
_OVERDUE_BATCH = 10_000


def overdue_records_mark(*, moment: datetime | None = None) -> int:
    """Every record still pending on a target whose deadline is before `moment` (default now)
    becomes breached; its quarter is marked for the KPI engine. -> records changed."""
    moment = moment or now()
    changed = 0
    for spec in MEASURED_SPECS:
        for sla in spec.sla_clocks:
            while True:
                with transaction.atomic():
                    due = spec.model.objects.filter(**{sla.state_column: PENDING, f"{sla.due_column}__lt": moment})
                    rows = list(due.select_for_update(skip_locked=True).order_by()
                                .values_list("id", "department_id", spec.anchor)[:_OVERDUE_BATCH])
                    if not rows:
                        break
                    spec.model.objects.filter(id__in=[r[0] for r in rows]).update(**{sla.state_column: BREACHED})
                    record_changes_mark(record_type=spec.record_type, marks=[(d, t) for _, d, t in rows],
                                        scope=ChangeScope.SERVICE_LEVELS)
                    changed += len(rows)
                if len(rows) < _OVERDUE_BATCH:
                    break
    return changed
