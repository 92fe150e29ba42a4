"""Customers as the distinct-set measures count them: dense integer ids, and first contacts.

- `customer_ids_get`: the id of each customer string (created when missing). Ids are dense (one
  sequence, no value skipped unless two writers race on the same new customer) and the same in every
  department, so a set of them is a roaring bitmap of a few bytes per customer.
- `customer_keys_assign`: the same for every customer of a set of raw records, in one statement.
- `customer_first_contacts_refresh`: keeps the first record per (department, customer) exact under
  backfills, moves and corrections; called by the recompute before it rebuilds the exact layer.

Both writers are idempotent and safe concurrently: `INSERT … ON CONFLICT DO NOTHING` in customer order
(two transactions inserting the same new customers wait on each other instead of deadlocking), then
a select. The first contacts of one department are written under its recompute lock.
"""

from collections.abc import Iterable
from datetime import datetime

from django.db import connection
from django.db.models import Exists, Min, OuterRef, Q, QuerySet
from pyroaring import BitMap

from ingestion.fields import SPEC_BY_TYPE
from metrics.customer_models import CustomerFirstContact, CustomerKey

_CHUNK = 5_000  # ids per IN list (SQLite allows 32766 parameters)


def customer_ids_get(*, customers: Iterable[str]) -> dict[str, int]:
    """{customer: dense integer id} for these customer strings, creating the missing ids."""
    wanted = sorted({c for c in customers if c is not None})
    found: dict[str, int] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start:start + _CHUNK]
        known = dict(CustomerKey.objects.filter(customer__in=chunk).values_list("customer", "id"))
        missing = [c for c in chunk if c not in known]
        if missing:
            CustomerKey.objects.bulk_create([CustomerKey(customer=c) for c in missing], ignore_conflicts=True)
            known.update(CustomerKey.objects.filter(customer__in=missing).values_list("customer", "id"))
        found.update(known)
    return found


def customer_keys_assign(*, source: QuerySet, field: str = "customer") -> None:
    """Give every customer string of these raw records an id (one INSERT … SELECT; existing ids kept)."""
    # NOT EXISTS (an anti-join), not NOT IN: PostgreSQL runs NOT IN over a subquery larger than work_mem
    # as a plain subplan scanned per raw row (a million keys × a million rows: hours).
    select = (source.filter(**{f"{field}__isnull": False})
              .filter(~Exists(CustomerKey.objects.filter(customer=OuterRef(field))))
              .values(field).distinct().order_by(field))
    sql, params = select.query.sql_with_params()
    table = connection.ops.quote_name(CustomerKey._meta.db_table)
    with connection.cursor() as cursor:
        # `WHERE true`: SQLite reads ON CONFLICT after a bare SELECT … ORDER BY as a join clause otherwise.
        cursor.execute(f"INSERT INTO {table} (customer) SELECT * FROM ({sql}) s WHERE true "
                       "ON CONFLICT (customer) DO NOTHING", params)


def customer_first_contacts_refresh(*, record_type: str, department, field: str, where: Q, source: QuerySet,
                                    spans: list[tuple[datetime, datetime]], previous: BitMap) -> list[datetime]:
    """Recompute the first contact of every customer the rebuilt `spans` held before (`previous`, ids) or
    hold now (`source`), from all of the department's records; -> the moments the first contacts that
    moved were and are at, outside `spans` (their quarters must be recomputed: a customer leaves the
    first-contact set of one bucket and enters another's)."""
    spec = SPEC_BY_TYPE[record_type]
    anchor = spec.anchor
    now_ids = CustomerKey.objects.filter(customer__in=source.filter(where).values(field)).values_list("id", flat=True)
    affected = sorted(BitMap(previous) | BitMap(now_ids))
    moved: list[datetime] = []
    for start in range(0, len(affected), _CHUNK):
        chunk = affected[start:start + _CHUNK]
        names = dict(CustomerKey.objects.filter(id__in=chunk).values_list("customer", "id"))
        firsts = {
            names[customer]: first
            for customer, first in spec.model.objects.filter(where, department_id=department.id,
                                                             **{f"{field}__in": list(names)})
            .values(field).annotate(first=Min(anchor)).order_by().values_list(field, "first")
        }
        stored = dict(CustomerFirstContact.objects.filter(department_id=department.id, customer_id__in=chunk)
                      .values_list("customer_id", "first_at"))
        changed = [c for c in chunk if firsts.get(c) != stored.get(c)]
        if not changed:
            continue
        gone = [c for c in changed if c not in firsts]
        if gone:
            CustomerFirstContact.objects.filter(department_id=department.id, customer_id__in=gone).delete()
        CustomerFirstContact.objects.bulk_create(
            [CustomerFirstContact(department_id=department.id, customer_id=c, first_at=firsts[c])
             for c in changed if c in firsts],
            update_conflicts=True, unique_fields=["department", "customer"], update_fields=["first_at"],
        )
        moved += [m for c in changed for m in (stored.get(c), firsts.get(c)) if m is not None]
    return [m for m in moved if not any(s <= m < e for s, e in spans)]
