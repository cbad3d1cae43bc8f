"""Friendly durations for service-standard targets (pure Python, no Django).

``parse_duration("1h30m")`` → 1:30:00. Accepted, case-insensitive, parts may be combined and
separated by spaces or commas:

* ``4h``, ``4 h``, ``4 hours``, ``1.5h``, ``30m``, ``30 min``, ``45s``, ``1h30m``, ``1:30``
  (hours:minutes) — wall time counted in business time;
* ``2 business days``, ``2 working days``, ``2bd`` — 2 × the calendar's typical working day
  (``BusinessCalendar.typical_working_day()``), e.g. 16 h on a 9–17 calendar.

Plain "days" (``2d``) are refused on purpose: on a 9–17 calendar "2 days" could mean 16 h or
48 h of business time, and a wrong guess silently makes a promise three times looser.

Error messages are plain English sentences; the form layer translates them by key
(:class:`DurationError` carries a ``code`` and ``params``).
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation

__all__ = ["DurationError", "format_duration", "parse_duration"]

#: The longest target accepted (ten years of business time is already absurd).
MAX_DURATION = timedelta(days=3660)

_US = {
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
}
_UNIT_ALIASES = {
    "s": "s",
    "sec": "s",
    "secs": "s",
    "second": "s",
    "seconds": "s",
    "m": "m",
    "min": "m",
    "mins": "m",
    "minute": "m",
    "minutes": "m",
    "h": "h",
    "hr": "h",
    "hrs": "h",
    "hour": "h",
    "hours": "h",
    "bd": "bd",
    "business day": "bd",
    "business days": "bd",
    "working day": "bd",
    "working days": "bd",
    "d": "d",
    "day": "d",
    "days": "d",
}
_PART = re.compile(
    r"\s*(?P<number>\d+(?:[.,]\d+)?)\s*"
    r"(?P<unit>business\s+days?|working\s+days?|[a-z]+)\s*,?",
    re.IGNORECASE,
)
_CLOCK = re.compile(r"^\s*(?P<hours>\d{1,5}):(?P<minutes>[0-5]\d)\s*$")


class DurationError(ValueError):
    """A duration that cannot be read; ``code`` names the problem for translation."""

    def __init__(self, code: str, message: str, **params: object) -> None:
        super().__init__(message % params if params else message)
        self.code = code
        self.message = message
        self.params = params


def _td_us(value: timedelta) -> int:
    return (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds


def parse_duration(text: str, *, working_day: timedelta | None = None) -> timedelta:
    """Read a friendly duration; ``working_day`` gives "business days" their length.

    Raise :class:`DurationError` with a clear message for anything else (empty, unknown
    unit, zero, negative, too long, business days without a working day).
    """
    if text is None or not str(text).strip():
        raise DurationError("empty", "Enter a duration such as 4h, 30m or 2 business days.")
    text = str(text).strip()
    if text.startswith("-"):
        raise DurationError("negative", "A duration cannot be negative.")
    clock = _CLOCK.match(text)
    if clock:
        total_us = int(clock["hours"]) * _US["h"] + int(clock["minutes"]) * _US["m"]
        return _checked(total_us)
    total = Decimal(0)
    position = 0
    seen: set[str] = set()
    while position < len(text):
        match = _PART.match(text, position)
        if not match or match.end() == position:
            raise DurationError(
                "syntax",
                "“%(text)s” is not a duration. Use e.g. 4h, 30m, 1h30m or 2 business days.",
                text=text,
            )
        position = match.end()
        unit_text = " ".join(match["unit"].lower().split())
        unit = _UNIT_ALIASES.get(unit_text)
        if unit is None:
            raise DurationError(
                "unit",
                "Unknown unit “%(unit)s”. Use s, m, h or business days.",
                unit=match["unit"],
            )
        if unit == "d":
            raise DurationError(
                "days",
                "Say “%(number)s business days” (counted in the calendar's working day) or "
                "give hours, e.g. %(hours)sh.",
                number=match["number"],
                hours=_plain(Decimal(match["number"].replace(",", ".")) * 24),
            )
        if unit in seen:
            raise DurationError("repeated", "Each unit may appear only once.")
        seen.add(unit)
        try:
            number = Decimal(match["number"].replace(",", "."))
        except InvalidOperation:  # pragma: no cover - the regex only lets digits through
            raise DurationError("syntax", "“%(text)s” is not a duration.", text=text) from None
        if unit == "bd":
            if working_day is None or working_day <= timedelta(0):
                raise DurationError(
                    "no_working_day",
                    "Business days need a calendar with working hours; give hours instead.",
                )
            total += number * _td_us(working_day)
        else:
            total += number * _US[unit]
    # Whole microseconds; a target never needs more precision than that.
    return _checked(int(total.to_integral_value()))


def _plain(number: Decimal) -> str:
    text = format(number.normalize(), "f")
    return text


def _checked(total_us: int) -> timedelta:
    if total_us <= 0:
        raise DurationError("zero", "A target must be longer than zero.")
    if total_us > _td_us(MAX_DURATION):
        raise DurationError("too_long", "A target must be shorter than ten years.")
    return timedelta(microseconds=total_us)


def format_duration(value: timedelta) -> str:
    """The shortest friendly spelling that parses back to ``value`` (e.g. ``1h30m``)."""
    total_us = _td_us(value)
    if total_us <= 0:
        return "0m"
    parts = []
    hours, rest = divmod(total_us, _US["h"])
    minutes, rest = divmod(rest, _US["m"])
    seconds, micro = divmod(rest, _US["s"])
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    if seconds or micro:
        parts.append(f"{seconds}.{micro:06d}".rstrip("0").rstrip(".") + "s")
    return "".join(parts)


def business_days(value: timedelta, working_day: timedelta) -> Decimal | None:
    """``value`` in business days (two decimals), or None without a working day."""
    if working_day <= timedelta(0):
        return None
    return (Decimal(_td_us(value)) / Decimal(_td_us(working_day))).quantize(Decimal("0.01"))
