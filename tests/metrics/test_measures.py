"""Measure kinds: the quantile sketch's bins and bound by hand, and every kind's merge against its
plain-Python meaning."""

import math
import random

import pytest

from metrics.catalog import MEASURES_BY_KEY, quantile
from metrics.measures import (
    COUNT,
    COUNT_MASK,
    LINEAR_BINS,
    MAX_BIN,
    QUANTILE,
    SUM,
    sketch_bin,
    sketch_counts,
    sketch_pack,
    sketch_quantile,
    sketch_representative,
    sketch_size,
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
    assert sketch_quantile([], 0.9) == (None, 0)
    assert quantile("first_response_seconds_sketch", 0.9).evaluate({}) == (None, 0)


def test_sketch_quantile_reads_exact_layer_states_with_repeated_bins():
    # The exact layer stores one entry per record, so a bin can appear several times, unordered.
    one_by_one = [(sketch_bin(v) << 32) | 1 for v in (500.0, 3.0, 500.0, 40.0)]
    assert sketch_quantile(one_by_one, 0.5) == sketch_quantile(_packed([500.0, 3.0, 500.0, 40.0]), 0.5)
    assert sketch_quantile(one_by_one, 0.5)[1] == 4


def test_kinds_merge_as_their_meaning():
    assert COUNT.merge([3, 4, 0]) == 7 and COUNT.load(None) == 0
    assert SUM.merge([1.5, 2.25]) == 3.75 and SUM.load(None) == 0.0
    a, b = _packed([1.0, 150.0, 150.0]), _packed([150.0, 9000.0])
    merged = QUANTILE.merge([a, b, QUANTILE.empty()])
    assert sketch_counts(merged) == sketch_counts(_packed([1.0, 150.0, 150.0, 150.0, 9000.0]))
    assert merged == sorted(merged)  # canonical: one entry per bin, in bin order
    assert QUANTILE.load(None) == [] and QUANTILE.load("[4294967297]") == [4294967297]


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


def test_sketch_size_adds_the_counts_exactly_past_32_bits():
    rng = random.Random(5)
    for _ in range(200):
        counts = {b: rng.choice([1, 2, rng.randint(1, 5000), COUNT_MASK]) for b in rng.sample(range(MAX_BIN), 40)}
        packed = sketch_pack(counts)
        assert sketch_size(packed) == sum(counts.values())
    assert sketch_size([]) == 0
    assert sketch_size(sketch_pack({MAX_BIN: COUNT_MASK, 0: COUNT_MASK})) == 2 * COUNT_MASK  # a carry in 64 bits
