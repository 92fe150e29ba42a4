"""metrics 0025 stores a distinct set in the shorter of two layouts: every set keeps its ids, forwards in the
layout the code writes (the database's rewrite equals `set_pack`), backwards serialized by roaring again."""

from datetime import UTC, datetime, timedelta

import pytest
from pyroaring import BitMap

from metrics.measures import SET_SMALL_TAG, set_pack, set_unpack
from tests.metrics.migrating import migrate, migrate_to_latest

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("metrics", "0024_zeros_as_null")]
AFTER = [("metrics", "0025_sets_small")]
T0 = datetime(2026, 5, 4, 1, tzinfo=UTC)
_RUNS = BitMap(range(1000, 3000))
_RUNS.run_optimize()  # a run container: roaring's other cookie, left as it is
# Per agent (a day × agent row): the customer ids.
SETS = {
    "a-1": BitMap([7]),
    "a-2": BitMap([1, 70_000, 140_001, 4_000_000_000]),  # one id a container
    "a-3": BitMap(range(5, 19, 2)),  # 7 ids in one container: still shorter as uint32s
    "a-4": BitMap(range(5, 95, 2)),  # 45 ids in one container: roaring is shorter
    "a-5": BitMap(range(0, 65 << 16, 1 << 16)),  # 65 ids: past the small layout's bound
    "a-6": _RUNS,
    "a-7": None,
    "a-8": BitMap([3, 9, 70_001, 70_005, 70_009, 200_000]),  # several ids in each of several containers
}


def test_every_set_keeps_its_ids_in_the_shorter_layout_forwards_and_roaring_backwards():
    apps = migrate(BEFORE)
    try:
        department = apps.get_model("cskpi", "Department").objects.create(slug="mig25", name="Mig")
        sets = apps.get_model("metrics", "InteractionSetBucket")
        firsts = apps.get_model("metrics", "InteractionFirstContactBucket")
        for n, (agent, ids) in enumerate(SETS.items()):
            stored = None if ids is None else ids.serialize()
            sets.objects.create(cube="day_agent", department_id=department.id, bucket_start=T0, agent=agent,
                                customers=stored)
            firsts.objects.create(cube="hour", department_id=department.id, bucket_start=T0 + timedelta(hours=n),
                                  first_contact_customers=stored)

        apps = migrate(AFTER)
        rows = {r["agent"]: r["customers"] for r in apps.get_model("metrics", "InteractionSetBucket").objects.values()}
        firsts = [r["first_contact_customers"] for r in apps.get_model("metrics", "InteractionFirstContactBucket")
                  .objects.order_by("bucket_start").values()]
        small = set()
        for (agent, ids), first in zip(SETS.items(), firsts, strict=True):
            for stored in (rows[agent], first):
                if ids is None:
                    assert stored is None
                    continue
                stored = bytes(stored)
                assert set_unpack(stored) == ids, agent
                # The layout the code writes; a run container, which the code never writes, as it was.
                assert stored == (ids.serialize() if agent == "a-6" else set_pack(ids)), agent
                small.add((agent, stored[:1] == bytes([SET_SMALL_TAG])))
        assert {a for a, is_small in small if is_small} == {"a-1", "a-2", "a-3", "a-8"}

        apps = migrate(BEFORE)
        rows = {r["agent"]: r["customers"] for r in apps.get_model("metrics", "InteractionSetBucket").objects.values()}
        firsts = [r["first_contact_customers"] for r in apps.get_model("metrics", "InteractionFirstContactBucket")
                  .objects.order_by("bucket_start").values()]
        for (agent, ids), first in zip(SETS.items(), firsts, strict=True):
            for stored in (rows[agent], first):
                assert (None if stored is None else bytes(stored)) == (None if ids is None else ids.serialize())
    finally:
        # The test database is left as every other test expects it: every migration applied.
        migrate_to_latest()
