"""A known-bad throttle for the demo: DRF's anon throttle with a naive read-compare-increment.

:class:`NaiveCounterAnonRateThrottle` is a control the harness must catch, not something to use.
"""

from __future__ import annotations

from typing import Any

from rest_framework.throttling import AnonRateThrottle


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
