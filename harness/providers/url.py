"""``redis://…``: a Redis the user runs. Never flushed; the harness deletes only its own keys."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from urllib.parse import urlsplit

import redis

from harness.errors import RedisUnavailable, UsageError
from harness.providers.base import RedisServer, redact_secrets, redact_url, server_version

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class UrlProvider:
    """An existing server named by URL; must be on a loopback address."""

    name = "url"

    def __init__(self, url: str) -> None:
        try:
            parts = urlsplit(url)
            _check_with_redis_py(url)
        except (ValueError, TypeError) as exc:
            raise UsageError(
                f"invalid Redis URL {redact_url(url)!r}: {redact_secrets(str(exc), url)}"
            ) from None
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise UsageError(
                f"invalid Redis URL {redact_url(url)!r}: expected redis://[:PASSWORD@]HOST:PORT/DB"
            )
        if not is_loopback(parts.hostname):
            raise UsageError(
                f"Redis URL host {parts.hostname!r} is not a loopback address: "
                "the harness only talks to 127.0.0.1/::1"
            )
        self.url = url

    def unavailable(self) -> str | None:
        return None

    def open(self) -> AbstractContextManager[RedisServer]:
        return self._connected()

    @contextmanager
    def _connected(self) -> Iterator[RedisServer]:
        try:
            version = server_version(self.url)
        except (redis.exceptions.RedisError, ValueError, TypeError) as exc:
            raise RedisUnavailable(
                f"cannot reach Redis at {redact_url(self.url)}: "
                f"{redact_secrets(str(exc), self.url)}"
            ) from None
        yield RedisServer(url=self.url, provider="url", owned=False, version=version)


def _check_with_redis_py(url: str) -> None:
    """What redis-py makes of ``url`` (its port, db and query parameters), without connecting:
    ValueError or TypeError (an unknown parameter) where it would refuse it."""
    pool = redis.ConnectionPool.from_url(url)
    try:
        pool.make_connection()  # not connected: nothing to close
    finally:
        pool.disconnect()
