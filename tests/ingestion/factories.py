"""Payload builders for ingestion tests (plain dicts, as a platform would send them).

`record_payload(plural)` builds a valid item of any declared record type from the examples of its
fields (ingestion.fields), so tests that loop over record types need nothing per type; the named
builders below are richer, hand-picked payloads of today's three types.
"""

import itertools
from functools import cache

from ingestion.fields import RECORD_SPECS
from ingestion.validation import batch_validator_get

_seq = itertools.count(1)


@cache
def _declared_example(plural: str) -> tuple:
    """The declared examples of the record type's fields, less any a rule finds contradicting the rest."""
    spec = RECORD_SPECS[plural]
    item = {f.name: f.example for f in spec.fields if f.example is not None}
    required = {f.name for f in spec.fields if f.required}
    for _ in range(len(item)):
        _, errors = batch_validator_get(spec).validate([item], departments={item["department"]: 1})
        if not errors:
            return tuple(item.items())
        dropped = {e["field"] for e in errors} - required
        assert dropped, f"the declared examples of {plural}'s required fields are invalid: {errors}"
        for name in dropped:
            item.pop(name, None)
    raise AssertionError(f"no valid example of {plural}")  # pragma: no cover


def record_payload(plural: str, department: str = "cskh-hn", **overrides) -> dict:
    item = dict(_declared_example(plural)) | {"external_id": f"R-{next(_seq)}", "department": department}
    item.update(overrides)
    return {k: v for k, v in item.items() if v is not ...}


def interaction_payload(department: str = "cskh-hn", **overrides) -> dict:
    item = {
        "external_id": f"T-{next(_seq)}",
        "source": "crm",
        "department": department,
        "channel": "phone",
        "agent": "agent-1",
        "created_at": "2026-03-02T09:00:00+07:00",
        "first_response_at": "2026-03-02T09:01:00+07:00",
        "resolved_at": "2026-03-02T09:10:00+07:00",
        "status": "resolved",
        "wait_seconds": 30,
        "handle_seconds": 400.5,
    }
    item.update(overrides)
    return {k: v for k, v in item.items() if v is not ...}


def survey_payload(department: str = "cskh-hn", **overrides) -> dict:
    item = {
        "external_id": f"S-{next(_seq)}",
        "source": "crm",
        "department": department,
        "kind": "csat",
        "score": 5,
        "submitted_at": "2026-03-02T10:00:00Z",
        "agent": "agent-1",
        "channel": "chat",
    }
    item.update(overrides)
    return {k: v for k, v in item.items() if v is not ...}


def cashout_payload(department: str = "cskh-hn", **overrides) -> dict:
    item = {
        "external_id": f"C-{next(_seq)}",
        "source": "bank",
        "department": department,
        "customer": "C-1",
        "amount": "1500000.50",
        "currency": "VND",
        "channel": "app",
        "requested_at": "2026-03-02T11:00:00+07:00",
        "first_response_at": "2026-03-02T11:00:30+07:00",
        "completed_at": "2026-03-02T11:05:00+07:00",
        "status": "succeeded",
    }
    item.update(overrides)
    return {k: v for k, v in item.items() if v is not ...}
