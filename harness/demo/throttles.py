"""Throttles for the demo: known-bad controls the harness must catch (not something to use),
and a global quota counted atomically.
"""

from __future__ import annotations

from typing import Any

from rest_framework.throttling import AnonRateThrottle

from harness.throttles import AtomicThrottleMixin


class NaiveCounterAnonRateThrottle(AnonRateThrottle):
    """KNOWN-BAD CONTROL: ``AnonRateThrottle`` counting with ``cache.get`` → compare →
    ``cache.add``/``cache.incr``.

    Each cache call is atomic, the sequence is not: requests that read the same count before
    any of them increments all pass, so concurrent requests over-admit (the race is narrower
    than stock DRF's, whose whole history list is overwritten). The window is fixed and starts
    at a client's first request.
    """

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        count = self.cache.get(self.key, 0)
        if count >= self.num_requests:
            return False
        if not self.cache.add(self.key, 1, self.duration):
            try:
                self.cache.incr(self.key)
            except ValueError:  # it expired between add and incr: a new window
                self.cache.add(self.key, 1, self.duration)
        return True

    def wait(self) -> float | None:
        """No ``Retry-After``: this counter does not keep the history DRF's ``wait`` needs."""
        return None


class SetThenIncrAnonRateThrottle(AnonRateThrottle):
    """KNOWN-BAD CONTROL: a counter initialised with a plain ``cache.set`` when missing, then
    ``cache.incr``.

    Requests that all see the key missing each ``set`` it to 0 and undo one another's
    increments: it over-admits at the *start* of a client's window, not where the limit is
    crossed. ``cache.add`` (set only if missing) is the fix.
    """

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        if self.cache.get(self.key) is None:
            self.cache.set(self.key, 0, self.duration)
        try:
            count = int(self.cache.incr(self.key))
        except ValueError:  # it expired between set and incr: a new window
            self.cache.set(self.key, 1, self.duration)
            count = 1
        return count <= int(self.num_requests or 0)

    def wait(self) -> float | None:
        return None


class LogOfHitsAnonRateThrottle(AnonRateThrottle):
    """KNOWN-BAD CONTROL: DRF's sliding log that records every hit, refused ones too.

    Exact in a burst (a refusal adds to the log but every entry still leaves it a period later),
    but a client that keeps sending faster than the rate always has the limit's worth of hits
    in its log: it is refused for as long as it sends. Sustained traffic catches it.
    """

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        allowed = len(self.history) < int(self.num_requests or 0)
        self.history.insert(0, self.now)
        self.cache.set(self.key, self.history, self.duration)
        return allowed

    def wait(self) -> float | None:
        return None


class GlobalQuotaThrottle(AnonRateThrottle):
    """KNOWN-BAD CONTROL: one budget for every client (a downstream quota), on DRF's own
    ``SimpleRateThrottle``: its read-check-write of the history list races across workers and
    threads, for a global key as for a client's. Claimed with ``scope = "global"``."""

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        return str(self.cache_format % {"scope": self.scope, "ident": "everyone"})


class AtomicGlobalQuotaThrottle(AtomicThrottleMixin, GlobalQuotaThrottle):
    """A global quota counted atomically (the reference Lua script on one key): exact."""
