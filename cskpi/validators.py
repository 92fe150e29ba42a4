from pathlib import Path
from zoneinfo import TZPATH, ZoneInfo, available_timezones

from django.core.exceptions import ValidationError

from cskpi.currencies import ISO_4217_CODES

# Names a host's zone directory holds that are no IANA zone, or whose meaning depends on the host:
# `localtime` is the host's own zone, `posixrules` the host's default rules, `Factory` a placeholder.
HOST_DEPENDENT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


def zone_get(name: str) -> ZoneInfo | None:
    """The IANA zone called `name`, or None when there is no such zone (or it means the host's zone)."""
    if not isinstance(name, str) or name not in zone_names():
        return None
    return ZoneInfo(name)


def validate_timezone(value: str) -> None:
    if zone_get(value) is None:
        raise ValidationError(f"'{value}' is not an IANA time zone.", code="invalid_timezone")


_ZONES: frozenset[str] | None = None


def _iana_names() -> frozenset[str] | None:
    """Zone and link names of the IANA database the host ships (tzdata.zi), when it ships one."""
    for root in TZPATH:
        source = Path(root) / "tzdata.zi"
        if source.is_file():
            names = set()
            for line in source.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "Z":
                    names.add(parts[1])
                elif len(parts) >= 3 and parts[0] == "L":
                    names.add(parts[2])
            return frozenset(names)
    return None


def zone_names() -> frozenset[str]:
    """IANA zone names this host can load, without the host-dependent ones."""
    global _ZONES
    if _ZONES is None:
        names = available_timezones() - HOST_DEPENDENT_ZONES
        iana = _iana_names()
        _ZONES = frozenset(names & iana if iana else names)
    return _ZONES


def validate_currency(value: str) -> None:
    if value not in ISO_4217_CODES:
        raise ValidationError(f"'{value}' is not an ISO 4217 currency code.", code="invalid_currency")
