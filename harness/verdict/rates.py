"""Rates in Django REST Framework's syntax: ``100/hour``, ``5/s``, ``10/min``, ``1000/day``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.errors import RateError

# DRF only looks at the first letter of the period (s, m, h, d), case-sensitively and without
# stripping. We accept the spellings people actually write, in any case, and refuse the rest,
# so that ``100/fortnight`` or ``100/mango`` is an error here instead of a silent "per minute".
_PERIODS: dict[str, tuple[int, str]] = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), (1, "second")),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), (60, "minute")),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), (3600, "hour")),
    **dict.fromkeys(("d", "day", "days"), (86400, "day")),
}
_INTEGER = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True)
class Rate:
    """``limit`` requests per ``period_s`` seconds.

    ``text`` is the canonical DRF form (``100/hour``: a plain number, a lowercase full word),
    which is what the app is handed; ``given`` is the user's own spelling (``100/Hour``).
    """

    limit: int
    period_s: int
    text: str
    given: str = ""

    def __str__(self) -> str:
        return self.text


def parse_rate(text: str) -> Rate:
    """Parse a DRF rate string, raising :class:`RateError` with a one-line reason."""
    raw = str(text).strip()
    num, sep, period = raw.partition("/")
    if not sep:
        raise RateError(f"invalid rate {text!r}: expected N/PERIOD such as 100/hour, 5/s, 10/min")
    digits = num.strip()
    if not _INTEGER.fullmatch(digits):  # int() would also take "1_000" or non-ASCII digits
        raise RateError(f"invalid rate {text!r}: {digits!r} is not a whole number")
    limit = int(digits)
    if limit < 1:
        raise RateError(f"invalid rate {text!r}: the limit must be at least 1")
    found = _PERIODS.get(period.strip().lower())
    if found is None:
        raise RateError(
            f"invalid rate {text!r}: unknown period {period.strip()!r} (use s, min, hour or day)"
        )
    seconds, word = found
    return Rate(limit=limit, period_s=seconds, text=f"{limit}/{word}", given=raw)
