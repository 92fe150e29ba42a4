"""A plain-Python reference for business durations and SLA attainment.

It shares no code with `cskpi.calendars` or `ingestion.service_levels`: a calendar is the body's
JSON; a shift is a pair of local wall times turned into instants on its own (an overnight shift
ends on the next day); a closed day (holiday) is subtracted as the whole local day; durations are
summed with `timedelta` arithmetic, day by day. Attainment is decided from business time alone
(answered: business time to the answer ≤ target; unanswered: business time to `now` > target is
breached), never from a deadline.
"""

from datetime import UTC, date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays as holiday_data

WEEKDAY_NAMES = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def instant(naive: datetime, zone: ZoneInfo) -> datetime:
    """A local wall time as a UTC instant: the earliest reading that exists; a wall time skipped by
    the clocks going forward is the instant they jumped (the first existing minute after it)."""
    found = []
    for fold in (0, 1):
        aware = naive.replace(tzinfo=zone, fold=fold)
        utc = aware.astimezone(UTC)
        if utc.astimezone(zone).replace(tzinfo=None) == naive:
            found.append(utc)
    if found:
        return min(found)
    probe = naive.replace(second=0, microsecond=0)
    while True:
        probe += timedelta(minutes=1)
        aware = probe.replace(tzinfo=zone)
        utc = aware.astimezone(UTC)
        if utc.astimezone(zone).replace(tzinfo=None) == probe:
            return utc


def _wall(day: date, hhmm: str) -> datetime:
    hours, minutes = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day) + timedelta(hours=hours, minutes=minutes)


@cache
def _public_holidays(country: str, year: int) -> frozenset[date]:
    return frozenset(holiday_data.country_holidays(country, years=[year]))


def _closed_days(version: dict, years: range) -> set[date]:
    closed = {date.fromisoformat(d) for d in version.get("holidays") or []}
    country = version.get("holiday_country")
    if country:
        for year in years:
            closed |= _public_holidays(country, year)
    return closed


def _subtract(interval: tuple[datetime, datetime], holes: list[tuple[datetime, datetime]]):
    pieces = [interval]
    for h_start, h_end in holes:
        cut = []
        for a, b in pieces:
            if h_end <= a or b <= h_start:
                cut.append((a, b))
                continue
            if a < h_start:
                cut.append((a, h_start))
            if h_end < b:
                cut.append((h_end, b))
        pieces = cut
    return pieces


def open_intervals(version: dict, zone: ZoneInfo, first: date, last: date) -> list[tuple[datetime, datetime]]:
    """The open UTC intervals of the shifts starting on local days first … last, holidays removed."""
    years = range(first.year - 1, last.year + 2)
    closed = _closed_days(version, years)
    holes = [(instant(datetime(d.year, d.month, d.day), zone), instant(datetime(d.year, d.month, d.day) +
                                                                        timedelta(days=1), zone))
             for d in closed if first - timedelta(days=2) <= d <= last + timedelta(days=2)]
    out = []
    day = first
    while day <= last:
        for start, end in version["weekly"].get(WEEKDAY_NAMES[day.weekday()], []):
            a = _wall(day, start)
            b = _wall(day, end)
            if b <= a:  # crosses midnight
                b += timedelta(days=1)
            ua, ub = instant(a, zone), instant(b, zone)
            if ub > ua:
                out.extend(_subtract((ua, ub), holes))
        day += timedelta(days=1)
    return sorted(out)


def version_in_force(versions: list[dict], zone: ZoneInfo, anchor: datetime) -> dict | None:
    local_day = anchor.astimezone(zone).date()
    chosen = None
    for version in versions:
        if date.fromisoformat(version["effective_from"]) <= local_day:
            if chosen is None or version["effective_from"] > chosen["effective_from"]:
                chosen = version
    return chosen


def business_seconds(versions: list[dict], zone: ZoneInfo, anchor: datetime, stop: datetime) -> float:
    """Seconds of [anchor, stop) within the open hours of the version in force at `anchor`."""
    if stop <= anchor:
        return 0.0
    version = version_in_force(versions, zone, anchor)
    if version is None:
        return (stop - anchor).total_seconds()
    first = anchor.astimezone(zone).date() - timedelta(days=1)
    last = stop.astimezone(zone).date() + timedelta(days=1)
    total = timedelta(0)
    for a, b in open_intervals(version, zone, first, last):
        lo, hi = max(a, anchor), min(b, stop)
        if hi > lo:
            total += hi - lo
    return total.total_seconds()


def clock_seconds(versions, zone, anchor, stop, clock: str) -> float:
    if clock == "calendar":
        return max((stop - anchor).total_seconds(), 0.0)
    return business_seconds(versions, zone, anchor, stop)


def target_of(policy: dict | None, name: str, channel: str | None):
    if policy is None:
        return None
    overrides = (policy.get("channels") or {}).get(channel) if channel else None
    if overrides is not None and name in overrides:
        return overrides[name]
    return policy.get(name)


def sla_state(*, versions, zone, policy, target_name: str, anchor: datetime, stop: datetime | None,
              channel: str | None, now: datetime, clock: str = "business", exempt: bool = False) -> str | None:
    """met / breached / pending, or None without a target."""
    target = target_of(policy, target_name, channel)
    if target is None or exempt:
        return None
    if stop is not None:
        return "met" if clock_seconds(versions, zone, anchor, stop, clock) <= target else "breached"
    if now <= anchor:
        return "pending"
    return "breached" if clock_seconds(versions, zone, anchor, now, clock) > target else "pending"
