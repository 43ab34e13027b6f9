"""Each Redis provider yields a private, password-protected Redis and leaves nothing behind."""

from __future__ import annotations

import pytest
import redis

from conftest import live_children
from harness.errors import RedisUnavailable
from harness.redis.providers import open_redis
from harness.redis.providers.binary import local_binary
from harness.redis.providers.redis_url import parse_redis_url

pytestmark = pytest.mark.integration


def redis_children() -> list[str]:
    return live_children("redis-server")


@pytest.mark.parametrize("spec", ["embedded", "local"])
def test_started_redis_is_private_and_stopped(spec: str) -> None:
    if spec == "local" and local_binary() is None:
        pytest.skip("no redis-server on PATH")
    with open_redis(spec) as server:
        assert server.owned and server.url.startswith("redis://:")
        assert "127.0.0.1" in server.url
        with server.client() as client:
            assert client.ping()
            assert client.config_get("save") == {"save": ""}
            assert client.config_get("appendonly") == {"appendonly": "no"}
            # The harness's rule: the password in its URL is the one the server requires.
            assert client.config_get("requirepass") == {
                "requirepass": parse_redis_url(server.url).password
            }
        anonymous = redis.Redis.from_url(
            server.url.replace(server.url.split("@")[0], "redis://"), retry=None
        )
        with pytest.raises(redis.exceptions.RedisError, match="(?i)auth"):
            anonymous.ping()
        assert redis_children()
    assert not redis_children()


def test_auto_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/nonexistent.sock")
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("THROTTLE_HARNESS_REDIS_SERVER", raising=False)
    with open_redis("auto") as server:
        assert server.provider == "embedded"
        assert "docker (" in server.reason and "no Docker engine answers" in server.reason
        assert "local: no redis-server on PATH" in server.reason
    assert not redis_children()


def test_an_existing_server_is_used_not_owned_and_keeps_its_keys() -> None:
    with open_redis("embedded") as outer:
        with outer.client() as client:
            client.set("precious", "1")
        with open_redis(outer.url) as server:
            assert (server.provider, server.owned) == ("url", False)
            server.clear("throttle-harness:x:")
        with outer.client() as client:
            assert client.get("precious") == b"1"


def test_a_dead_redis_binary_is_an_infrastructure_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pytest.TempPathFactory
) -> None:
    fake = tmp_path / "redis-server"  # type: ignore[operator]
    fake.write_text("#!/bin/sh\necho 'FATAL: cannot start' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("THROTTLE_HARNESS_REDIS_SERVER", str(fake))
    with pytest.raises(RedisUnavailable, match="did not start") as caught:
        with open_redis("local"):
            pass
    assert "FATAL: cannot start" in caught.value.detail
    assert not redis_children()
