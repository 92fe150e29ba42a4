"""Rolling windows: ISO 8601 durations, and the quarter-hour buckets a window ending now covers."""

import re
from datetime import UTC, datetime, timedelta

from metrics.cubes import QUARTER_SECONDS

MIN_WINDOW_SECONDS = 5 * 60
MAX_WINDOW_SECONDS = 7 * 24 * 3600
_DURATION = re.compile(r"^P(?!$)(?:(\d{1,4})W)?(?:(\d{1,4})D)?(?:T(?=\d)(?:(\d{1,6})H)?(?:(\d{1,8})M)?(?:(\d{1,9})S)?)?$")
DURATION_PATTERN = _DURATION.pattern
_UNITS = (7 * 86400, 86400, 3600, 60, 1)


def duration_parse(text: str) -> int | None:
    """Seconds of an ISO 8601 duration in weeks, days, hours, minutes, seconds (`PT15M`, `P1DT12H`),
    or None. Years and months are refused: their length varies."""
    found = _DURATION.match(text)
    if not found:
        return None
    return sum(int(part) * unit for part, unit in zip(found.groups(), _UNITS, strict=True) if part)


def duration_format(seconds: int) -> str:
    """The canonical ISO 8601 form: `PT15M`, `PT1H30M`, `P1D`, `P1DT6H`."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    time = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (secs, "S")) if n)
    return "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")


def _quarter_floor(moment: datetime) -> datetime:
    return datetime.fromtimestamp(int(moment.timestamp()) // QUARTER_SECONDS * QUARTER_SECONDS, tz=UTC)


def window_bounds(*, window_seconds: int, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the quarter-hours that overlap [now − window, now].

    The aggregates are kept per UTC quarter-hour, so a rolling window is read at that resolution:
    it covers the whole window and at most 15 minutes more (the older part of the first quarter,
    and the rest of the current one, which holds no records yet unless they are dated ahead)."""
    end = _quarter_floor(now) + timedelta(seconds=QUARTER_SECONDS)
    start = _quarter_floor(now - timedelta(seconds=window_seconds))
    return start, end
