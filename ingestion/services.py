"""Writes of ingestion: validate a batch, check who may write it, upsert it atomically.

The upsert is idempotent and safe against reordering and concurrency:
- per key, the batch's items apply in order on top of the stored version: missing -> created; an
  `updated_at` older than the stored one -> stale; same content -> unchanged (a newer `updated_at`
  is still kept, so older versions stay stale); otherwise -> updated;
- the stored rows of the batch's keys are locked (`SELECT ... FOR UPDATE`, in key order) before
  they are classified; new keys are inserted with `ON CONFLICT DO NOTHING`, and a key another
  request inserted meanwhile is locked and classified again;
- every created/updated record marks its quarter-hour (and, when an update moves it, the old one)
  in the change log (`ingestion.changes`) in the same transaction; whoever aggregates the records
  listens to `record_changes_marked` (metrics kicks its recompute after commit);
- a record type declaring a `series` (system checks: a check's runs, whose interval KPI depends on
  each run's predecessor) also marks the quarter of the next record after each written record's old
  and new place (`_successor_marks`).
"""

import hashlib
import logging
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from cskpi.access import Access, ingest_departments_check
from cskpi.db import pg_cursor
from cskpi.errors import Forbidden, InvalidInput
from cskpi.models import Department
from ingestion.changes import record_changes_mark
from ingestion.choices import UpsertResult
from ingestion.fields import FieldType, RecordSpec
from ingestion.presence import presence_span
from ingestion.service_levels import BatchMeasure
from ingestion.validation import batch_validator_get

logger = logging.getLogger(__name__)

CREATED, UPDATED, UNCHANGED, STALE = (UpsertResult.CREATED.value, UpsertResult.UPDATED.value,
                                      UpsertResult.UNCHANGED.value, UpsertResult.STALE.value)
MAX_RACE_ROUNDS = 5
MAX_TRANSACTION_ATTEMPTS = 3
# PostgreSQL allows 65535 bind parameters per statement, SQLite 32766.
MAX_PARAMS = 30_000
_RETRYABLE_SQLSTATES = {"40P01", "40001"}  # deadlock, serialization failure
UPDATE_RANDOM_PAGE_COST = 1.1  # the rows a batch updates are in memory (see _update)
# A content digest's bytes (30 hex digits). Digests of the earlier scheme have 32 digits: a stored one is
# told apart by its length and compared in its own scheme (_stored_digest), so a record stored before
# this scheme and sent again unchanged is still `unchanged`.
CONTENT_DIGEST_BYTES = 15
LEGACY_DIGEST_LENGTH = 32


# --- validation and access -------------------------------------------------------------------
def record_batch_validate(*, spec: RecordSpec, items: Sequence, text: bool = False,
                          error_limit: int | None = None) -> list[dict]:
    """Typed rows for the items, or InvalidInput listing the bad items (at most `error_limit`
    errors, default CSKPI_MAX_ERRORS, the rest counted); nothing is written."""
    known = list(Department.objects.values_list("slug", "id", "currency"))
    departments = {slug: id_ for slug, id_, _ in known}
    currencies = {id_: currency for _, id_, currency in known}
    rows, errors = batch_validator_get(spec).validate(items, departments=departments, text=text,
                                                      error_limit=error_limit, currencies=currencies)
    if errors:
        unknown = sorted({e["message"] for e in errors if e["code"] == "unknown_department"})[:5]
        bad_items = sum(1 for row in rows if row is None)
        detail = f"{bad_items} of {len(items)} items are invalid; nothing was written."
        if unknown:
            detail += " " + " ".join(unknown)
        raise InvalidInput(detail, errors)
    return rows  # type: ignore[return-value]


def record_batch_authorize(*, rows: Sequence[dict], access: Access) -> set[int]:
    """The department ids the caller may ingest into; 403 naming each item outside them."""
    if access.is_staff:
        return {a.department.id for a in access.by_slug.values()}
    allowed = {a.department.id for a in access.ingestable()}
    errors = [
        {"index": i, "field": "department", "code": "permission_denied",
         "message": f"No ingest grant on department {row['department']!r}."}
        for i, row in enumerate(rows)
        if row["department_id"] not in allowed
    ]
    if errors:
        names = sorted({rows[e["index"]]["department"] for e in errors})
        raise Forbidden(f"You may not ingest into: {', '.join(names)}. Nothing was written.", errors)
    return allowed


def record_batch_ingest(*, spec: RecordSpec, items: Sequence, access: Access) -> dict:
    """The API's write: check the caller's ingest grants on the departments named, validate, upsert."""
    department_field = next(f.name for f in spec.fields if f.type is FieldType.DEPARTMENT)
    ingest_departments_check(access=access, departments=[
        item.get(department_field) if type(item) is dict else None for item in items
    ])
    rows = record_batch_validate(spec=spec, items=items)
    allowed = record_batch_authorize(rows=rows, access=access)
    return record_batch_upsert(spec=spec, rows=rows, department_ids=None if access.is_staff else allowed)


# --- the upsert ------------------------------------------------------------------------------
@dataclass(slots=True)
class _Stored:
    id: int
    department_id: int
    updated_at: datetime | None
    content_hash: str
    place: tuple  # the values of the record type's time columns (anchor, or start and end)
    series: tuple = ()  # the values of the record type's series columns
    ctid: str | None = None  # PostgreSQL: where the locked row lies (stable until this transaction updates it)


class _Table:
    """Column layout of one record table, computed once."""

    def __init__(self, spec: RecordSpec):
        model = spec.model
        self.spec = spec
        self.name = model._meta.db_table
        self.record_type = spec.record_type
        self.time_columns = spec.time_columns
        self.quarters_touched = spec.quarters_touched
        self.holds = spec.holds
        self.series = spec.series
        self.lock_namespace = spec.lock_namespace
        self.columns = [f.column for f in model._meta.concrete_fields if f.column != "id"]
        meta = {"department_id", "updated_at", "content_hash", "received_at"}
        derived = set(spec.derived_columns)
        self.content_columns = ["department_id"] + [
            c for c in self.columns if c not in meta and c not in derived
        ]
        self.update_sql = (
            f"UPDATE {self.name} SET "
            + ", ".join(f"{c} = %s" for c in self.columns if c not in ("source", "external_id"))
            + " WHERE id = %s"
        )
        self.update_columns = [c for c in self.columns if c not in ("source", "external_id")]
        # PostgreSQL: rows go in by binary COPY into a staging table and changes by one array per
        # column (unnest): one round trip per statement, ~20 parameters instead of ~20,000 (Django's
        # psycopg cursor binds client-side; splitting a query with 20,000 placeholders cost more
        # than running it).
        fields = {f.column: f for f in model._meta.concrete_fields}
        self.pg_types = {c: fields[c].cast_db_type(connection).split("(")[0] for c in self.columns + ["id"]}
        listed = ", ".join(self.columns)
        staging = f"{self.name}_staging"
        self.pg_staging_sql = (
            f"CREATE TEMP TABLE IF NOT EXISTS {staging} ON COMMIT DELETE ROWS AS "
            f"SELECT {listed} FROM {self.name} WITH NO DATA"
        )
        self.pg_copy_sql = f"COPY {staging} ({listed}) FROM STDIN (FORMAT BINARY)"
        self.pg_copy_types = [self.pg_types[c] for c in self.columns]
        self.pg_insert_sql = (
            f"WITH staged AS (DELETE FROM {staging} RETURNING {listed}) "
            f"INSERT INTO {self.name} ({listed}) SELECT {listed} FROM staged "
            f"ON CONFLICT (source, external_id) DO NOTHING RETURNING source, external_id"
        )
        update = (
            f"UPDATE {self.name} AS t SET " + ", ".join(f"{c} = v.{c}" for c in self.update_columns)
            + " FROM unnest(" + ", ".join(f"%b::{self.pg_types[c]}[]" for c in ["id"] + self.update_columns)
            + f") AS v(id, {', '.join(self.update_columns)}) WHERE t.id = v.id"
        )
        # The rows were locked by _select_for_update, which read where they lie: found by a TID scan (see
        # _update). Joined on id alone, a table the planner thinks small (young, never analysed) was
        # scanned whole for every batch (a hash join: 11 ms for 333 rows of 28,000).
        self.pg_update_sql = f"{update} AND t.ctid = ANY(%s::text[]::tid[])"
        self.pg_update_by_id_sql = update
        # The stored rows of a batch's keys, locked, with where they lie (see _select_for_update).
        self.lock_names = ["id", "source", "external_id", "department_id", "updated_at", "content_hash",
                           *self.time_columns, *self.series]
        # The keys come sorted (Python's order: code points, as the C collation): looked up, and locked,
        # in the array's order (ordinality; sorting them again in the database's collation cost ~8 ms
        # a batch of 1000).
        self.pg_lock_sql = (
            f"SELECT r.* FROM (SELECT * FROM unnest(%b::text[], %b::text[]) WITH ORDINALITY "
            f"AS u(source, external_id, n) ORDER BY n) AS k CROSS JOIN LATERAL "
            f"(SELECT {', '.join(f't.{n}' for n in self.lock_names)}, t.ctid::text FROM {self.name} AS t "
            f"WHERE t.source = k.source AND t.external_id = k.external_id FOR UPDATE) AS r"
        )


_TABLES: dict[str, _Table] = {}


def _table(spec: RecordSpec) -> _Table:
    table = _TABLES.get(spec.plural)
    if table is None:
        table = _TABLES[spec.plural] = _Table(spec)
    return table


def content_hash(row: dict, columns: Sequence[str]) -> str:
    """Digest of the canonical content (typed values; times in UTC; `updated_at` not included): blake2b
    of the values as JSON (orjson: a record in 0.5 µs, where their repr took 4–8 µs), 30 hex digits."""
    values = tuple(map(row.__getitem__, columns))
    try:
        canonical = orjson.dumps(values, default=_canonical_default)
    except TypeError:  # no validated value is unwritable (ints ≤ 2**31, text without lone surrogates)
        canonical = repr(values).encode()
    return hashlib.blake2b(canonical, digest_size=CONTENT_DIGEST_BYTES).hexdigest()


def content_hash_legacy(row: dict, columns: Iterable[str]) -> str:
    """The digest records stored before had: blake2b of the values' repr, 32 hex digits."""
    canonical = repr(tuple(row[c] for c in columns)).encode()
    return hashlib.blake2b(canonical, digest_size=16).hexdigest()


def _canonical_default(value):
    if isinstance(value, Decimal):  # amounts: quantized to 6 places by the validator, so one text each
        return str(value)
    raise TypeError(f"no canonical form for {type(value).__name__}")


def _stored_digest(stored: str, items: Iterable[dict], columns: Sequence[str]) -> str:
    """A stored digest in the current scheme. A legacy one (32 digits, written before) is translated
    through an item of the same content, when there is one; otherwise it matches no item, as it should."""
    if len(stored) != LEGACY_DIGEST_LENGTH:
        return stored
    for item in items:
        if content_hash_legacy(item, columns) == stored:
            return item["content_hash"]
    return stored


def record_batch_upsert(*, spec: RecordSpec, rows: Sequence[dict], department_ids: set[int] | None = None) -> dict:
    """Upsert validated rows atomically; `department_ids` limits which stored records may change.

    Returns {"created", "updated", "unchanged", "stale", "items": [{source, external_id, result}]}.
    """
    table = _table(spec)
    now = timezone.now()
    for row in rows:
        row["content_hash"] = content_hash(row, table.content_columns)
        row["received_at"] = now
    for attempt in range(1, MAX_TRANSACTION_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                results = _upsert(table, rows, department_ids)
            break
        except OperationalError as exc:
            sqlstate = getattr(exc.__cause__, "sqlstate", None)
            if sqlstate not in _RETRYABLE_SQLSTATES or attempt == MAX_TRANSACTION_ATTEMPTS:
                raise
            logger.info("upsert retried after %s (attempt %d)", sqlstate, attempt)
    counts = {CREATED: 0, UPDATED: 0, UNCHANGED: 0, STALE: 0}
    for result in results:
        counts[result] += 1
    return {
        **counts,
        "items": [
            {"source": row["source"], "external_id": row["external_id"], "result": result}
            for row, result in zip(rows, results, strict=True)
        ],
    }


def _upsert(table: _Table, rows: Sequence[dict], department_ids: set[int] | None) -> list[str]:
    groups: dict[tuple[str, str], list[int]] = {}
    for index, row in enumerate(rows):
        groups.setdefault((row["source"], row["external_id"]), []).append(index)
    results: list[str] = [""] * len(rows)
    measure = BatchMeasure(table.spec, rows)  # business durations and SLA states of the rows written
    stored = _select_for_update(table, sorted(groups))
    _check_stored_departments(stored, groups, department_ids)
    updates: list[dict] = []
    marks: list[tuple[int, datetime]] = []
    spans: list[tuple[int, datetime, datetime]] = []  # (department id, first, last moment) of state records
    places: list[tuple] = []  # (department id, series values, anchor) of every place written to or left
    pending = sorted(groups)
    for _ in range(MAX_RACE_ROUNDS):
        inserts: list[dict] = []
        for key in pending:
            current = stored.get(key)
            final, changed = _fold(current, groups[key], rows, results, table.content_columns)
            if current is None:
                inserts.append(final)
                continue
            if changed:
                _place_marked(table, current.department_id, current.place, marks, spans)
                _rows_marked(table, [final], marks, spans)
                if table.series:
                    places.append((current.department_id, current.series, current.place[0]))
                    places.append(_series_place(table, final))
            if final is not None:
                updates.append(final | {"id": current.id, "_ctid": current.ctid})
        measure(inserts)
        inserted = _insert(table, inserts)
        pending = sorted({(r["source"], r["external_id"]) for r in inserts} - inserted)
        created = [r for r in inserts if (r["source"], r["external_id"]) in inserted]
        _rows_marked(table, created, marks, spans)
        if table.series:
            places += [_series_place(table, r) for r in created]
        if not pending:
            break
        # Inserted by a concurrent request since our select: lock them and classify again.
        raced = _select_for_update(table, pending)
        _check_stored_departments(raced, groups, department_ids)
        stored.update(raced)
    else:  # pragma: no cover - rows are never deleted, so a raced key is found on the next round
        raise OperationalError("could not settle concurrent inserts")
    measure([r for r in updates if not r.get("_version_only")])
    _update(table, updates)
    if places:
        marks += _successor_marks(table, places)
    if marks or spans:
        record_changes_mark(record_type=table.record_type, marks=marks, spans=spans)
    return results


def _series_place(table: _Table, row: dict) -> tuple:
    return row["department_id"], tuple(row[c] for c in table.series), row[table.time_columns[0]]


def _series_lock_key(namespace: int, department_id: int, values: tuple) -> int:
    digest = hashlib.blake2b(repr((namespace, department_id, values)).encode(), digest_size=8).digest()
    return struct.unpack(">q", digest)[0]


def _successor_marks(table: _Table, places: list[tuple]) -> list[tuple[int, datetime]]:
    """(department id, anchor) of the next record after each place of its series, as stored now.

    A record's predecessor is the one before it in its series (anchor order; equal anchors share a
    quarter, which is marked already). Writing a record at a place changes the predecessor of the
    record after that place; moving it away from a place changes the predecessor of the record that
    followed it there. Those records' quarters must be recomputed although they did not change.

    Concurrent writers: on PostgreSQL, a transaction-scoped advisory lock per series is taken (in
    key order) before the successors are read, so of two transactions writing into one series the
    second reads them after the first committed, and sees its records: the marks of the two
    together cover every record whose predecessor changed. SQLite serialises all writes.
    """
    series = sorted({(department_id, values) for department_id, values, _ in places})
    if connection.vendor == "postgresql":
        keys = sorted({_series_lock_key(table.lock_namespace, d, v) for d, v in series})
        with connection.cursor() as cursor:
            for key in keys:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
    anchor = table.time_columns[0]
    where = " AND ".join(["s.department_id = p.d"] + [f"s.{c} = p.c{i}" for i, c in enumerate(table.series)])
    marks: list[tuple[int, datetime]] = []
    probes = sorted(set(places))
    width = 2 + len(table.series)
    step = max(1, MAX_PARAMS // width)
    for start in range(0, len(probes), step):
        chunk = probes[start:start + step]
        names = ["d", *(f"c{i}" for i in range(len(table.series))), "t"]
        successor = (f"(SELECT s.{anchor} FROM {table.name} s WHERE {where} AND s.{anchor} > p.t "
                     f"ORDER BY s.{anchor} LIMIT 1)")
        if connection.vendor == "postgresql":
            types = ["bigint", *(["text"] * len(table.series)), "timestamptz"]  # series columns are text
            arrays = ", ".join(f"%s::{t}[]" for t in types)
            sql = f"SELECT p.d, {successor} FROM unnest({arrays}) AS p({', '.join(names)})"
            params = [[p[0] for p in chunk], *([p[1][i] for p in chunk] for i in range(len(table.series))),
                      [p[2] for p in chunk]]
        else:
            columns = ", ".join(f"column{i + 1} AS {name}" for i, name in enumerate(names))
            values = ", ".join(["(" + ", ".join(["%s"] * width) + ")"] * len(chunk))
            sql = f"SELECT p.d, {successor} FROM (SELECT {columns} FROM (VALUES {values})) p"
            adapt = connection.ops.adapt_datetimefield_value
            params = [v for p in chunk for v in (p[0], *p[1], adapt(p[2]))]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            found = cursor.fetchall()
        marks += [(department_id, _aware(_moment(moment))) for department_id, moment in found if moment is not None]
    return marks


def _moment(value) -> datetime:
    """A timestamp read by raw SQL: a datetime (PostgreSQL), or Django's stored text (SQLite)."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _marks(table: _Table, department_id: int, place: tuple) -> list[tuple[int, datetime]]:
    """(department id, moment) per quarter-hour a record placed at `place` counts in."""
    return [(department_id, moment) for moment in table.quarters_touched(place)]


def _held_span(department_id: int, at: datetime, now: datetime | None = None) -> tuple[int, datetime, datetime]:
    """(department id, first, last moment) of the quarters a state record at `at` decides: up to its
    presence timeout, not past now (`ingestion.presence.presence_span`)."""
    start, end = presence_span(at, now=now)
    return department_id, start, end - timedelta(microseconds=1) if end > start else start


def _place_marked(table: _Table, department_id: int, place: tuple, marks: list, spans: list) -> None:
    """Add the quarters a record at `place` (the one it leaves) counts in: a state record's as a span."""
    if table.holds:
        spans.append(_held_span(department_id, place[0]))
    else:
        marks += _marks(table, department_id, place)


def _rows_marked(table: _Table, rows: list[dict], marks: list, spans: list) -> None:
    """Add the quarters `rows` count in: state records' as spans, whose quarters the database lists
    (`record_changes_mark`; a batch of 1000 events decides ~2,500 quarters), other records' as marks."""
    if table.holds:
        now, anchor = timezone.now(), table.time_columns[0]
        spans += [_held_span(r["department_id"], r[anchor], now) for r in rows]
    else:
        marks += _row_marks(table, rows)


def _row_marks(table: _Table, rows: list[dict]) -> list[tuple[int, datetime]]:
    if len(table.time_columns) == 1:  # a point in time: its anchor's quarter (the hot path, kept lean)
        anchor = table.time_columns[0]
        return [(r["department_id"], r[anchor]) for r in rows]
    return [mark for r in rows
            for mark in _marks(table, r["department_id"], tuple(r[c] for c in table.time_columns))]


def _fold(current: _Stored | None, indexes: list[int], rows: Sequence[dict], results: list[str],
          columns: Sequence[str]):
    """Apply the items of one key in order; -> (row to write or None, content changed?)."""
    if current is None:
        content, version, row = None, None, None
    else:
        content = _stored_digest(current.content_hash, (rows[i] for i in indexes), columns)
        version, row = current.updated_at, None
    changed = bumped = False
    for index in indexes:
        item = rows[index]
        incoming = item["updated_at"]
        if content is None:
            results[index] = CREATED
            content, version, row = item["content_hash"], incoming, item
        elif incoming is not None and version is not None and incoming < version:
            results[index] = STALE
        elif item["content_hash"] == content:
            results[index] = UNCHANGED
            if incoming is not None and (version is None or incoming > version):
                version, bumped = incoming, True
        else:
            results[index] = UPDATED
            content, version, row, changed = item["content_hash"], incoming, item, True
    if current is None:
        return (row if row["updated_at"] == version else row | {"updated_at": version}), True
    if changed:
        return (row if row["updated_at"] == version else row | {"updated_at": version}), True
    if bumped:
        return {"_version_only": True, "updated_at": version, "received_at": rows[indexes[-1]]["received_at"]}, False
    return None, False


def _check_stored_departments(stored: dict, groups: dict, department_ids: set[int] | None) -> None:
    if department_ids is None:
        return
    errors = [
        {"index": index, "field": "external_id", "code": "record_in_other_department",
         "message": "A record with this key exists in a department you may not ingest into."}
        for key, current in stored.items()
        if current.department_id not in department_ids
        for index in groups[key]
    ]
    if errors:
        errors.sort(key=lambda e: e["index"])
        raise Forbidden("Some keys belong to records of departments you may not ingest into. "
                        "Nothing was written.", errors)


# --- SQL (parameterised; PostgreSQL and SQLite) ---------------------------------------------
def _pg_cursor():
    return pg_cursor(connection)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _select_for_update(table: _Table, keys: list[tuple[str, str]]) -> dict[tuple[str, str], _Stored]:
    found: dict[tuple[str, str], _Stored] = {}
    if not keys:
        return found
    if connection.vendor == "postgresql":
        with _pg_cursor() as cursor:
            # One index lookup per key, in a nested loop over the keys in order (a subquery that locks is
            # never flattened into a join): every batch takes its locks in key order, so two batches
            # sharing keys cannot deadlock on them, and the plan does not depend on the table's
            # statistics (a young table, never analysed, was scanned whole for every batch: 12 ms for
            # 990 keys in 28,000 rows, 2 ms so). `keys` must be sorted.
            cursor.execute(table.pg_lock_sql, [[k[0] for k in keys], [k[1] for k in keys]],
                           binary=True)  # binary timestamptz results load ~10x faster than text ones
            fetched = cursor.fetchall()
    else:  # SQLite: the IMMEDIATE transaction already holds the write lock
        columns = ", ".join(table.lock_names)
        with connection.cursor() as cursor:
            fetched = []
            step = MAX_PARAMS // 2
            for start in range(0, len(keys), step):
                chunk = keys[start:start + step]
                cursor.execute(
                    f"SELECT {columns} FROM {table.name} WHERE (source, external_id) IN "
                    f"(VALUES {', '.join(['(%s, %s)'] * len(chunk))})",
                    [part for key in chunk for part in key],
                )
                fetched.extend((*row, None) for row in cursor.fetchall())
    places = len(table.time_columns)
    for id_, source, external_id, department_id, updated_at, digest, *place, ctid in fetched:
        found[(source, external_id)] = _Stored(id_, department_id, _aware(updated_at), digest,
                                               tuple(map(_aware, place[:places])), tuple(place[places:]), ctid)
    return found


def _params(table: _Table, row: dict, columns: list[str]) -> list:
    values = [row.get(c) for c in columns]
    if connection.vendor != "postgresql":
        adapt = connection.ops.adapt_datetimefield_value
        values = [adapt(v) if isinstance(v, datetime) else v for v in values]
    return values


def _insert(table: _Table, rows: list[dict]) -> set[tuple[str, str]]:
    """Insert the rows; -> the keys actually inserted (a key inserted concurrently is skipped)."""
    inserted: set[tuple[str, str]] = set()
    if not rows:
        return inserted
    columns = table.columns
    if connection.vendor == "postgresql":
        # COPY (rows dumped in C) into a per-session staging table, then one INSERT that empties it.
        with _pg_cursor() as cursor:
            cursor.execute(table.pg_staging_sql)
            with cursor.copy(table.pg_copy_sql) as copy:
                copy.set_types(table.pg_copy_types)
                write = copy.write_row
                for row in rows:
                    write([row.get(c) for c in columns])
            cursor.execute(table.pg_insert_sql, binary=True)
            return set(cursor.fetchall())
    placeholder = "(" + ", ".join(["%s"] * len(columns)) + ")"
    step = max(1, MAX_PARAMS // len(columns))
    with connection.cursor() as cursor:
        for start in range(0, len(rows), step):
            chunk = rows[start:start + step]
            params = [value for row in chunk for value in _params(table, row, columns)]
            cursor.execute(
                f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES {', '.join([placeholder] * len(chunk))} "
                f"ON CONFLICT (source, external_id) DO NOTHING RETURNING source, external_id",
                params,
            )
            inserted.update((source, external_id) for source, external_id in cursor.fetchall())
    return inserted


def _update(table: _Table, rows: list[dict]) -> None:
    full = [r for r in rows if not r.get("_version_only")]
    version_only = [r for r in rows if r.get("_version_only")]
    if full and connection.vendor == "postgresql":
        columns = ["id"] + table.update_columns
        arrays = [[row.get(c) for row in full] for c in columns]
        with _pg_cursor() as cursor:
            # Given the rows' places, the planner still prices a TID scan of a few hundred rows above a
            # sequential scan of a table of a thousand pages: it charges each row a random page read at
            # PostgreSQL's default random_page_cost (4, for data on spinning disks). The pages a batch
            # changes were just read and locked; for this statement they are priced as such.
            cursor.execute(f"SET LOCAL random_page_cost = {UPDATE_RANDOM_PAGE_COST}")
            cursor.execute(table.pg_update_sql, [*arrays, [row["_ctid"] for row in full]])
            updated = cursor.rowcount
            cursor.execute("SET LOCAL random_page_cost TO DEFAULT")
            if updated != len(full):  # not expected (the rows are locked): by id, whatever moved
                logger.warning("upsert: %d of %d locked rows not where they were read; updated by id",
                               len(full) - updated, len(full))
                cursor.execute(table.pg_update_by_id_sql, arrays)
    with connection.cursor() as cursor:
        if full and connection.vendor != "postgresql":
            cursor.executemany(table.update_sql, [_params(table, r, table.update_columns + ["id"]) for r in full])
        if version_only:
            cursor.executemany(
                f"UPDATE {table.name} SET updated_at = %s, received_at = %s WHERE id = %s",
                [_params(table, r, ["updated_at", "received_at", "id"]) for r in version_only],
            )
