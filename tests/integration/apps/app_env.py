"""What the third-party throttle apps in this folder share: their environment and their answers.

- ``REDIS_URL``: the Redis to count in (``redis://:PASSWORD@127.0.0.1:PORT/0``, from the harness).
- ``THROTTLE_HARNESS_KEY_PREFIX``: prefixed to every key an app writes (default: none).
- ``APP_RATE``: ``N/PERIOD`` (``20/second``, ``10/min``, ``100/hour``, ``1000/day``); default
  ``THROTTLE_HARNESS_RATE`` (the rate under test, from the harness), else ``100/hour``.

Every app throttles ``GET /limited/`` only (200 admitted, 429 rejected) and answers 404
elsewhere, without counting.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

LIMITED_PATH = "/limited/"

_PERIODS: dict[str, tuple[int, str]] = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), (1, "second")),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), (60, "minute")),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), (3600, "hour")),
    **dict.fromkeys(("d", "day", "days"), (86400, "day")),
}


@dataclass(frozen=True)
class Rate:
    """``limit`` requests per ``period`` seconds; ``text`` is canonical (``100/hour``), which
    django-ratelimit, limits and Flask-Limiter all parse the same way."""

    limit: int
    period: int
    text: str


def parse_rate(text: str) -> Rate:
    num, sep, unit = text.strip().partition("/")
    if not sep or unit.strip().lower() not in _PERIODS or not num.strip().isdigit():
        raise ValueError(f"APP_RATE={text!r}: expected N/PERIOD such as 20/second or 100/hour")
    period, word = _PERIODS[unit.strip().lower()]
    return Rate(int(num), period, f"{int(num)}/{word}")


def rate() -> Rate:
    raw = os.environ.get("APP_RATE") or os.environ.get("THROTTLE_HARNESS_RATE") or "100/hour"
    return parse_rate(raw)


def redis_url() -> str:
    url = os.environ.get("REDIS_URL")
    if not url:
        raise RuntimeError("REDIS_URL is not set")
    return url


def key_prefix() -> str:
    return os.environ.get("THROTTLE_HARNESS_KEY_PREFIX", "")


def answer(start_response: Callable[..., Any], admitted: bool) -> Iterable[bytes]:
    """200 when admitted, 429 when rejected."""
    status = "200 OK" if admitted else "429 Too Many Requests"
    start_response(status, [("Content-Type", "text/plain")])
    return [b"ok\n" if admitted else b"slow down\n"]


def not_found(start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found\n"]


def django_redis_caches() -> dict[str, dict[str, str]]:
    """Django's CACHES for the Django test apps: django-redis on ``REDIS_URL``, keys under the
    harness's prefix."""
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": redis_url(),
            "KEY_PREFIX": key_prefix(),
        }
    }
