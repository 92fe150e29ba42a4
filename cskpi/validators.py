from zoneinfo import ZoneInfo, available_timezones

from django.core.exceptions import ValidationError


def zone_get(name: str) -> ZoneInfo | None:
    """The IANA zone called `name`, or None when there is no such zone."""
    if not isinstance(name, str) or name not in zone_names():
        return None
    return ZoneInfo(name)


def validate_timezone(value: str) -> None:
    if zone_get(value) is None:
        raise ValidationError(f"'{value}' is not an IANA time zone.", code="invalid_timezone")


_ZONES: frozenset[str] | None = None


def zone_names() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones())
    return _ZONES
