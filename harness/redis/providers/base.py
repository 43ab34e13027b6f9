"""What every Redis provider yields, and the key hygiene that keeps a user's Redis untouched
(the redaction that keeps its password out of anything shown is :mod:`harness.redaction`'s)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

import redis

from harness.errors import RedisUnavailable
from harness.redaction import redact_secrets


@dataclass(frozen=True)
class RedisServer:
    """A Redis the harness can use: where it is and whether the harness owns it.

    ``owned`` is True only for servers the harness started itself; only those are ever flushed
    or restarted (``restart``: stop it and start it again at the same URL, its data lost, and
    return once it answers; None where the provider cannot).
    """

    url: str = field(repr=False)  # carries the password: show redact_url(url)
    provider: str
    owned: bool
    version: str
    reason: str = ""
    restart: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def clear(self, prefix: str) -> int:
        """Forget throttle state before or after a run.

        A server the harness started is flushed whole. Any other server keeps every key except
        those under ``prefix`` (the run's own namespace), which are deleted one by one.
        """
        try:
            with self.client() as client:
                if self.owned:
                    client.flushall()
                    return 0
                deleted = 0
                for key in client.scan_iter(match=glob_escape(prefix) + "*", count=500):
                    deleted += int(client.delete(key))
                return deleted
        except redis.exceptions.RedisError as exc:
            raise RedisUnavailable(
                f"Redis ({self.provider}) stopped answering: {redact_secrets(str(exc), self.url)}"
            ) from None


class RedisProvider(Protocol):
    """One way of getting a Redis. ``unavailable()`` says why not (None when usable)."""

    name: str

    def unavailable(self) -> str | None: ...

    def open(self) -> AbstractContextManager[RedisServer]: ...


def glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def server_version(url: str) -> str:
    with redis.Redis.from_url(url, socket_timeout=5) as client:
        return str(client.info("server").get("redis_version", "unknown"))
