"""Key hygiene, on fakeredis: a Redis the harness did not start keeps every key but its own."""

from __future__ import annotations

import fakeredis
import pytest

from harness.errors import UsageError
from harness.providers import provider_for
from harness.providers.base import RedisServer


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> fakeredis.FakeRedis:
    client = fakeredis.FakeRedis()
    monkeypatch.setattr(RedisServer, "client", lambda self: client)
    return client


def seed(client: fakeredis.FakeRedis) -> None:
    client.set("users:1", "alice")
    client.set("throttle-harness:abc:1::1:throttle_anon_127.0.0.1", "x")
    client.set("throttle-harness:abc:1:throttle:x", "y")
    client.set("throttle-harness:abc:10:other-run", "z")
    client.set("throttle-harness:abc:1*weird", "w")


def test_a_users_redis_loses_only_the_runs_keys(fake: fakeredis.FakeRedis) -> None:
    seed(fake)
    server = RedisServer(url="redis://127.0.0.1:6379/0", provider="url", owned=False, version="7")
    deleted = server.clear("throttle-harness:abc:1:")
    assert deleted == 2
    assert sorted(fake.keys()) == sorted(
        [b"throttle-harness:abc:10:other-run", b"throttle-harness:abc:1*weird", b"users:1"]
    )


def test_a_harness_started_redis_is_flushed(fake: fakeredis.FakeRedis) -> None:
    seed(fake)
    server = RedisServer(url="redis://127.0.0.1:1/0", provider="embedded", owned=True, version="7")
    server.clear("throttle-harness:abc:1:")
    assert fake.keys() == []


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ("redis://10.0.0.5:6379/0", "not a loopback address"),
        ("redis://example.com:6379", "not a loopback address"),
        ("memcached", "unknown --redis 'memcached'"),
    ],
)
def test_bad_redis_specs(spec: str, complaint: str) -> None:
    with pytest.raises(UsageError, match=complaint):
        provider_for(spec)


def test_loopback_urls_are_accepted() -> None:
    for url in ("redis://127.0.0.1:6379/0", "redis://:pw@localhost:1/2", "redis://[::1]:6379"):
        assert provider_for(url).name == "url"
