"""A plain WSGI throttle that counts with one atomic Redis INCR + EXPIRE per client address, and
does what ``OUTAGE_POLICY`` says when Redis cannot be reached, as hand-rolled throttles do:

- ``open``: admit (the request is served unthrottled),
- ``closed``: refuse with 429,
- ``raise`` (the default): let the error escape (gunicorn answers 500).

``APP_LIMIT`` requests per client per hour (default 100).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import redis

LIMIT = int(os.environ.get("APP_LIMIT", "100"))
POLICY = os.environ.get("OUTAGE_POLICY", "raise")
_redis = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=2, socket_connect_timeout=2)


def _admitted(key: str) -> bool:
    with _redis.pipeline() as pipe:  # MULTI/EXEC: a window from the first request, then count
        pipe.set(key, 0, ex=3600, nx=True)
        pipe.incr(key)
        _, count = pipe.execute()
    return int(count) <= LIMIT


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    key = os.environ.get("THROTTLE_HARNESS_KEY_PREFIX", "") + "hits:" + environ["REMOTE_ADDR"]
    try:
        admitted = _admitted(key)
    except redis.exceptions.RedisError:
        if POLICY == "raise":
            raise
        admitted = POLICY == "open"
    status = "200 OK" if admitted else "429 Too Many Requests"
    start_response(status, [("Content-Type", "text/plain")])
    return [b"ok" if admitted else b"slow down"]
