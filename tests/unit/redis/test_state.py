"""The report of the app's keys after a run, on fakeredis: types, sizes, times to live, and the
flags for keys that never expire or outlive the window many times over."""

from __future__ import annotations

import fakeredis
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from harness.host.ports import free_port
from harness.redaction import key_name
from harness.redis import state as redis_state
from harness.redis.state import snapshot


@pytest.fixture
def client() -> fakeredis.FakeRedis:
    c = fakeredis.FakeRedis()
    c.set("throttle:1:anon_127.0.0.2", b"x" * 10, ex=3600)
    c.rpush("throttle:1:hist_127.0.0.3", 1, 2, 3)
    c.expire("throttle:1:hist_127.0.0.3", 1800)
    c.set("throttle:forever", 5)  # no TTL: a limiter that never forgets
    c.set("throttle:long", 1, ex=86400)  # a day, for an hourly window
    c.set("session:other", 1)
    return c


def test_keys_types_sizes_and_ttls(client: fakeredis.FakeRedis) -> None:
    state = snapshot(client, "throttle*", 3600)
    assert state.keys == 4 and not state.truncated
    assert state.types == {"string": 3, "list": 1}
    forever = key_name("throttle:forever")
    assert state.no_ttl == (forever,) and state.no_ttl_count == 1
    assert state.ttl_far == (key_name("throttle:long"),) and state.ttl_far_count == 1
    assert state.ttl_range_s is not None and state.ttl_range_s[0] == pytest.approx(1800, abs=2)
    sizes = {k.key: k.size for k in state.sample}
    assert sizes[key_name("throttle:1:anon_127.0.0.2")] == 10
    assert sizes[key_name("throttle:1:hist_127.0.0.3")] == 3
    line = state.describe(3600)
    assert "4 (list 1, string 3)" in line and f"1 never expire (e.g. {forever})" in line
    assert "1 live over 2x the window" in line


def test_keys_are_named_by_a_digest_never_by_their_name(client: fakeredis.FakeRedis) -> None:
    client.set("throttle:key:tok_s3cr3t_key", 1)
    client.set(b"throttle:bin:\xff", 1)  # not UTF-8: named by its bytes as stored
    state = snapshot(client, "throttle*", 3600)
    shown = repr(state) + state.describe(3600)
    assert "s3cr3t" not in shown and "anon_127" not in shown and "forever" not in shown
    assert key_name("throttle:key:tok_s3cr3t_key") in {k.key for k in state.sample}
    assert key_name(b"throttle:bin:\xff") in state.no_ttl


def test_nothing_is_written(client: fakeredis.FakeRedis) -> None:
    before = {k: (client.type(k), client.ttl(k), client.dump(k)) for k in client.keys("*")}
    snapshot(client, "*", 3600)
    after = {k: (client.type(k), client.ttl(k), client.dump(k)) for k in client.keys("*")}
    assert after.keys() == before.keys() and client.dbsize() == 5
    for key, (kind, ttl, value) in before.items():
        assert after[key][0] == kind and after[key][2] == value
        assert abs(after[key][1] - ttl) <= 1


def test_many_keys_are_capped(client: fakeredis.FakeRedis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_state, "MAX_KEYS", 2)
    state = snapshot(client, "*", 3600)
    assert state.keys == 2 and state.truncated and "2+" in state.describe(3600)


def test_no_keys_and_an_unreachable_redis() -> None:
    assert snapshot(fakeredis.FakeRedis(), "throttle*", 60).describe(60).endswith(": none")
    down = redis.Redis(
        host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    state = snapshot(down, "*", 60)
    assert state.error and "not read" in state.describe(60)
