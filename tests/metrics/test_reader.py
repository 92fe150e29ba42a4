"""PeriodRows: one group's series kept as fetched reads as the mapping of period -> states it stands for."""

from metrics.reader import PeriodRows, StateRow, periods_writable
from metrics.selectors import _part_columns

POSITIONS = {"resolved_first_contact": 0, "resolved": 1}
# (period number, 1-based; the states in POSITIONS order): periods 0, 1 and 3, period 2 has no row.
ROWS = [(1, 4, 5), (2, 0, 0), (4, 7, 9)]


def test_period_rows_read_as_the_periods_states():
    periods = PeriodRows(POSITIONS, list(ROWS))
    assert list(periods) == [0, 1, 3] and len(periods) == 3
    assert 3 in periods and 2 not in periods and periods.get(2) is None
    assert dict(periods[3]) == {"resolved_first_contact": 7, "resolved": 9}
    assert [dict(states) for states in periods.values()] == [
        {"resolved_first_contact": 4, "resolved": 5}, {"resolved_first_contact": 0, "resolved": 0},
        {"resolved_first_contact": 7, "resolved": 9}]


def test_period_rows_columns_equal_those_picked_from_state_rows():
    periods = PeriodRows(POSITIONS, list(ROWS))
    as_dict = {row[0] - 1: StateRow(POSITIONS, row[1:]) for row in ROWS}
    parts = ("resolved_first_contact", "resolved")
    assert periods.columns(parts) == [[4, 0, 7], [5, 0, 9]] == _part_columns(as_dict, parts)
    assert _part_columns(periods, parts) == [[4, 0, 7], [5, 0, 9]]
    # A part this read does not hold: no columns from the rows; the states' own default (0) instead.
    assert periods.columns(("abandoned",)) is None
    assert _part_columns(periods, ("abandoned", "resolved")) == [[0, 0, 0], [5, 0, 9]]


def test_periods_writable_turns_period_rows_into_a_dict_with_the_same_states():
    read = {("bench-03",): PeriodRows(POSITIONS, list(ROWS))}
    periods = periods_writable(read, ("bench-03",))
    assert isinstance(periods, dict) and read[("bench-03",)] is periods
    assert {i: dict(s) for i, s in periods.items()} == {
        0: {"resolved_first_contact": 4, "resolved": 5}, 1: {"resolved_first_contact": 0, "resolved": 0},
        3: {"resolved_first_contact": 7, "resolved": 9}}
    periods[2] = {"abandoned": 1}
    assert periods_writable(read, ("bench-03",)) is periods
    assert periods_writable(read, ("other",)) == {} and ("other",) in read


def test_period_rows_of_a_grouped_read_skip_the_dimensions():
    # (period number, agent, channel, states...): the states from position 3 on, periods out of order.
    rows = [(3, "a-1", "chat", 7, 9), (1, "a-1", "chat", 4, 5)]
    periods = PeriodRows(POSITIONS, rows, first=3)
    assert list(periods) == [2, 0] and dict(periods[2]) == {"resolved_first_contact": 7, "resolved": 9}
    assert periods.columns(("resolved", "resolved_first_contact")) == [[9, 5], [7, 4]]
    assert _part_columns(periods, ("abandoned", "resolved")) == [[0, 0], [9, 5]]
