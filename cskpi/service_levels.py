"""SLA policies: a department's targets, checked and read.

Body: `{"first_response_seconds": 3600, "resolution_seconds": 28800, "channels": {"phone":
{"first_response_seconds": 60}}, "cashout_response_seconds": 900, "cashout_clock": "calendar"}`.
Interaction targets are business seconds (the department's calendar); a channel's entry overrides
the targets it names (null there: no target on that channel). The cashout target runs on the
business clock or on the calendar clock (every second counts). Any target may be null: no target.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cskpi.choices import SlaClockKind
from cskpi.errors import InvalidInput, text_clip

INTERACTION_TARGETS = ("first_response_seconds", "resolution_seconds")
MAX_TARGET_SECONDS = 10 * 366 * 86400  # durations are at most 10 years
MAX_CHANNELS = 200
_SLUG = re.compile(r"^[a-z0-9_-]{1,32}$")


@dataclass(frozen=True)
class SlaPolicyBody:
    first_response_seconds: int | None = None
    resolution_seconds: int | None = None
    channels: dict[str, dict[str, int | None]] = field(default_factory=dict)
    cashout_response_seconds: int | None = None
    cashout_clock: str = SlaClockKind.BUSINESS

    def target(self, name: str, channel: str | None = None) -> int | None:
        """The target `name` (e.g. "first_response_seconds") for a record on `channel`."""
        overrides = self.channels.get(channel) if channel else None
        if overrides is not None and name in overrides:
            return overrides[name]
        return getattr(self, name)

    def clock(self, name: str) -> str:
        return self.cashout_clock if name == "cashout_response_seconds" else SlaClockKind.BUSINESS

    def as_json(self) -> dict:
        return {
            "first_response_seconds": self.first_response_seconds,
            "resolution_seconds": self.resolution_seconds,
            "channels": {c: dict(v) for c, v in sorted(self.channels.items())},
            "cashout_response_seconds": self.cashout_response_seconds,
            "cashout_clock": self.cashout_clock,
        }


def _target(value, where: str, bad) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        bad(where, "invalid", "Whole seconds (an integer) or null.")
        return None
    if value < 0:
        bad(where, "negative", "A target is at least 0 seconds.")
        return None
    if value > MAX_TARGET_SECONDS:
        bad(where, "invalid", f"At most {MAX_TARGET_SECONDS} seconds (10 years).")
        return None
    return value


def sla_policy_parse(body) -> SlaPolicyBody:
    """The policy of a body; InvalidInput naming every bad field otherwise."""
    errors: list[dict] = []

    def bad(where: str, code: str, message: str) -> None:
        errors.append({"field": where, "code": code, "message": message})

    if not isinstance(body, dict):
        raise InvalidInput("The body is a JSON object.", [{"field": None, "code": "invalid",
                                                            "message": "Expected a JSON object."}])
    known = {*INTERACTION_TARGETS, "channels", "cashout_response_seconds", "cashout_clock"}
    for name in sorted(set(body) - known):
        bad(text_clip(name), "unknown_field", f"Unknown field; the policy holds {', '.join(sorted(known))}.")
    targets = {name: _target(body.get(name), name, bad) for name in (*INTERACTION_TARGETS, "cashout_response_seconds")}
    clock = body.get("cashout_clock", SlaClockKind.BUSINESS)
    if clock not in SlaClockKind.values:
        bad("cashout_clock", "invalid_choice", f"One of {', '.join(SlaClockKind.values)}.")
    channels: dict[str, dict[str, int | None]] = {}
    raw_channels = body.get("channels", {})
    if not isinstance(raw_channels, dict) or len(raw_channels) > MAX_CHANNELS:
        bad("channels", "invalid", f"An object of at most {MAX_CHANNELS} channels, each with its own targets.")
        raw_channels = {}
    for channel, overrides in raw_channels.items():
        where = f"channels.{text_clip(channel)}"
        if not _SLUG.match(channel):
            bad(where, "invalid_channel", "A channel slug: a-z, 0-9, '-' and '_', at most 32 characters.")
            continue
        if not isinstance(overrides, dict):
            bad(where, "invalid", "An object with first_response_seconds and/or resolution_seconds.")
            continue
        for name in sorted(set(overrides) - set(INTERACTION_TARGETS)):
            bad(f"{where}.{text_clip(name)}", "unknown_field",
                "A channel overrides first_response_seconds and resolution_seconds only.")
        channels[channel] = {name: _target(overrides[name], f"{where}.{name}", bad)
                             for name in INTERACTION_TARGETS if name in overrides}
    if errors:
        raise InvalidInput("The SLA policy is invalid; nothing was changed.", errors)
    return SlaPolicyBody(channels=channels, cashout_clock=clock, **targets)


def sla_policy_load(stored: dict | None) -> SlaPolicyBody | None:
    """A policy from its stored JSON (written by `as_json`, already checked)."""
    if stored is None:
        return None
    return SlaPolicyBody(**{**stored, "channels": dict(stored.get("channels") or {})})
