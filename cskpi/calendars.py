"""Business hours: a department's calendar (versions of a weekly schedule with holidays) and the
clock that measures open time with it.

A calendar body is `{"versions": [{"effective_from": "2026-01-01", "weekly": {"mon": [["08:00",
"12:00"], ...], ...}, "holidays": ["2026-09-02"], "holiday_country": "VN"}]}`; docs/calendars.md
states the rules. `calendar_parse` checks a body and gives its versions; `BusinessCalendar` is the
compiled form a department's records are measured with: per version a `BusinessClock`, the open
time as sorted UTC intervals (integer microseconds) with the open time before each, built a local
year at a time on demand, so the open time between two instants is two binary searches and the
instant open time reaches a target is one more.

Local wall times become instants by the zone's rules: an ambiguous time (the hour repeated when
clocks go back) is its first occurrence; a time that does not exist (skipped when clocks go
forward) is the instant the clocks jumped, so an interval only counts hours the wall clock shows.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from cskpi.errors import InvalidInput, text_clip

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_MINUTES = 24 * 60
MAX_VERSIONS = 100
MAX_HOLIDAYS = 1000
MAX_INTERVALS_PER_DAY = 24
MICROS = 1_000_000
FIRST_YEAR, LAST_YEAR = 1900, 2999  # as /metrics ranges
_TIME = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$|^24:00$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def holiday_countries() -> frozenset[str]:
    import holidays  # the package is large: loaded when a calendar names a country, not at start-up

    return frozenset(holidays.list_supported_countries())


def country_holidays(country: str, year: int) -> frozenset[date]:
    """The public holidays of `country` (ISO 3166 alpha-2) in `year`, from the `holidays` package
    (Vietnam: Tết and the other lunar holidays included)."""
    return _country_holidays(country, year)


_HOLIDAY_CACHE: dict[tuple[str, int], frozenset[date]] = {}


def _country_holidays(country: str, year: int) -> frozenset[date]:
    key = (country, year)
    found = _HOLIDAY_CACHE.get(key)
    if found is None:
        import holidays

        found = _HOLIDAY_CACHE[key] = frozenset(holidays.country_holidays(country, years=[year]))
    return found


# --- the body ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CalendarVersion:
    effective_from: date
    weekly: dict[str, tuple[tuple[str, str], ...]]  # every weekday, in WEEKDAYS order
    holidays: tuple[date, ...]
    holiday_country: str | None

    def as_json(self) -> dict:
        return {
            "effective_from": self.effective_from.isoformat(),
            "weekly": {day: [list(i) for i in self.weekly[day]] for day in WEEKDAYS},
            "holidays": [d.isoformat() for d in self.holidays],
            "holiday_country": self.holiday_country,
        }


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def day_pieces(weekly: dict[str, tuple[tuple[str, str], ...]]) -> list[list[tuple[int, int]]]:
    """Per weekday (0 = Monday), the minutes of that local day that are open: its own intervals
    and the part after midnight of the previous day's intervals that cross it; sorted."""
    pieces: list[list[tuple[int, int]]] = [[] for _ in WEEKDAYS]
    for index, day in enumerate(WEEKDAYS):
        for start_text, end_text in weekly.get(day, ()):
            start, end = _minutes(start_text), _minutes(end_text)
            if end > start:
                pieces[index].append((start, end))
            else:  # crosses midnight: to the end of this day, then into the next
                pieces[index].append((start, DAY_MINUTES))
                if end:
                    pieces[(index + 1) % 7].append((0, end))
    return [sorted(p) for p in pieces]


def calendar_parse(body) -> list[CalendarVersion]:
    """The versions of a calendar body, sorted by `effective_from`; InvalidInput naming every bad
    field (`versions[1].weekly.mon[0]`) otherwise."""
    errors: list[dict] = []

    def bad(field: str, code: str, message: str) -> None:
        errors.append({"field": field, "code": code, "message": message})

    if not isinstance(body, dict):
        raise InvalidInput("The body is a JSON object with `versions`.", [
            {"field": None, "code": "invalid", "message": "Expected a JSON object."}])
    unknown = sorted(set(body) - {"versions"})
    for name in unknown:
        bad(text_clip(name), "unknown_field", "Unknown field; the body holds `versions`.")
    versions = body.get("versions")
    if not isinstance(versions, list):
        bad("versions", "required" if versions is None else "invalid", "A list of calendar versions is required.")
        raise InvalidInput("The calendar is invalid; nothing was changed.", errors)
    if len(versions) > MAX_VERSIONS:
        bad("versions", "too_many", f"At most {MAX_VERSIONS} versions.")
        raise InvalidInput("The calendar is invalid; nothing was changed.", errors)
    parsed: list[CalendarVersion] = []
    seen: dict[date, int] = {}
    for i, raw in enumerate(versions):
        where = f"versions[{i}]"
        if not isinstance(raw, dict):
            bad(where, "invalid", "Expected an object.")
            continue
        for name in sorted(set(raw) - {"effective_from", "weekly", "holidays", "holiday_country"}):
            bad(f"{where}.{text_clip(name)}", "unknown_field",
                "Unknown field; a version has effective_from, weekly, holidays, holiday_country.")
        effective = _date(raw.get("effective_from"), f"{where}.effective_from", bad, required=True)
        if effective is not None:
            if effective in seen:
                bad(f"{where}.effective_from", "duplicate",
                    f"versions[{seen[effective]}] already takes effect on {effective.isoformat()}.")
            seen.setdefault(effective, i)
        weekly = _weekly(raw.get("weekly"), f"{where}.weekly", bad)
        holidays = _holidays(raw.get("holidays", []), f"{where}.holidays", bad)
        country = raw.get("holiday_country")
        if country is not None:
            if not isinstance(country, str) or country not in holiday_countries():
                bad(f"{where}.holiday_country", "unknown_country",
                    f"{text_clip(country)!r} is not a country code (ISO 3166 alpha-2) with known public holidays.")
                country = None
        if effective is not None and weekly is not None and holidays is not None:
            parsed.append(CalendarVersion(effective, weekly, holidays, country))
    if errors:
        raise InvalidInput("The calendar is invalid; nothing was changed.", errors)
    return sorted(parsed, key=lambda v: v.effective_from)


def _date(value, field: str, bad, *, required: bool = False) -> date | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        bad(field, "invalid_date", "A local date, YYYY-MM-DD.")
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        bad(field, "invalid_date", f"{value} is not a date.")
        return None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        bad(field, "out_of_range", f"A date from {FIRST_YEAR} to {LAST_YEAR}.")
        return None
    return day


def _weekly(value, field: str, bad) -> dict[str, tuple[tuple[str, str], ...]] | None:
    if not isinstance(value, dict):
        bad(field, "required" if value is None else "invalid",
            "A weekly schedule: per weekday (mon … sun) a list of [start, end] times.")
        return None
    ok = True
    for name in sorted(set(value) - set(WEEKDAYS)):
        bad(f"{field}.{text_clip(name)}", "unknown_weekday", "Weekdays are mon, tue, wed, thu, fri, sat, sun.")
        ok = False
    weekly: dict[str, tuple[tuple[str, str], ...]] = {}
    for day in WEEKDAYS:
        intervals = value.get(day, [])
        if not isinstance(intervals, list) or len(intervals) > MAX_INTERVALS_PER_DAY:
            bad(f"{field}.{day}", "invalid", f"A list of at most {MAX_INTERVALS_PER_DAY} [start, end] pairs.")
            ok = False
            continue
        kept = []
        for j, interval in enumerate(intervals):
            where = f"{field}.{day}[{j}]"
            if not (isinstance(interval, list) and len(interval) == 2):
                bad(where, "invalid", 'An interval is a pair ["HH:MM", "HH:MM"].')
                ok = False
                continue
            start, end = interval
            if not (isinstance(start, str) and _TIME.match(start)) or start == "24:00":
                bad(where, "invalid_time", f"Start {text_clip(start)!r} is not a time HH:MM from 00:00 to 23:59.")
                ok = False
                continue
            if not (isinstance(end, str) and _TIME.match(end)):
                bad(where, "invalid_time", f"End {text_clip(end)!r} is not a time HH:MM from 00:00 to 24:00.")
                ok = False
                continue
            if _minutes(start) == _minutes(end):
                bad(where, "empty_interval", "The end equals the start (an open day is [\"00:00\", \"24:00\"]).")
                ok = False
                continue
            kept.append((start, end))
        weekly[day] = tuple(sorted(kept, key=lambda i: _minutes(i[0])))
    if not ok:
        return None
    # Overlaps, within a day and with the part of the previous day's intervals that crosses midnight.
    for index, pieces in enumerate(day_pieces(weekly)):
        for (a_start, a_end), (b_start, _) in zip(pieces, pieces[1:], strict=False):
            if b_start < a_end:
                bad(f"{field}.{WEEKDAYS[index]}", "overlap",
                    f"Intervals overlap on {WEEKDAYS[index]} ({_hhmm(a_start)}–{_hhmm(a_end)} and one from "
                    f"{_hhmm(b_start)}, an interval of the day before crossing midnight included).")
                ok = False
                break
    return weekly if ok else None


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _holidays(value, field: str, bad) -> tuple[date, ...] | None:
    if not isinstance(value, list) or len(value) > MAX_HOLIDAYS:
        bad(field, "invalid", f"A list of at most {MAX_HOLIDAYS} local dates.")
        return None
    days = [_date(v, f"{field}[{j}]", bad, required=True) for j, v in enumerate(value)]
    if any(d is None for d in days):
        return None
    return tuple(sorted(set(days)))


def versions_load(stored: list[dict]) -> list[CalendarVersion]:
    """Versions from their stored JSON (written by `CalendarVersion.as_json`, already checked)."""
    return [
        CalendarVersion(
            date.fromisoformat(v["effective_from"]),
            {day: tuple(tuple(i) for i in v["weekly"].get(day, [])) for day in WEEKDAYS},
            tuple(date.fromisoformat(d) for d in v["holidays"]),
            v["holiday_country"],
        )
        for v in stored
    ]


# --- the clock ---------------------------------------------------------------------------------
def micros(moment: datetime) -> int:
    """An aware instant as integer microseconds since the epoch (exact)."""
    return round(moment.timestamp() * MICROS)


def from_micros(value: int) -> datetime:
    # Exact: a float of seconds near today resolves 0.24 µs, and fromtimestamp rounds to the microsecond.
    return datetime.fromtimestamp(value / MICROS, UTC)


def wall_to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """The instant a naive local wall time names in `zone`: the first occurrence of an ambiguous
    time, the instant the clocks jumped for a time that does not exist."""
    first = local.replace(tzinfo=zone, fold=0)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == local:
        return first.astimezone(UTC)
    # In a gap: the transition lies between the two readings of the offsets; find it to the second.
    lo = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    hi = first.astimezone(UTC)
    lo, hi = min(lo, hi), max(lo, hi)
    before = lo.astimezone(zone).utcoffset()
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(zone).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return hi.replace(microsecond=0) if hi.microsecond else hi


@dataclass(frozen=True)
class _Timeline:
    """The open intervals of the local years [first_year, last_year]: instants [lo, hi) covered,
    `starts`/`ends` (UTC microseconds, in order), `before[i]`/`after[i]` the open time before and
    after interval i. Immutable: a clock swaps in a wider one, so threads never see half of one."""

    first_year: int
    last_year: int
    lo: int
    hi: int
    starts: list[int]
    ends: list[int]
    before: list[int]
    after: list[int]

    def open_before(self, moment: int) -> int:
        """Open microseconds from `lo` to `moment` (inside [lo, hi))."""
        i = bisect_right(self.starts, moment) - 1
        if i < 0:
            return 0
        return self.before[i] + min(moment, self.ends[i]) - self.starts[i]


class BusinessClock:
    """Open time of one calendar version in one zone, built a local year at a time on demand (a
    duration or a deadline reaching outside the built years widens them)."""

    MAX_YEARS = 12  # durations are at most 10 years (ingestion); a deadline further away is "never"

    def __init__(self, version: CalendarVersion, zone: ZoneInfo):
        self.version = version
        self.zone = zone
        self.pieces = day_pieces(version.weekly)
        self.always_closed = not any(self.pieces)
        self.holidays = frozenset(version.holidays)
        self.timeline: _Timeline | None = None

    def _year_intervals(self, year: int) -> list[tuple[int, int]]:
        zone, pieces = self.zone, self.pieces
        country = self.version.holiday_country
        closed = self.holidays | (country_holidays(country, year) if country else frozenset())
        out: list[tuple[int, int]] = []
        day = date(year, 1, 1)
        while day.year == year:
            if day not in closed:
                midnight = datetime(day.year, day.month, day.day)
                for start, end in pieces[day.weekday()]:
                    a = micros(wall_to_utc(midnight + timedelta(minutes=start), zone))
                    b = micros(wall_to_utc(midnight + timedelta(minutes=end), zone))
                    if b > a:
                        out.append((a, b))
            day += timedelta(days=1)
        return out

    def _year_start(self, year: int) -> int:
        return micros(wall_to_utc(datetime(year, 1, 1), self.zone))

    def _build(self, first_year: int, last_year: int) -> _Timeline:
        intervals: list[tuple[int, int]] = []
        for year in range(first_year, last_year + 1):
            for a, b in self._year_intervals(year):
                if intervals and intervals[-1][1] >= a:  # touching the previous one (across midnight)
                    intervals[-1] = (intervals[-1][0], max(intervals[-1][1], b))
                else:
                    intervals.append((a, b))
        total, before, after = 0, [], []
        for a, b in intervals:
            before.append(total)
            total += b - a
            after.append(total)
        timeline = _Timeline(first_year, last_year, self._year_start(first_year), self._year_start(last_year + 1),
                             [a for a, _ in intervals], [b for _, b in intervals], before, after)
        self.timeline = timeline
        return timeline

    def _covering(self, start: int, end: int) -> _Timeline:
        timeline = self.timeline
        if timeline is not None and timeline.lo <= start and end < timeline.hi:
            return timeline
        years = [from_micros(m).astimezone(self.zone).year for m in (start, end)]
        if timeline is not None:
            years += [timeline.first_year, timeline.last_year]
        return self._build(min(years), max(years))

    # How far past an anchor `measure` builds the timeline at once (most stops and deadlines fall inside).
    HORIZON = 40 * 86400 * MICROS

    def measure(self, anchor: int, stops: tuple, targets: tuple) -> tuple[list, list]:
        """From one anchor: the open time to each stop (None stays None) and the deadline of each
        target (None stays None). The upsert's hot path: one position lookup for all of them."""
        if self.always_closed:
            return [None if s is None else 0 for s in stops], [None] * len(targets)
        timeline = self.timeline
        if timeline is None or anchor < timeline.lo or anchor + self.HORIZON >= timeline.hi:
            timeline = self._covering(anchor, anchor + self.HORIZON)
        starts, ends, before, after, hi = timeline.starts, timeline.ends, timeline.before, timeline.after, timeline.hi
        i = bisect_right(starts, anchor) - 1
        position = before[i] + min(anchor, ends[i]) - starts[i] if i >= 0 else 0
        spans = []
        for stop in stops:
            if stop is None:
                spans.append(None)
            elif stop <= anchor:
                spans.append(0)
            elif stop < hi:
                j = bisect_right(starts, stop) - 1
                spans.append((before[j] + min(stop, ends[j]) - starts[j] if j >= 0 else 0) - position)
            else:
                spans.append(self.open_between(anchor, stop))
        deadlines = []
        for target in targets:
            if target is None:
                deadlines.append(None)
                continue
            goal = position + target
            j = bisect_right(after, goal)
            deadlines.append(starts[j] + max(goal - before[j], 0) if j < len(starts) else self.deadline(anchor, target))
        return spans, deadlines

    def open_between(self, start: int, end: int) -> int:
        """Open microseconds in [start, end)."""
        if end <= start or self.always_closed:
            return 0
        timeline = self.timeline
        if timeline is None or start < timeline.lo or end >= timeline.hi:
            timeline = self._covering(start, end)
        starts, ends, before = timeline.starts, timeline.ends, timeline.before
        i = bisect_right(starts, end) - 1
        j = bisect_right(starts, start) - 1
        at_end = before[i] + min(end, ends[i]) - starts[i] if i >= 0 else 0
        at_start = before[j] + min(start, ends[j]) - starts[j] if j >= 0 else 0
        return at_end - at_start

    def deadline(self, start: int, target: int) -> int | None:
        """The last instant at which the open time since `start` is still at most `target` (it passes
        the target just after). None: never (no such open time within MAX_YEARS)."""
        if self.always_closed:
            return None
        timeline = self.timeline
        if timeline is None or start < timeline.lo or start >= timeline.hi:
            timeline = self._covering(start, start)
        limit = None
        while True:
            goal = timeline.open_before(start) + target
            j = bisect_right(timeline.after, goal)
            if j < len(timeline.starts):
                return timeline.starts[j] + max(goal - timeline.before[j], 0)
            if limit is None:
                limit = self._year_start(from_micros(start).astimezone(self.zone).year + self.MAX_YEARS)
            if timeline.hi >= limit:
                return None
            timeline = self._build(timeline.first_year, timeline.last_year + 1)


class BusinessCalendar:
    """A department's calendar, compiled: the version in force at an instant and its clock.

    An instant before the first version (or a department with no calendar) is measured on the
    always-open clock: business time equals calendar time.
    """

    def __init__(self, versions: list[CalendarVersion], zone: ZoneInfo):
        self.zone = zone
        self.versions = versions
        self.bounds = [micros(wall_to_utc(datetime.combine(v.effective_from, datetime.min.time()), zone))
                       for v in versions]
        self.clocks = [BusinessClock(v, zone) for v in versions]

    def clock_at(self, moment: int) -> BusinessClock | None:
        """The clock of the version in force at `moment` (None: always open)."""
        i = bisect_right(self.bounds, moment) - 1
        return self.clocks[i] if i >= 0 else None

    def open_between(self, anchor: int, end: int) -> int:
        clock = self.clock_at(anchor)
        if clock is None:
            return max(end - anchor, 0)
        return clock.open_between(anchor, end)

    def deadline(self, anchor: int, target: int) -> int | None:
        clock = self.clock_at(anchor)
        if clock is None:
            return anchor + target
        return clock.deadline(anchor, target)

