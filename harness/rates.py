"""Rates in Django REST Framework's syntax: ``100/hour``, ``5/s``, ``10/min``, ``1000/day``."""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import RateError

# DRF only looks at the first letter of the period (s, m, h, d). We accept the spellings people
# actually write and refuse the rest, so that ``100/fortnight`` or ``100/mango`` is an error here
# instead of a silent "per minute".
_PERIODS: dict[str, int] = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
}


@dataclass(frozen=True)
class Rate:
    """``limit`` requests per ``period_s`` seconds; ``text`` is the string it was parsed from."""

    limit: int
    period_s: int
    text: str

    def __str__(self) -> str:
        return self.text


def parse_rate(text: str) -> Rate:
    """Parse a DRF rate string, raising :class:`RateError` with a one-line reason."""
    raw = str(text).strip()
    num, sep, period = raw.partition("/")
    if not sep:
        raise RateError(f"invalid rate {text!r}: expected N/PERIOD such as 100/hour, 5/s, 10/min")
    try:
        limit = int(num.strip())
    except ValueError:
        raise RateError(f"invalid rate {text!r}: {num.strip()!r} is not a whole number") from None
    if limit < 1:
        raise RateError(f"invalid rate {text!r}: the limit must be at least 1")
    seconds = _PERIODS.get(period.strip().lower())
    if seconds is None:
        raise RateError(
            f"invalid rate {text!r}: unknown period {period.strip()!r} (use s, min, hour or day)"
        )
    return Rate(limit=limit, period_s=seconds, text=raw)
