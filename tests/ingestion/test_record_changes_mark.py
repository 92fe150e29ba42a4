"""record_changes_mark: point marks and spans become one mark per quarter, merged per department."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from cskpi.services import department_upsert
from ingestion.changes import quarter_floor, quarter_ranges, record_changes_mark, record_changes_mark_span
from ingestion.models import RecordChange

T0 = datetime(2026, 3, 29, 0, 7, 13, 250_000, tzinfo=UTC)
Q = timedelta(minutes=15)


def _expected(marks, spans) -> set[tuple[int, datetime]]:
    """Plain reference: every quarter each mark and each span touches."""
    quarters = {(d, quarter_floor(m)) for d, m in marks}
    for d, first, last in spans:
        q = quarter_floor(first)
        while q <= last:
            quarters.add((d, q))
            q += Q
    return quarters


def test_quarter_ranges_cover_exactly_the_quarters_touched_each_once_in_order():
    rng = random.Random(11)
    for _ in range(300):
        marks = [(rng.randint(1, 3), T0 + timedelta(seconds=rng.uniform(0, 86_400))) for _ in range(rng.randint(0, 30))]
        spans = []
        for _ in range(rng.randint(0, 8)):
            first = T0 + timedelta(seconds=rng.uniform(0, 86_400))
            spans.append((rng.randint(1, 3), first, first + timedelta(seconds=rng.choice([0, 1, 899, 900, 28_800]))))
        ranges = quarter_ranges(marks, spans)
        listed = [(d, datetime.fromtimestamp(q, tz=UTC)) for d, first, last in ranges for q in range(first, last + 1, 900)]
        assert set(listed) == _expected(marks, spans)
        assert listed == sorted(listed) and len(listed) == len(set(listed))  # each once, in writers' order
        for (d1, _, last), (d2, first, _) in zip(ranges, ranges[1:], strict=False):
            assert d1 < d2 or first > last + 900  # merged: no two ranges of a department touch


def test_a_span_ending_before_it_starts_marks_nothing():
    assert quarter_ranges((), [(1, T0, T0 - timedelta(seconds=1))]) == []


@pytest.mark.django_db
def test_marks_and_spans_written_once_per_quarter_with_a_new_version_when_marked_again():
    department = department_upsert(slug="marks", name="Marks", timezone="Asia/Ho_Chi_Minh")
    marks = [(department.id, T0), (department.id, T0 + timedelta(minutes=3))]  # one quarter
    spans = [(department.id, T0 + timedelta(minutes=10), T0 + timedelta(hours=1))]  # overlaps it
    assert record_changes_mark(record_type="agent_event", marks=marks, spans=spans) == 5
    rows = {r.quarter_start: r.version for r in RecordChange.objects.filter(department=department)}
    assert set(rows) == {q for _, q in _expected(marks, spans)}
    assert record_changes_mark_span(record_type="agent_event", department_id=department.id, start=T0,
                                    end=T0 + Q) == 2
    again = {r.quarter_start: r.version for r in RecordChange.objects.filter(department=department)}
    assert set(again) == set(rows)
    assert [again[q] != rows[q] for q in sorted(rows)] == [True, True, False, False, False]
