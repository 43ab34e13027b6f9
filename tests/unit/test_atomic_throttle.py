"""The reference throttle's Lua script and DRF class, on fakeredis (which runs Lua via lupa)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import django
import fakeredis
import pytest
from django.conf import settings

if not settings.configured:
    settings.configure(
        REST_FRAMEWORK={"DEFAULT_THROTTLE_RATES": {"anon": "100/hour"}},
        ATOMIC_THROTTLE_REDIS_URL="redis://127.0.0.1:1/0",
        ATOMIC_THROTTLE_KEY_PREFIX="t:",
    )
    django.setup()

from harness import throttles  # noqa: E402  (needs settings)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> fakeredis.FakeRedis:
    client = fakeredis.FakeRedis()
    script = client.register_script(throttles.FIXED_WINDOW_LUA)
    monkeypatch.setattr(throttles, "_script", lambda url: script)
    return client


class Req:
    def __init__(self, ip: str) -> None:
        self.META: dict[str, Any] = {"REMOTE_ADDR": ip}
        self.headers: dict[str, str] = {}
        self.user = None


def test_exactly_the_limit_under_thread_contention(fake: fakeredis.FakeRedis) -> None:
    def attempt(_: int) -> bool:
        return throttles.AtomicAnonRateThrottle().allow_request(Req("10.1.1.1"), None)

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(attempt, range(250)))
    assert results.count(True) == 100
    key = "t:throttle_anon_10.1.1.1"
    assert int(fake.get(key)) == 250
    assert 3_590_000 < fake.pttl(key) <= 3_600_000  # the window is set once, at the first hit


def test_identities_are_counted_apart_and_wait_is_reported(fake: fakeredis.FakeRedis) -> None:
    throttle = throttles.AtomicAnonRateThrottle()
    assert all(throttle.allow_request(Req("10.0.0.1"), None) for _ in range(100))
    assert not throttle.allow_request(Req("10.0.0.1"), None)
    assert 3590 < (throttle.wait() or 0) <= 3600
    assert throttle.allow_request(Req("10.0.0.2"), None)
    assert throttle.wait() is None


def test_a_counter_without_expiry_is_repaired(fake: fakeredis.FakeRedis) -> None:
    fake.set("t:throttle_anon_10.0.0.3", 5)  # e.g. written by hand without a TTL
    assert throttles.AtomicAnonRateThrottle().allow_request(Req("10.0.0.3"), None)
    assert fake.pttl("t:throttle_anon_10.0.0.3") > 0
