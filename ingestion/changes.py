"""The change log ingestion keeps for whoever aggregates the records (the KPI engine).

Every created, updated or moved record marks its quarter-hour `(record type, department, UTC
quarter)` in `RecordChange`, in the transaction that changes the record, with the scope of the change
(`ChangeScope`: anything, or only the columns measured with the calendar and SLA policy). Ingestion knows nothing
of what is done with the marks: it sends `ingestion.signals.record_changes_marked` after writing
them, and the consumer (metrics, in `MetricsConfig.ready`) connects its recompute kick there.
"""

import secrets
from collections.abc import Iterable
from datetime import UTC, datetime

from django.db import connection
from django.utils import timezone

from ingestion.choices import QUARTER_SECONDS, ChangeScope
from ingestion.models import RecordChange
from ingestion.signals import record_changes_marked


def quarter_floor(moment: datetime) -> datetime:
    """The UTC start of the 15-minute bucket holding `moment` (aware)."""
    return datetime.fromtimestamp(_quarter_epoch(moment), tz=UTC)


def _quarter_epoch(moment: datetime) -> int:
    """The epoch second where the quarter-hour holding `moment` starts."""
    return int(moment.timestamp()) // QUARTER_SECONDS * QUARTER_SECONDS


_TABLE = RecordChange._meta.db_table
# A mark on a marked quarter: a new version, the claim and any failure cleared (first_marked_at kept);
# the scope stays only when both marks have it (otherwise: all).
_ON_MARKED = (
    "ON CONFLICT (record_type, department_id, quarter_start) DO UPDATE SET version = EXCLUDED.version, "
    "marked_at = EXCLUDED.marked_at, claimed_until = NULL, claimed_by = NULL, attempts = 0, failed_at = NULL, "
    f"last_error = '', scope = CASE WHEN {_TABLE}.scope = EXCLUDED.scope THEN EXCLUDED.scope "
    f"ELSE '{ChangeScope.ALL.value}' END"
)
_COLUMNS = "(record_type, department_id, quarter_start, scope, version, first_marked_at, marked_at, attempts, last_error)"


def quarter_ranges(marks: Iterable[tuple[int, datetime]] = (),
                   spans: Iterable[tuple[int, datetime, datetime]] = ()) -> list[tuple[int, int, int]]:
    """(department id, first quarter, last quarter) — epoch seconds, both included — covering the
    quarters holding each (department id, moment) and each (department id, first moment, last moment)
    span, merged per department, in (department, time) order: each quarter once."""
    bounds = {(d, q, q) for d, q in ((d, _quarter_epoch(m)) for d, m in marks)}
    bounds.update((d, _quarter_epoch(first), _quarter_epoch(last)) for d, first, last in spans if last >= first)
    merged: list[list[int]] = []
    for department_id, first, last in sorted(bounds):
        if merged and merged[-1][0] == department_id and first <= merged[-1][2] + QUARTER_SECONDS:
            merged[-1][2] = max(merged[-1][2], last)
        else:
            merged.append([department_id, first, last])
    return [(d, f, la) for d, f, la in merged]


def record_changes_mark(*, record_type: str, marks: Iterable[tuple[int, datetime]] = (),
                        spans: Iterable[tuple[int, datetime, datetime]] = (),
                        scope: ChangeScope = ChangeScope.ALL) -> int:
    """Mark the quarter-hours holding these (department id, anchor time) pairs, and those from the
    quarter holding the first to the one holding the last moment of each (department id, first, last)
    span, as changed; returns how many quarters.

    Call inside the transaction that changes the records, so the marks commit with them. A mark on
    an already-marked quarter gives it a new version (and clears any claim and failure), so a
    consumer handling the old version leaves the row for another pass. `scope`: what changed in the
    records (`ChangeScope`; a quarter marked with two scopes is marked `all`).
    """
    ranges = quarter_ranges(marks, spans)
    if not ranges:
        return 0
    count = sum((last - first) // QUARTER_SECONDS + 1 for _, first, last in ranges)
    scope = ChangeScope(scope).value
    now = timezone.now()
    version = secrets.randbits(62)
    # Rows go in (department, quarter) order in every writer: no deadlock between concurrent batches.
    if connection.vendor == "postgresql":
        # One statement over three arrays of merged ranges, the quarters listed by the database: a batch
        # of 1000 agent events marks ~2,500 quarters, whose datetimes psycopg dumped one by one in Python
        # (the arrays go as one text literal each).
        def literal(values) -> str:
            return "{" + ",".join(map(str, values)) + "}"

        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {_TABLE} {_COLUMNS} "
                "SELECT %s, u.d, to_timestamp(q), %s, %s, %s, %s, 0, '' "
                "FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) WITH ORDINALITY AS u(d, f, l, n), "
                f"LATERAL generate_series(u.f, u.l, {QUARTER_SECONDS}) AS q ORDER BY u.n, q "
                f"{_ON_MARKED}",
                [record_type, scope, version, now, now, literal(r[0] for r in ranges),
                 literal(r[1] for r in ranges), literal(r[2] for r in ranges)],
            )
    else:  # SQLite: the same statement, one row at a time (datetimes as the ORM stores them)
        adapt = connection.ops.adapt_datetimefield_value
        stamp = adapt(now)
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {_TABLE} {_COLUMNS} VALUES (%s, %s, %s, %s, %s, %s, %s, 0, '') {_ON_MARKED}",
                [(record_type, department_id, adapt(datetime.fromtimestamp(q, tz=UTC)), scope, version, stamp, stamp)
                 for department_id, first, last in ranges for q in range(first, last + 1, QUARTER_SECONDS)],
            )
    record_changes_marked.send(sender=RecordChange, record_type=record_type, count=count)
    return count


def record_changes_mark_span(*, record_type: str, department_id: int, start: datetime, end: datetime,
                             scope: ChangeScope = ChangeScope.ALL) -> int:
    """Mark every quarter-hour from the one holding `start` to the one holding `end` (inclusive), in
    one statement on PostgreSQL (a year of quarters is 35,040 marks)."""
    return record_changes_mark(record_type=record_type, spans=[(department_id, start, end)], scope=scope)
