"""The ``docker`` Redis provider against a real Docker engine.

Skipped (with the reason) when no engine answers; set ``THROTTLE_HARNESS_REQUIRE_DOCKER=1`` to
make that a failure instead (CI does, after ``.ci/docker-setup.sh``). CI also sets
``THROTTLE_HARNESS_REDIS_IMAGE=local/redis:ci TESTCONTAINERS_RYUK_DISABLED=true
TESTCONTAINERS_CONNECTION_MODE=docker_host``; for local runs the ``docker_env`` fixture sets
those that are unset (the image only when ``local/redis:ci`` exists).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis

from harness.errors import EXIT_INFRASTRUCTURE, RedisUnavailable
from harness.redis.providers.docker import (
    DEFAULT_IMAGE,
    IMAGE_ENV,
    DockerProvider,
    engine_unavailable,
)
from harness.redis.providers.redis_url import is_loopback
from tests.integration.conftest import ours

pytestmark = [pytest.mark.docker, pytest.mark.serial]

DEAD_SOCKET = "unix:///tmp/nonexistent.sock"
MISSING_IMAGE = "local/does-not-exist:nope"
QUICK_S = 15.0


def _container_for(client: Any, url: str) -> Any:
    """The provider's container that publishes the port in ``url``."""
    port = str(urlsplit(url).port)
    found = [
        c
        for c in ours(client)
        if any(b["HostPort"] == port for b in (c.ports.get("6379/tcp") or []))
    ]
    assert len(found) == 1, f"expected one container publishing port {port}, found {found}"
    return found[0]


def _gone(client: Any, container_id: str) -> bool:
    return not client.containers.list(all=True, filters={"id": container_id}, ignore_removed=True)


def test_yields_password_protected_redis_on_loopback(
    provider: DockerProvider, engine: Any, no_leftovers: None
) -> None:
    with provider.open() as server:
        parts = urlsplit(server.url)
        assert parts.hostname is not None and is_loopback(parts.hostname)
        assert server.provider == "docker" and server.owned
        assert parts.password

        with redis.Redis(
            host=parts.hostname, port=parts.port, password=parts.password, socket_timeout=5
        ) as client:
            assert client.ping()
            assert server.version == client.info("server")["redis_version"]
            assert client.config_get("save")["save"] == ""
            assert client.config_get("appendonly")["appendonly"] == "no"
        # retry=None: redis-py 8's Redis(host=...) retries an AuthenticationError for ~4 s.
        with redis.Redis(
            host=parts.hostname, port=parts.port, socket_timeout=5, retry=None
        ) as anonymous:
            with pytest.raises(redis.exceptions.AuthenticationError):
                anonymous.ping()
        with redis.Redis(
            host=parts.hostname, port=parts.port, password="wrong", socket_timeout=5, retry=None
        ) as wrong:
            with pytest.raises(redis.exceptions.AuthenticationError):
                wrong.ping()

        container = _container_for(engine, server.url)
        bindings = container.ports["6379/tcp"]
        assert {b["HostIp"] for b in bindings} == {"127.0.0.1"}, bindings
        assert container.image.tags and provider.image in container.image.tags


def test_container_removed_after_normal_exit(provider: DockerProvider, engine: Any) -> None:
    with provider.open() as server:
        container_id = _container_for(engine, server.url).id
        assert not _gone(engine, container_id)
    assert _gone(engine, container_id)


def test_container_removed_after_exception(provider: DockerProvider, engine: Any) -> None:
    container_id = ""
    with pytest.raises(RuntimeError, match="boom"):
        with provider.open() as server:
            container_id = _container_for(engine, server.url).id
            raise RuntimeError("boom")
    assert container_id and _gone(engine, container_id)


def test_container_removed_after_keyboard_interrupt(provider: DockerProvider, engine: Any) -> None:
    container_id = ""
    with pytest.raises(KeyboardInterrupt):
        with provider.open() as server:
            container_id = _container_for(engine, server.url).id
            raise KeyboardInterrupt
    assert container_id and _gone(engine, container_id)


def test_missing_image_fails_quickly_with_one_line(engine: Any, no_leftovers: None) -> None:
    started = time.monotonic()
    with pytest.raises(RedisUnavailable) as caught:
        with DockerProvider(MISSING_IMAGE).open():
            pytest.fail("a missing image must not yield a server")
    elapsed = time.monotonic() - started
    assert elapsed < QUICK_S, f"took {elapsed:.1f}s"
    assert caught.value.exit_code == EXIT_INFRASTRUCTURE
    message = caught.value.message
    assert "\n" not in message and MISSING_IMAGE in message, message


def test_container_that_exits_fails_quickly_and_is_removed(
    engine: Any, no_leftovers: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.redis.providers import docker as docker_provider

    monkeypatch.setattr(
        docker_provider, "_redis_argv", lambda password: ["redis-server", "--no-such-option", "1"]
    )
    started = time.monotonic()
    with pytest.raises(RedisUnavailable) as caught:
        with DockerProvider().open():
            pytest.fail("an exited container must not yield a server")
    elapsed = time.monotonic() - started
    assert elapsed < QUICK_S, f"took {elapsed:.1f}s"
    assert "\n" not in caught.value.message and "exited" in caught.value.message
    assert "no-such-option" in caught.value.detail  # the container's log tail


def test_non_loopback_connection_mode_is_refused_with_hint(
    engine: Any, no_leftovers: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from testcontainers.core.config import ConnectionMode, testcontainers_config

    monkeypatch.setattr(
        testcontainers_config, "connection_mode_override", ConnectionMode.gateway_ip
    )
    provider = DockerProvider()
    assert "TESTCONTAINERS_CONNECTION_MODE" in (provider.unavailable() or "")
    with pytest.raises(RedisUnavailable) as caught:
        with provider.open():
            pytest.fail("a non-loopback host must not yield a server")
    assert "\n" not in caught.value.message
    assert "TESTCONTAINERS_CONNECTION_MODE=docker_host" in caught.value.message


def test_available_with_a_running_engine(engine: Any) -> None:
    assert engine_unavailable() is None
    assert DockerProvider().unavailable() is None


def test_unavailable_when_docker_host_is_dead(engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", DEAD_SOCKET)
    started = time.monotonic()
    why_engine = engine_unavailable()
    why_provider = DockerProvider().unavailable()
    assert time.monotonic() - started < QUICK_S
    assert why_engine and DEAD_SOCKET in why_engine and "\n" not in why_engine
    assert why_provider and "\n" not in why_provider

    with pytest.raises(RedisUnavailable) as caught:
        with DockerProvider().open():
            pytest.fail("a dead engine must not yield a server")
    assert caught.value.exit_code == EXIT_INFRASTRUCTURE
    assert "\n" not in caught.value.message


def test_image_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(IMAGE_ENV, raising=False)
    assert DockerProvider().image == DEFAULT_IMAGE
    monkeypatch.setenv(IMAGE_ENV, "example/redis:env")
    assert DockerProvider().image == "example/redis:env"
    assert DockerProvider("example/redis:arg").image == "example/redis:arg"
