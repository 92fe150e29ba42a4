"""Measure kinds: the quantile sketch's bins and bound by hand, and every kind's merge against its
plain-Python meaning."""

import math
import random

import pytest
from pyroaring import BitMap

from metrics.catalog import MEASURES_BY_KEY, quantile
from metrics.measures import (
    COMPACT_COUNT_MAX,
    COMPACT_TAG,
    COUNT,
    LINEAR_BINS,
    MAX_BIN,
    PAIR_MAX,
    QUANTILE,
    SET_SMALL_MAX,
    SET_SMALL_TAG,
    SUM,
    set_pack,
    set_unpack,
    sketch_bin,
    sketch_bins_counts,
    sketch_counts,
    sketch_pack,
    sketch_quantile,
    sketch_representative,
)


def _packed(values):
    counts = {}
    for v in values:
        counts[sketch_bin(v)] = counts.get(sketch_bin(v), 0) + 1
    return sketch_pack(counts)


def _within(actual, exact):
    return abs(actual - exact) <= max(0.01 * exact, 1.0)


@pytest.mark.parametrize(("value", "index"), [
    (0.0, 0), (1.999, 0), (2.0, 1), (99.999, 49), (100.0, LINEAR_BINS), (100.01, LINEAR_BINS + 1),
    (math.inf, MAX_BIN), (math.nan, MAX_BIN), (-5.0, 0), (1e308, MAX_BIN),
])
def test_sketch_bin_hand_computed(value, index):
    assert sketch_bin(value) == index


def test_every_value_is_within_the_bound_of_its_bin_representative():
    rng = random.Random(7)
    values = [rng.uniform(0, 200) for _ in range(5000)] + [10 ** rng.uniform(2, 8.5) for _ in range(5000)]
    values += [100.0, 2.0, 0.0, 99.99999, 315_576_000.0]  # edges, and ten years
    for value in values:
        assert _within(sketch_representative(sketch_bin(value)), value), value


def test_ten_years_fit_below_the_last_bin():
    assert sketch_bin(315_576_000.0) < MAX_BIN


@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99, 0.01, 1.0])
def test_sketch_quantile_is_the_nearest_rank_value_within_the_bound(q):
    rng = random.Random(int(q * 100))
    for n in (1, 2, 3, 10, 101, 1000):
        values = [round(rng.expovariate(1 / 900), 3) for _ in range(n)]
        exact = sorted(values)[max(math.ceil(q * n), 1) - 1]
        value, sample = sketch_quantile(_packed(values), q)
        assert sample == n and _within(value, exact), (n, value, exact)


def test_sketch_quantile_of_nothing_is_null():
    assert sketch_quantile(b"", 0.9) == (None, 0) and sketch_quantile(None, 0.9) == (None, 0)
    assert quantile("first_response_seconds_sketch", 0.9).evaluate({}) == (None, 0)


def test_sketch_pack_is_words_of_bin_and_count_where_every_count_is_small():
    # Hand-written bytes: the tag, then bin 3 twice (3 << 6 | 1 = 0x00C1), bin 700 once (700 << 6 | 0 =
    # 0xAF00), bin 1023 sixty-four times (0xFFFF). PostgreSQL writes the same with int4send.
    packed = sketch_pack({700: 1, 3: 2, MAX_BIN: COMPACT_COUNT_MAX})
    assert packed == bytes([COMPACT_TAG, 0x00, 0xC1, 0xAF, 0x00, 0xFF, 0xFF])
    bins, counts = sketch_bins_counts(packed)
    assert (list(bins), list(counts)) == ([3, 700, MAX_BIN], [2, 1, COMPACT_COUNT_MAX])
    assert sketch_pack({}) == b"" and sketch_pack({5: 0}) == b""
    assert sketch_pack([0, 2, 0, 1]) == sketch_pack({1: 2, 3: 1})  # a list indexed by bin


def test_sketch_pack_is_big_endian_pairs_of_bin_and_count_where_a_count_is_larger():
    # Bin 3 counts 65 (one more than a word holds) and bin 700 counts 2. PostgreSQL writes the same with int2send.
    assert sketch_pack({700: 2, 3: COMPACT_COUNT_MAX + 1}) == bytes([0, 3, 0, 65, 2, 188, 0, 2])
    bins, counts = sketch_bins_counts(sketch_pack({700: 2, 3: 1000}))
    assert (list(bins), list(counts)) == ([3, 700], [1000, 2])


def test_a_count_above_a_pair_is_split_and_read_back_exactly():
    counts = {0: 1, 10: PAIR_MAX, 11: PAIR_MAX + 1, MAX_BIN: 5 * PAIR_MAX + 7, 600: 2_000_000_000}
    packed = sketch_pack(counts)
    assert sketch_counts(packed) == counts and sketch_quantile(packed, 0.5)[1] == sum(counts.values())
    assert packed[0] != COMPACT_TAG and all(c <= PAIR_MAX for c in sketch_bins_counts(packed)[1])
    n = sum(counts.values())
    for q in (0.0001, 0.5, 0.99, 1.0):
        rank = max(math.ceil(q * n - 1e-9), 1)
        seen, expected = 0, None
        for b in sorted(counts):
            seen += counts[b]
            if seen >= rank:
                expected = b
                break
        assert sketch_quantile(packed, q) == (sketch_representative(expected), n), q


def test_kinds_merge_as_their_meaning():
    assert COUNT.merge([3, 4, 0]) == 7 and COUNT.load(None) == 0
    assert SUM.merge([1.5, 2.25]) == 3.75 and SUM.load(None) == 0.0
    a, b = _packed([1.0, 150.0, 150.0]), _packed([150.0, 9000.0])
    merged = QUANTILE.merge([a, b, QUANTILE.empty()])
    assert sketch_counts(merged) == sketch_counts(_packed([1.0, 150.0, 150.0, 150.0, 9000.0]))
    bins = list(sketch_bins_counts(merged)[0])
    assert bins == sorted(set(bins))  # canonical: one pair per bin, in bin order
    assert QUANTILE.load(None) == b"" and QUANTILE.load(memoryview(a)) == a
    # A cube row read as stored (`read_is_state`) is None where its bucket had no duration: empty.
    assert QUANTILE.merge([None, a, None]) == a and QUANTILE.merge([None]) == QUANTILE.empty() == b""


def test_every_measure_has_a_kind_with_columns():
    for measure in MEASURES_BY_KEY.values():
        assert measure.columns and measure.kind.name in {"count", "sum", "quantile", "time_in_state", "gap_sum",
                                                         "gap_count", "set", "first_contact_set", "stock"}


def _stock_span(events, start, end):
    """(opening, ins, outs, outs of the opening) of a span [start, end) over (entered, left) pairs."""
    opening = sum(1 for a, b in events if a < start and (b is None or b >= start))
    ins = sum(1 for a, _ in events if start <= a < end)
    outs = sum(1 for _, b in events if b is not None and start <= b < end)
    lost = sum(1 for a, b in events if a < start and b is not None and start <= b < end)
    return opening, ins, outs, lost


def test_stock_carry_and_merge_equal_the_plain_count_over_any_span_of_periods():
    """Periods of length 10 on a line: the kind's state of any run of consecutive periods (merged from
    the period states, in any order) has the opening, ins, outs and outs of the opening counted directly."""
    rng = random.Random(7)
    events = []
    for _ in range(300):
        entered = rng.randrange(-30, 100)
        events.append((entered, rng.choice([None, entered + rng.randrange(0, 60)])))
    periods, width = 8, 10
    stock = MEASURES_BY_KEY["registry_customers"].kind

    def period(t):
        return t // width if t >= 0 else -1

    ins, outs, by_entry = {}, {}, {}
    for a, b in events:
        if 0 <= a < periods * width:
            ins[period(a)] = ins.get(period(a), 0) + 1
        if b is not None and 0 <= b < periods * width:
            entry = by_entry.setdefault(period(b), {})
            entry[period(a)] = entry.get(period(a), 0) + 1
            outs[period(b)] = outs.get(period(b), 0) + 1
    opening = sum(1 for a, b in events if a < 0 and (b is None or b >= 0))
    states = stock.carry(opening=opening, periods=periods, ins=ins, outs=outs, outs_by_entry=by_entry)
    for first in range(periods):
        for last in range(first, periods):
            chosen = [states[i] for i in range(first, last + 1)]
            rng.shuffle(chosen)
            merged = stock.merge(chosen)
            expected = _stock_span(events, first * width, (last + 1) * width)
            assert (merged.opening, merged.ins, merged.outs, merged.outs_of_opening) == expected
            assert merged.closing == _stock_span(events, (last + 1) * width, (last + 2) * width)[0]
    assert stock.merge([]) == stock.empty() and stock.merge([stock.empty(), states[3]]) == states[3]


def test_the_sample_size_adds_the_counts_exactly():
    rng = random.Random(5)
    # Counts past a pair in many random sketches; past 2**32 in a few (131k pairs a bin: 400 s here when
    # every fifth bin of 200 sketches held one).
    cases = [{b: rng.choice([1, 2, rng.randint(1, 5000), PAIR_MAX, PAIR_MAX + 1, 3 * PAIR_MAX + 7])
              for b in rng.sample(range(MAX_BIN), 40)} for _ in range(200)]
    cases += [{**case, b: 2**32 + 3} for case in cases[:3] for b in rng.sample(sorted(case), 1)]
    for counts in cases:
        packed = sketch_pack(counts)
        assert sketch_quantile(packed, 0.5)[1] == sum(counts.values())
        assert QUANTILE.merge([packed, packed]) == sketch_pack({b: 2 * c for b, c in counts.items()})


def test_either_layout_reads_back_the_counts_and_the_quantile_of_the_plain_sort():
    """Drawn sketches from a few values to bins of thousands: each packs in its layout, whose counts and
    nearest-rank quantiles are those of the values sorted."""
    rng = random.Random(11)
    layouts = set()
    for case in range(400):
        size = rng.choice([1, 3, 20, 300, 5000])
        spread = rng.choice([5, 60, 900])
        values = [rng.uniform(0, 10) * spread + rng.choice([0, 0, 10_000 * rng.random()]) for _ in range(size)]
        counts: dict[int, int] = {}
        for v in values:
            counts[sketch_bin(v)] = counts.get(sketch_bin(v), 0) + 1
        packed = sketch_pack(counts)
        layouts.add(packed[0] == COMPACT_TAG)
        assert sketch_counts(packed) == counts, case
        bins, pair_counts = sketch_bins_counts(packed)
        assert max(pair_counts) <= (COMPACT_COUNT_MAX if packed[0] == COMPACT_TAG else PAIR_MAX)
        assert (packed[0] == COMPACT_TAG) == (max(counts.values()) <= COMPACT_COUNT_MAX)
        assert len(packed) == (1 + 2 * len(counts) if packed[0] == COMPACT_TAG
                               else 4 * sum(-(-c // PAIR_MAX) for c in counts.values()))
        ordered = sorted(sketch_bin(v) for v in values)
        for q in (0.01, 0.5, 0.9, 1.0):
            rank = max(math.ceil(q * len(values) - 1e-9), 1)
            assert sketch_quantile(packed, q) == (sketch_representative(ordered[rank - 1]), len(values)), (case, q)
    assert layouts == {True, False}


def test_set_pack_is_a_tag_and_little_endian_ids_where_that_is_shorter_than_roaring():
    # Two ids in two roaring containers: 28 bytes there, 9 here.
    assert set_pack(BitMap([1, 70_000])) == bytes([SET_SMALL_TAG, 1, 0, 0, 0, 0x70, 0x11, 1, 0])
    assert set_pack(BitMap()) is None and set_unpack(None) == BitMap()
    dense = BitMap(range(100, 140))  # 40 ids in one container: 96 bytes by roaring, 161 as uint32s
    assert set_pack(dense) == dense.serialize()
    spread = BitMap(range(0, (SET_SMALL_MAX + 1) << 16, 1 << 16))  # one id a container, one id too many
    assert set_pack(spread) == spread.serialize()
    assert set_pack(BitMap(list(spread)[:-1]))[:1] == bytes([SET_SMALL_TAG])


def test_either_set_layout_reads_back_the_ids_and_is_the_shorter():
    rng = random.Random(25)
    layouts = set()
    for _ in range(400):
        top = rng.choice([200, 70_000, 1 << 20, (1 << 32) - 1])
        ids = BitMap(rng.sample(range(top), rng.randint(1, min(top, 90))))
        stored = set_pack(ids)
        assert set_unpack(stored) == ids and set_unpack(memoryview(stored)) == ids
        assert len(stored) <= len(ids.serialize())
        layouts.add(stored[:1] == bytes([SET_SMALL_TAG]))
    assert layouts == {True, False}
