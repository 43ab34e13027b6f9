"""What the plain-WSGI apps that key on something other than the client address share.

:class:`FixedWindow` counts ``INCR`` and, on a key's first hit, ``EXPIRE`` in one Lua script:
each decision is atomic, so it is correct under any concurrency. The window starts at a key's
first request (not clock-aligned); keys are ``<THROTTLE_HARNESS_KEY_PREFIX><namespace>:<ident>``
in ``REDIS_URL``; the rate comes from :func:`app_env.rate`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from http import HTTPStatus
from typing import Any

import app_env
import redis

MAX_BODY = 64 * 1024

INCR_EXPIRE_LUA = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return n
"""


class FixedWindow:
    """``rate.limit`` requests per ``rate.period`` seconds for each identity."""

    def __init__(self, namespace: str, rate: app_env.Rate | None = None) -> None:
        self.rate = rate or app_env.rate()
        self.prefix = f"{app_env.key_prefix()}{namespace}:"
        # redis-py's pool notices a fork and reconnects, so a client made before one is safe.
        self.redis = redis.Redis.from_url(app_env.redis_url())
        self._incr_expire = self.redis.register_script(INCR_EXPIRE_LUA)

    def key(self, ident: str) -> str:
        return self.prefix + ident

    def hit(self, ident: str) -> bool:
        """Counts one request of ``ident``; True when it is within the limit."""
        n = self._incr_expire(keys=[self.key(ident)], args=[self.rate.period])
        return int(n) <= self.rate.limit


def read_body(environ: dict[str, Any]) -> bytes:
    """The request body (``Content-Length`` or chunked), at most :data:`MAX_BODY` bytes."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > 0:
        return bytes(environ["wsgi.input"].read(min(length, MAX_BODY)))
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return bytes(environ["wsgi.input"].read(MAX_BODY))
    return b""


def respond(
    start_response: Callable[..., Any],
    status: HTTPStatus,
    text: str,
    headers: Sequence[tuple[str, str]] = (),
) -> Iterable[bytes]:
    start_response(f"{status.value} {status.phrase}", [("Content-Type", "text/plain"), *headers])
    return [f"{text}\n".encode()]
