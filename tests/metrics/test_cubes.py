"""metrics.cubes: a UTC grain's fit over many boundaries at once, against the check of each boundary."""

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from metrics.cubes import CUBES, LONG_CACHED, _epochs_spread_long, _epochs_spread_short

UTC_GRAINS = [c for c in CUBES if c.seconds is not None]  # hour, hour from :30, quarter-hour
BASE = datetime(2026, 1, 1, tzinfo=UTC)
# Offsets from BASE that are whole quarter-hours, hours from :30, whole hours, or none of those.
_STEPS = st.sampled_from([0, 900, 1800, 2700, 3600, 5400, 7200, 86_400, 1, 60, 600, 1799, 1801])
_MOMENT = st.builds(lambda n, step, micro: BASE + timedelta(seconds=n * step, microseconds=micro),
                    st.integers(0, 2_000), _STEPS, st.sampled_from([0, 0, 0, 1]))


@settings(max_examples=300, deadline=None)
@given(st.lists(_MOMENT, min_size=1, max_size=40, unique=True).map(sorted))
def test_on_grain_all_is_on_grain_of_every_boundary(moments):
    boundaries = tuple(moments)
    for cube in UTC_GRAINS:
        assert cube.on_grain_all(boundaries) == all(cube.on_grain(b) for b in boundaries), cube.key


def test_on_grain_all_over_a_year_of_hours_in_asia_kolkata_fits_the_hours_from_half_past():
    hours = tuple(datetime(2025, 1, 1, 0, 30, tzinfo=UTC) + timedelta(hours=h) for h in range(8_760))
    assert {c.key for c in UTC_GRAINS if c.on_grain_all(hours)} == {
        c.key for c in UTC_GRAINS if c.offset == 1800 or c.seconds == 900}


def test_a_long_boundary_tuple_is_cached_among_a_few():
    _epochs_spread_short.cache_clear()
    _epochs_spread_long.cache_clear()
    for i in range(LONG_CACHED + 3):
        hours = tuple(BASE + timedelta(days=i, hours=h) for h in range(8_760))
        assert UTC_GRAINS[0].on_grain_all(hours) and UTC_GRAINS[0].on_grain_all(hours[:24])
    assert _epochs_spread_long.cache_info().currsize == LONG_CACHED
    assert _epochs_spread_short.cache_info().currsize == LONG_CACHED + 3
