"""The change log ingestion keeps for whoever aggregates the records (the KPI engine).

Every created, updated or moved record marks its quarter-hour `(record type, department, UTC
quarter)` in `RecordChange`, in the transaction that changes the record, with the scope of the change
(`ChangeScope`: anything, or only the columns measured with the calendar and SLA policy). Ingestion knows nothing
of what is done with the marks: it sends `ingestion.signals.record_changes_marked` after writing
them, and the consumer (metrics, in `MetricsConfig.ready`) connects its recompute kick there.
"""

import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.utils import timezone

from ingestion.choices import QUARTER_SECONDS, ChangeScope
from ingestion.models import RecordChange
from ingestion.signals import record_changes_marked


def quarter_floor(moment: datetime) -> datetime:
    """The UTC start of the 15-minute bucket holding `moment` (aware)."""
    ts = int(moment.timestamp()) // QUARTER_SECONDS * QUARTER_SECONDS
    return datetime.fromtimestamp(ts, tz=UTC)


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


def record_changes_mark(*, record_type: str, marks: Iterable[tuple[int, datetime]],
                        scope: ChangeScope = ChangeScope.ALL) -> int:
    """Mark the quarter-hours holding these (department id, anchor time) pairs as changed.

    Call inside the transaction that changes the records, so the marks commit with them. A mark on
    an already-marked quarter gives it a new version (and clears any claim and failure), so a
    consumer handling the old version leaves the row for another pass. `scope`: what changed in the
    records (`ChangeScope`; a quarter marked with two scopes is marked `all`).
    """
    keys = {(department_id, quarter_floor(anchor)) for department_id, anchor in marks}
    if not keys:
        return 0
    scope = ChangeScope(scope).value
    now = timezone.now()
    version = secrets.randbits(62)
    ordered = sorted(keys)  # the same order in every writer: no deadlock between concurrent batches
    if connection.vendor == "postgresql":
        # One statement over two arrays: the ORM's bulk_create built a model instance and prepared
        # eight values per mark (a batch of 1000 agent events marks ~2,000 quarters: a third of its time).
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {_TABLE} {_COLUMNS} "
                "SELECT %s, u.d, u.q, %s, %s, %s, %s, 0, '' FROM unnest(%s::bigint[], %s::timestamptz[]) AS u(d, q) "
                f"{_ON_MARKED}",
                [record_type, scope, version, now, now, [d for d, _ in ordered], [q for _, q in ordered]],
            )
    else:  # SQLite: the same statement, one row at a time (datetimes as the ORM stores them)
        adapt = connection.ops.adapt_datetimefield_value
        stamp = adapt(now)
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {_TABLE} {_COLUMNS} VALUES (%s, %s, %s, %s, %s, %s, %s, 0, '') {_ON_MARKED}",
                [(record_type, department_id, adapt(quarter), scope, version, stamp, stamp)
                 for department_id, quarter in ordered],
            )
    record_changes_marked.send(sender=RecordChange, record_type=record_type, count=len(keys))
    return len(keys)


def record_changes_mark_span(*, record_type: str, department_id: int, start: datetime, end: datetime,
                             scope: ChangeScope = ChangeScope.ALL) -> int:
    """Mark every quarter-hour from the one holding `start` to the one holding `end` (inclusive), as
    `record_changes_mark` would, in one statement on PostgreSQL (a year of quarters is 35,040 marks)."""
    first, last = quarter_floor(start), quarter_floor(end)
    if last < first:
        return 0
    count = int((last - first).total_seconds()) // QUARTER_SECONDS + 1
    scope = ChangeScope(scope).value
    if connection.vendor != "postgresql":
        return record_changes_mark(record_type=record_type, scope=scope, marks=(
            (department_id, first + timedelta(seconds=n * QUARTER_SECONDS)) for n in range(count)))
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_TABLE} {_COLUMNS} "
            "SELECT %s, %s, q, %s, %s, %s, %s, 0, '' "
            "FROM generate_series(%s::timestamptz, %s::timestamptz, interval '15 minutes') AS q "
            f"{_ON_MARKED}",
            [record_type, department_id, scope, secrets.randbits(62), now, now, first, last],
        )
    record_changes_marked.send(sender=RecordChange, record_type=record_type, count=count)
    return count
