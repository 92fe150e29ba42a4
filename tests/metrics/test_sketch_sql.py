"""The database's sketch build and merge (PostgreSQL: the SQL functions of migration 0023; SQLite: their
Python twins) write what `sketch_pack` writes for the same counts, in either layout."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import F

from cskpi.models import Department
from metrics.measures import MAX_BIN, PAIR_MAX, QUANTILE, _SketchBuild, _SketchMerge, sketch_bin, sketch_pack
from metrics.models import MEASURE_TABLES

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 5, 4, 17, tzinfo=UTC)
COUNTS = MEASURE_TABLES["interactions"].model
SKETCHES = MEASURE_TABLES["first_response_seconds_sketch"].model


def test_the_database_merges_drawn_sketches_as_python_does():
    department = Department.objects.create(slug="sketch-merge", name="Merge")
    rng = random.Random(3)
    states: dict[str, list[bytes | None]] = {}
    rows = []
    for group in range(40):
        agent = f"a-{group}"
        for day in range(rng.choice([1, 2, 5, 12])):
            bins = rng.sample(range(MAX_BIN + 1), rng.choice([0, 1, 3, 30, 200]))
            counts = {b: rng.choice([1, 1, 2, 3, 40, 64, 65, 1000, PAIR_MAX + 1, 2**31 + 5]) for b in bins}
            state = sketch_pack(counts) or None
            states.setdefault(agent, []).append(state)
            rows.append(SKETCHES(cube="day_agent", department=department, agent=agent,
                                 bucket_start=T0 + timedelta(days=day), first_response_seconds_sketch=state))
    SKETCHES.objects.bulk_create(rows)
    merged = (SKETCHES.objects.filter(department=department).values("agent")
              .annotate(state=_SketchMerge(F("first_response_seconds_sketch"))))
    assert len(merged) == len(states)
    for row in merged:
        assert QUANTILE.load(row["state"]) == QUANTILE.merge(states[row["agent"]]), row["agent"]


def test_the_database_builds_a_sketch_of_raw_values_as_python_packs_their_bins():
    """Values drawn per group, from a few to bins of hundreds (the wide layout shorter there)."""
    department = Department.objects.create(slug="sketch-build", name="Build")
    rng = random.Random(4)
    values: dict[str, list[int]] = {}
    rows = []
    for group, (size, spread) in enumerate([(1, 50), (4, 500), (40, 5000), (300, 20), (1500, 6), (900, 100_000)]):
        agent = f"a-{group}"
        values[agent] = [rng.randrange(spread) for _ in range(size)]
        rows += [COUNTS(cube="hour", department=department, agent=agent, bucket_start=T0 + timedelta(hours=i),
                        wait_seconds_sum=v) for i, v in enumerate(values[agent])]
    COUNTS.objects.bulk_create(rows)
    built = (COUNTS.objects.filter(department=department).values("agent")
             .annotate(state=_SketchBuild(F("wait_seconds_sum"))))
    layouts = set()
    for row in built:
        counts: dict[int, int] = {}
        for v in values[row["agent"]]:
            counts[sketch_bin(v)] = counts.get(sketch_bin(v), 0) + 1
        assert bytes(row["state"]) == sketch_pack(counts), row["agent"]
        layouts.add(bytes(row["state"])[0])
    assert 0xFE in layouts and len(layouts) > 1  # both layouts written
