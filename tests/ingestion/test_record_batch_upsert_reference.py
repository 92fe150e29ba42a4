"""Random batches of random versions, duplicated and shuffled across requests: the stored rows,
every per-item result and the dirty-bucket marks equal a plain-Python reference that applies the
rules item by item."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingestion.models import Interaction, RecordChange

pytestmark = pytest.mark.django_db

BASE = datetime(2026, 3, 2, 10, tzinfo=UTC)
KEYS = [("crm", "A"), ("crm", "B"), ("ivr", "A")]

versions = st.fixed_dictionaries({
    "key": st.sampled_from(KEYS),
    "topic": st.sampled_from([None, "billing", "card"]),
    "wait_seconds": st.sampled_from([None, 0, 12.5]),
    "department": st.sampled_from(["cskh-hn", "cskh-hcm"]),
    "minute": st.integers(0, 50),  # created_at
    "updated": st.one_of(st.none(), st.integers(0, 4)),  # updated_at, minutes after BASE
})


def payload(v: dict) -> dict:
    item = {
        "source": v["key"][0], "external_id": v["key"][1], "department": v["department"], "channel": "chat",
        "created_at": (BASE + timedelta(minutes=v["minute"])).isoformat(), "status": "open",
    }
    if v["topic"] is not None:
        item["topic"] = v["topic"]
    if v["wait_seconds"] is not None:
        item["wait_seconds"] = v["wait_seconds"]
    if v["updated"] is not None:
        item["updated_at"] = (BASE + timedelta(minutes=v["updated"])).isoformat()
    return item


class Reference:
    """The contract, stated directly: per key, compare with the version held now."""

    def __init__(self):
        self.rows: dict = {}  # key -> (content, updated minute or None)

    def apply(self, v: dict) -> str:
        content = (v["topic"], None if v["wait_seconds"] is None else float(v["wait_seconds"]),
                   v["department"], v["minute"])
        held = self.rows.get(v["key"])
        if held is None:
            self.rows[v["key"]] = (content, v["updated"])
            return "created"
        held_content, held_updated = held
        if v["updated"] is not None and held_updated is not None and v["updated"] < held_updated:
            return "stale"
        if content == held_content:
            if v["updated"] is not None and (held_updated is None or v["updated"] > held_updated):
                self.rows[v["key"]] = (held_content, v["updated"])
            return "unchanged"
        self.rows[v["key"]] = (content, v["updated"])
        return "updated"


def bucket(held) -> tuple[str, datetime]:
    (_, _, department, minute), _ = held
    return department, BASE + timedelta(minutes=minute // 15 * 15)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(requests=st.lists(st.lists(versions, min_size=1, max_size=8), min_size=1, max_size=5), data=st.data())
def test_stored_rows_equal_the_reference(staff_client, department, other_department, requests, data):
    Interaction.objects.all().delete()
    # Re-send some earlier versions later (duplicates and out-of-order delivery).
    sent = [v for batch in requests for v in batch]
    replay = data.draw(st.lists(st.sampled_from(sent), max_size=6))
    requests = requests + ([data.draw(st.permutations(replay))] if replay else [])
    reference = Reference()
    for batch in requests:
        RecordChange.objects.all().delete()
        before = dict(reference.rows)
        body = staff_client.post("/api/v1/interactions", [payload(v) for v in batch], format="json").json()
        results = [reference.apply(v) for v in batch]
        assert [i["result"] for i in body["items"]] == results
        # Marks: the bucket a changed record left and the one it is in now, nothing else.
        changed = {v["key"] for v, r in zip(batch, results, strict=True) if r in ("created", "updated")}
        expected = {bucket(reference.rows[k]) for k in changed} | {bucket(before[k]) for k in changed if k in before}
        marked = {(d.department.slug, d.quarter_start) for d in RecordChange.objects.select_related("department")}
        assert marked == expected
    stored = {
        (r.source, r.external_id): (
            (r.topic, r.wait_seconds, r.department.slug, int((r.created_at - BASE).total_seconds() // 60)),
            None if r.updated_at is None else int((r.updated_at - BASE).total_seconds() // 60),
        )
        for r in Interaction.objects.select_related("department")
    }
    assert stored == reference.rows
