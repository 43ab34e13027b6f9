"""The reference throttle: DRF throttle classes that are exact under any concurrency.

DRF's ``SimpleRateThrottle`` reads a history list from the cache, checks it and writes it back;
concurrent requests overwrite each other. These classes keep the same rates, scopes and cache
keys but count with one Redis Lua script (INCR + PEXPIRE), which Redis runs atomically.
The window is fixed and starts at a key's first request, so up to twice the limit can pass
across a window boundary (the usual fixed-window trade-off).

Use them as drop-in replacements::

    REST_FRAMEWORK = {
        "DEFAULT_THROTTLE_CLASSES": ["harness.throttles.AtomicAnonRateThrottle"],
        "DEFAULT_THROTTLE_RATES": {"anon": "100/hour"},
    }
    ATOMIC_THROTTLE_REDIS_URL = "redis://127.0.0.1:6379/0"   # default: $REDIS_URL
    ATOMIC_THROTTLE_KEY_PREFIX = "throttle:"                 # default
"""

from __future__ import annotations

import os
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any

import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from rest_framework.throttling import (
    AnonRateThrottle,
    ScopedRateThrottle,
    UserRateThrottle,
)

FIXED_WINDOW_LUA = files("harness").joinpath("lua/fixed_window.lua").read_text()


@cache
def _script(url: str) -> Any:
    # redis-py pools notice a fork and reconnect, so one client per process and URL is safe.
    return redis.Redis.from_url(url).register_script(FIXED_WINDOW_LUA)


class AtomicThrottleMixin:
    """Replaces ``allow_request``/``wait`` of a ``SimpleRateThrottle`` with the atomic counter."""

    rate: str | None
    num_requests: int
    duration: int
    _retry_after: float | None = None

    if TYPE_CHECKING:  # provided by the DRF throttle class this is mixed into

        def get_cache_key(self, request: Any, view: Any) -> str | None: ...

    def redis_url(self) -> str:
        url = getattr(settings, "ATOMIC_THROTTLE_REDIS_URL", None) or os.environ.get("REDIS_URL")
        if not url:
            raise ImproperlyConfigured("set ATOMIC_THROTTLE_REDIS_URL or REDIS_URL")
        return str(url)

    def key_prefix(self) -> str:
        return str(getattr(settings, "ATOMIC_THROTTLE_KEY_PREFIX", "throttle:"))

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        count, ttl_ms = _script(self.redis_url())(
            keys=[self.key_prefix() + key], args=[int(self.duration * 1000)]
        )
        self._retry_after = ttl_ms / 1000 if count > self.num_requests else None
        return bool(count <= self.num_requests)

    def wait(self) -> float | None:
        return self._retry_after


class AtomicAnonRateThrottle(AtomicThrottleMixin, AnonRateThrottle):
    """``AnonRateThrottle`` (scope ``anon``, keyed by client address), counted atomically."""


class AtomicUserRateThrottle(AtomicThrottleMixin, UserRateThrottle):
    """``UserRateThrottle`` (scope ``user``), counted atomically."""


class AtomicScopedRateThrottle(AtomicThrottleMixin, ScopedRateThrottle):
    """``ScopedRateThrottle`` (the view's ``throttle_scope``), counted atomically."""
