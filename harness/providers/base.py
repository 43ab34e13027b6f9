"""What every Redis provider yields, and the key hygiene that keeps a user's Redis untouched."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

import redis

from harness.errors import RedisUnavailable


@dataclass(frozen=True)
class RedisServer:
    """A Redis the harness can use: where it is and whether the harness owns it.

    ``owned`` is True only for servers the harness started itself; only those are ever flushed.
    """

    url: str
    provider: str
    owned: bool
    version: str
    reason: str = ""

    def client(self) -> redis.Redis[bytes]:
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
                for key in client.scan_iter(match=_glob_escape(prefix) + "*", count=500):
                    deleted += int(client.delete(key))
                return deleted
        except redis.exceptions.RedisError as exc:
            raise RedisUnavailable(f"Redis ({self.provider}) stopped answering: {exc}") from None


class RedisProvider(Protocol):
    """One way of getting a Redis. ``unavailable()`` says why not (None when usable)."""

    name: str

    def unavailable(self) -> str | None: ...

    def open(self) -> AbstractContextManager[RedisServer]: ...


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def server_version(url: str) -> str:
    with redis.Redis.from_url(url, socket_timeout=5) as client:
        return str(client.info("server").get("redis_version", "unknown"))

