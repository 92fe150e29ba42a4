"""Payload builders for ingestion tests (plain dicts, as a platform would send them)."""

import itertools

_seq = itertools.count(1)


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
