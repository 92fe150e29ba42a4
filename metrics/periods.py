"""Periods of a KPI query, cut in the query's zone: boundaries, alignment and comparison ranges."""

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from metrics.cubes import LONG_BOUNDARIES, LONG_CACHED, QUARTER_SECONDS, is_local_midnight, local_midnight


class Granularity:
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    TOTAL = "total"

    ALL = (HOUR, DAY, WEEK, MONTH, TOTAL)
    DAILY = (DAY, WEEK, MONTH)  # periods that start at local midnights


class Compare:
    PREVIOUS_PERIOD = "previous_period"
    PREVIOUS_WEEK = "previous_week"
    PREVIOUS_YEAR = "previous_year"

    ALL = (PREVIOUS_PERIOD, PREVIOUS_WEEK, PREVIOUS_YEAR)


_QUARTER = timedelta(seconds=QUARTER_SECONDS)
_HOUR = timedelta(hours=1)


class OffGrid(ValueError):  # noqa: N818 - a condition of the zone, not a failure of the code
    """A zone's local hours or days fall off the UTC quarter-hours where `moment` lies: its UTC offset then was
    not a whole number of quarter-hours (Asia/Singapore's +07:20 of 1933-1941, Europe/Amsterdam's +00:19:32
    before 1937). No aggregate is finer than a quarter-hour, so such periods cannot be cut."""

    def __init__(self, moment: datetime, zone: ZoneInfo):
        self.moment, self.zone = moment, zone
        super().__init__(f"{zone.key} is off the quarter-hours at {moment.astimezone(zone).isoformat()}")


def is_quarter(moment: datetime) -> bool:
    return moment.microsecond == 0 and int(moment.timestamp()) % QUARTER_SECONDS == 0


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def boundaries_get(*, start: datetime, end: datetime, zone: ZoneInfo, granularity: str) -> list[datetime]:
    """[start, ..., end]: the range's ends and every period boundary strictly between them, as UTC
    instants. A range whose ends are not period boundaries gets clipped first and last periods.
    `OffGrid` when a boundary between the ends (an hour: any instant of the range) is off the quarter-hours."""
    return list(boundaries_tuple(start=start, end=end, zone=zone, granularity=granularity))


def boundaries_tuple(*, start: datetime, end: datetime, zone: ZoneInfo, granularity: str) -> tuple[datetime, ...]:
    """`boundaries_get`'s boundaries as the cached tuple itself, for a caller that only reads them (a 10-year
    hour-of-day grouping holds 87,600: no list copied per department and table)."""
    length = _GRAIN_LENGTH.get(granularity)
    long = length is not None and end - start > length * LONG_BOUNDARIES  # more boundaries than that (about)
    return (_boundaries_long if long else _boundaries)(start, end, zone, granularity)


def period_floor(moment: datetime, zone: ZoneInfo, granularity: str) -> datetime:
    """The start of the (unclipped) period holding `moment`: a local hour, midnight, Monday or 1st."""
    local = moment.astimezone(zone)
    if granularity == Granularity.HOUR:
        return (moment - timedelta(minutes=local.minute, seconds=local.second,
                                   microseconds=local.microsecond)).astimezone(UTC)
    day = local.date()
    if granularity == Granularity.WEEK:
        day -= timedelta(days=day.weekday())
    elif granularity == Granularity.MONTH:
        day = day.replace(day=1)
    floor = local_midnight(day, zone)
    # A local midnight that does not exist (a skipped day, a DST gap at midnight) maps past `moment`.
    return floor if floor <= moment else moment


def _boundaries_compute(start: datetime, end: datetime, zone: ZoneInfo, granularity: str) -> tuple[datetime, ...]:
    out: list[datetime] = [start]
    if granularity == Granularity.HOUR:
        # Every instant where a local hour starts (twice the same wall hour when clocks go back).
        # From one, the next is an hour on unless the offset changes on the way (then quarter by quarter): a
        # year of hours costs 8,760 zone conversions, not 35,040 (a 10-year hour-of-day grouping took 0.4 s).
        moment = start + _QUARTER
        local = moment.astimezone(zone)
        while moment < end:
            if local.minute % 15 or local.second:  # no local hour starts on a quarter-hour here
                raise OffGrid(moment, zone)
            if local.minute == 0:
                out.append(moment)
                ahead = moment + _HOUR
                ahead_local = ahead.astimezone(zone)
                if ahead_local.utcoffset() == local.utcoffset():
                    moment, local = ahead, ahead_local
                    continue
            moment += _QUARTER
            local = moment.astimezone(zone)
    elif granularity != Granularity.TOTAL:
        day = period_floor(start, zone, granularity).astimezone(zone).date()
        while True:
            if granularity == Granularity.DAY:
                day += timedelta(days=1)
            elif granularity == Granularity.WEEK:
                day += timedelta(days=7)
            else:
                day = add_months(day, 1)
            moment = local_midnight(day, zone)
            if moment >= end:
                break
            if moment > out[-1]:  # a skipped local day (Pacific/Apia, 2011-12-30) starts no period
                if not is_quarter(moment):
                    raise OffGrid(moment, zone)
                out.append(moment)
    out.append(end)
    return tuple(out)


# Dashboards repeat the same ranges (a year by day is 366 zone conversions); a long tuple of boundaries is kept
# only among a few (metrics.cubes.LONG_BOUNDARIES).
_boundaries = lru_cache(maxsize=512)(_boundaries_compute)
_boundaries_long = lru_cache(maxsize=LONG_CACHED)(_boundaries_compute)
_GRAIN_LENGTH = {Granularity.HOUR: timedelta(hours=1), Granularity.DAY: timedelta(days=1),
                 Granularity.WEEK: timedelta(days=7), Granularity.MONTH: timedelta(days=28)}


@lru_cache(maxsize=512)
def period_starts_iso(boundaries: tuple[datetime, ...], zone: ZoneInfo) -> tuple[str, ...]:
    """The periods' starts as ISO 8601 in the query zone, as the response shows them."""
    return tuple(b.astimezone(zone).isoformat() for b in boundaries[:-1])


def _shift_local(moment: datetime, zone: ZoneInfo, *, days: int = 0, years: int = 0) -> datetime:
    """The same local wall time `days`/`years` earlier or later (Feb 29 → Feb 28), on a quarter-hour."""
    local = moment.astimezone(zone).replace(tzinfo=None)
    if years:
        day = local.day if not (local.month == 2 and local.day == 29) else 28
        local = local.replace(year=local.year + years, day=day)
    local += timedelta(days=days)
    shifted = local.replace(tzinfo=zone).astimezone(UTC)
    return datetime.fromtimestamp(int(shifted.timestamp()) // QUARTER_SECONDS * QUARTER_SECONDS, tz=UTC)


def previous_range(*, start: datetime, end: datetime, zone: ZoneInfo, granularity: str,
                   compare: str) -> tuple[datetime, datetime]:
    """The range a comparison reads: in whole local days or months when the range is made of them."""
    midnights = is_local_midnight(start, zone) and is_local_midnight(end, zone)
    if compare == Compare.PREVIOUS_PERIOD:
        if granularity == Granularity.MONTH:
            first, last = start.astimezone(zone).date(), end.astimezone(zone).date()
            months = (last.year - first.year) * 12 + last.month - first.month
            return local_midnight(add_months(first, -months), zone), start
        if midnights:
            first, last = start.astimezone(zone).date(), end.astimezone(zone).date()
            return local_midnight(first - (last - first), zone), start
        return start - (end - start), start
    if compare == Compare.PREVIOUS_WEEK:
        return _shift_local(start, zone, days=-7), _shift_local(end, zone, days=-7)
    return _shift_local(start, zone, years=-1), _shift_local(end, zone, years=-1)
