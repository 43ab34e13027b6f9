"""The Redis proxy forwards commands, resets connections during an outage, adds latency without
serializing connections, and never outlives its context."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import psutil
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from conftest import wait_until
from harness.errors import InfrastructureError
from harness.host.ports import LOOPBACK, free_port
from harness.redis import proxy as proxy_module
from harness.redis.providers import open_redis
from harness.redis.proxy import redis_proxy

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def upstream(redis_spec: str) -> Iterator[str]:
    """The URL (with its password) of a redis-server of the harness's."""
    with open_redis(redis_spec) as server:
        yield server.url


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def client(url: str) -> redis.Redis:
    """A client that reports the first failure (redis-py would retry it by default)."""
    return redis.Redis.from_url(
        url, socket_timeout=5, socket_connect_timeout=5, retry=Retry(NoBackoff(), 0)
    )


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_commands_go_through_and_the_url_keeps_password_db_and_query(upstream: str) -> None:
    with redis_proxy(*host_port(upstream)) as proxy:
        url = proxy.url(upstream)
        assert host_port(url) == (LOOPBACK, proxy.port)
        assert urlsplit(url).password == urlsplit(upstream).password
        assert proxy.url("redis://:pw@localhost:1/3?protocol=3") == (
            f"redis://:pw@{LOOPBACK}:{proxy.port}/3?protocol=3"
        )
        c = client(url)
        try:
            c.set("proxy:key", b"x" * 2_000_000)  # more than one chunk each way
            assert c.get("proxy:key") == b"x" * 2_000_000
            assert c.delete("proxy:key") == 1
        finally:
            c.close()


def test_an_outage_resets_open_and_new_connections_until_restored(upstream: str) -> None:
    with redis_proxy(*host_port(upstream)) as proxy:
        url = proxy.url(upstream)
        connected = client(url)
        try:
            assert connected.ping()
            started = time.monotonic()
            proxy.outage()
            assert time.monotonic() - started < 0.5  # acknowledged, normally in under 1 ms
            with pytest.raises(redis.ConnectionError):
                connected.ping()
            fresh = client(url)
            with pytest.raises(redis.ConnectionError):
                fresh.ping()
            proxy.restore()
            assert fresh.ping()
            assert connected.ping()  # redis-py reconnects
            fresh.close()
        finally:
            connected.close()


def test_a_request_round_trip_costs_the_latency_and_connections_are_not_serialized(
    upstream: str,
) -> None:
    latency_s = 0.020
    with redis_proxy(*host_port(upstream), latency_ms=latency_s * 1000) as proxy:
        url = proxy.url(upstream)
        clients = [client(url) for _ in range(50)]
        barrier = threading.Barrier(len(clients) + 1, timeout=30)
        errors: list[BaseException] = []

        def ping(c: redis.Redis) -> None:
            try:
                c.ping()  # connected (AUTH and all): only the next PINGs are timed
                barrier.wait()
                c.ping()
            except BaseException as exc:
                errors.append(exc)
                barrier.abort()

        threads = [threading.Thread(target=ping, args=(c,)) for c in clients]
        try:
            for thread in threads:
                thread.start()
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                pytest.fail(f"a client could not connect: {errors}")
            started = time.perf_counter()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - started
            assert not errors
            assert elapsed >= latency_s
            assert elapsed < 25 * latency_s, f"50 PINGs at once took {elapsed * 1000:.0f} ms"

            started = time.perf_counter()
            assert clients[0].ping()
            assert time.perf_counter() - started >= latency_s

            pipe = clients[0].pipeline(transaction=False)  # many chunks, in order
            for _ in range(200):
                pipe.incr("proxy:counter")
            pipe.delete("proxy:counter")
            assert pipe.execute() == [*range(1, 201), 1]
        finally:
            for thread in threads:
                thread.join(timeout=30)
            for c in clients:
                c.close()


def test_an_unreachable_upstream_looks_like_a_reset(upstream: str) -> None:
    with redis_proxy(LOOPBACK, free_port()) as proxy:
        c = client(f"redis://{LOOPBACK}:{proxy.port}/0")
        with pytest.raises(redis.ConnectionError):
            c.ping()
        c.close()


@pytest.mark.parametrize("raises", [False, True])
def test_the_child_is_gone_once_the_block_exits(upstream: str, raises: bool) -> None:
    pid = port = 0
    try:
        with redis_proxy(*host_port(upstream)) as proxy:
            pid, port = proxy.pid, proxy.port
            assert not gone(pid)
            if raises:
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        assert raises
    assert pid and wait_until(lambda: gone(pid), 5)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((LOOPBACK, port), timeout=1).close()


def test_a_proxy_that_cannot_listen_is_an_infrastructure_error(
    upstream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        monkeypatch.setattr(proxy_module, "free_port", lambda: taken.getsockname()[1])
        with pytest.raises(InfrastructureError) as raised:
            with redis_proxy(*host_port(upstream)):
                pytest.fail("the proxy started on a port in use")
    assert raised.value.message == "the Redis proxy did not start (exit code 1)"
    assert "in use" in raised.value.detail
