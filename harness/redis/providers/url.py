"""``redis://…``: a Redis the user runs. Never flushed; the harness deletes only its own keys."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import redis

from harness.errors import RedisUnavailable
from harness.redaction import redact_secrets, redact_url
from harness.redis.providers.base import RedisServer, server_version
from harness.redis.providers.redis_url import parse_redis_url

__all__ = ["UrlProvider"]


class UrlProvider:
    """An existing server named by URL; must be on a loopback address (see
    :mod:`harness.redis.providers.redis_url` for what the URL may be)."""

    name = "url"

    def __init__(self, url: str) -> None:
        self.url = parse_redis_url(url).url

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
