"""Period boundaries in zones with irregular days (hardening issue, finding 8: the skipped day), and in zones whose
offset was once not a whole number of quarter-hours."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from metrics.cubes import LONG_CACHED
from metrics.periods import OffGrid, _boundaries, _boundaries_long, boundaries_get, is_quarter
from tests.metrics.records import interaction_build, records_store

APIA = ZoneInfo("Pacific/Apia")  # skipped 2011-12-30 when it moved west of the date line
UTC_ZONE = ZoneInfo("UTC")


def _reference_day_starts(first: datetime, last: datetime, zone: ZoneInfo) -> list[datetime]:
    """The first UTC quarter-hour of every local date met between `first` and `last`."""
    starts, seen, moment = [], set(), first
    while moment < last:
        day = moment.astimezone(zone).date()
        if day not in seen:
            seen.add(day)
            starts.append(moment)
        moment += timedelta(minutes=15)
    return starts


def test_a_day_series_over_a_skipped_day_repeats_no_period_start():
    start = datetime(2011, 12, 28, tzinfo=APIA).astimezone(UTC)
    end = datetime(2012, 1, 3, tzinfo=APIA).astimezone(UTC)
    bounds = boundaries_get(start=start, end=end, zone=APIA, granularity="day")
    assert len(bounds) == len(set(bounds)) and bounds == sorted(bounds)
    local_days = [b.astimezone(APIA).date().isoformat() for b in bounds[:-1]]
    assert local_days == ["2011-12-28", "2011-12-29", "2011-12-31", "2012-01-01", "2012-01-02"]
    assert bounds[:-1] == _reference_day_starts(start, end, APIA)


def _reference_hour_starts(first: datetime, last: datetime, zone: ZoneInfo) -> list[datetime]:
    """Every UTC quarter-hour in (first, last) whose local minute is 0."""
    starts, moment = [], first + timedelta(minutes=15)
    while moment < last:
        if moment.astimezone(zone).minute == 0:
            starts.append(moment)
        moment += timedelta(minutes=15)
    return starts


@pytest.mark.parametrize(("zone", "year"), [
    ("America/New_York", 2026), ("Europe/London", 2026), ("Australia/Lord_Howe", 2026),  # DST of 30 minutes
    ("Pacific/Chatham", 2026), ("America/St_Johns", 2026), ("Asia/Tehran", 2021), ("Antarctica/Troll", 2026),
    ("Asia/Kathmandu", 1986), ("Pacific/Apia", 2011), ("Asia/Kolkata", 1942), ("UTC", 2026),
])
def test_an_hour_series_starts_at_every_local_hour(zone, year):
    tz = ZoneInfo(zone)
    start, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    bounds = boundaries_get(start=start, end=end, zone=tz, granularity="hour")
    assert bounds == [start, *_reference_hour_starts(start, end, tz), end]


def test_long_boundary_tuples_are_cached_among_a_few():
    """A year of hours (an hour-of-day grouping's nesting) is ~0.5 MB, ten years 5 MB: such tuples must not
    fill the 512 places the short ones have."""
    _boundaries.cache_clear()
    _boundaries_long.cache_clear()
    for i in range(LONG_CACHED + 3):
        start = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(days=i)
        hours = boundaries_get(start=start, end=start + timedelta(days=365), zone=UTC_ZONE, granularity="hour")
        days = boundaries_get(start=start, end=start + timedelta(days=365), zone=UTC_ZONE, granularity="day")
        assert (len(hours), len(days)) == (8761, 366)
    assert _boundaries_long.cache_info().currsize == LONG_CACHED
    assert _boundaries.cache_info().currsize == LONG_CACHED + 3  # the days


SINGAPORE = ZoneInfo("Asia/Singapore")  # +07:00 until 1933, +07:20 until 1941-09-01, +07:30 after


@pytest.mark.parametrize(("zone", "start", "end", "off_grid"), [
    # Into +07:20 on 1933-01-01 (its midnight is skipped: 00:20 is 17:00 UTC); 1933-01-02 starts at 16:40 UTC.
    (SINGAPORE, datetime(1932, 12, 25, 17, tzinfo=UTC), datetime(1933, 1, 20, 17, tzinfo=UTC), {"hour", "day", "week"}),
    # Out of +07:20 on 1941-09-01, which starts at 00:10 (+07:30), 16:40 UTC.
    (SINGAPORE, datetime(1941, 8, 20, 16, 30, tzinfo=UTC), datetime(1941, 9, 15, 16, 30, tzinfo=UTC),
     {"hour", "day", "week", "month"}),
    (ZoneInfo("Asia/Kathmandu"), datetime(1985, 12, 20, tzinfo=UTC), datetime(1986, 1, 15, tzinfo=UTC), set()),  # +05:45
    # +00:20 all along: no month starts inside the range.
    (ZoneInfo("Europe/Amsterdam"), datetime(1940, 4, 1, tzinfo=UTC), datetime(1940, 4, 27, tzinfo=UTC),
     {"hour", "day", "week"}),
])
@pytest.mark.parametrize("granularity", ["hour", "day", "week", "month", "total"])
def test_a_period_boundary_off_the_quarter_hours_is_refused(zone, start, end, off_grid, granularity):
    if granularity in off_grid:
        with pytest.raises(OffGrid) as raised:
            boundaries_get(start=start, end=end, zone=zone, granularity=granularity)
        moment = raised.value.moment  # a local midnight off the UTC quarter-hours, or a UTC quarter-hour off the local ones
        local = moment.astimezone(zone)
        assert start < moment < end and (not is_quarter(moment) or local.minute % 15 or local.second)
    else:
        bounds = boundaries_get(start=start, end=end, zone=zone, granularity=granularity)
        assert all(is_quarter(b) for b in bounds) and bounds[0] == start and bounds[-1] == end
        assert len(bounds) > 2 or granularity in ("month", "total")


@pytest.mark.django_db
def test_the_metrics_series_over_the_skipped_day(staff_client, department):
    department.timezone = "Pacific/Apia"
    department.save()
    moment = datetime(2011, 12, 31, 9, tzinfo=APIA)
    records_store([interaction_build(department=department, created_at=moment),
                   interaction_build(department=department, created_at=moment - timedelta(days=2))])
    response = staff_client.get("/api/v1/metrics", {"kpi": "interactions", "start": "2011-12-28",
                                                     "end": "2012-01-02", "timezone": "Pacific/Apia"})
    assert response.status_code == 200, response.content
    series = response.json()["results"][0]["series"]
    starts = [p["start"][:10] for p in series]
    assert starts == ["2011-12-28", "2011-12-29", "2011-12-31", "2012-01-01"]
    assert [p["value"] for p in series] == [0, 1, 1, 0]
