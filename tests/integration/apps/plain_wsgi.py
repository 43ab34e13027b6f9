"""Plain WSGI targets (no Django) that stand in for a user's app.

``per_process`` counts in a module global: each gunicorn worker has its own count.
``shared`` counts with one atomic Redis INCR in the Redis the harness hands over (REDIS_URL);
``shared_unprefixed`` does too, under keys of its own choosing.
Both admit ``APP_LIMIT`` requests per client and reject the rest with 429. ``hang`` never
answers.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

import redis

LIMIT = int(os.environ.get("APP_LIMIT", "100"))
_lock = threading.Lock()
_count = 0
_redis: redis.Redis | None = None


def _answer(admitted: bool, start_response: Callable[..., Any]) -> Iterable[bytes]:
    status = "200 OK" if admitted else "429 Too Many Requests"
    start_response(status, [("Content-Type", "text/plain")])
    return [b"ok" if admitted else b"slow down"]


def per_process(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    global _count
    with _lock:
        _count += 1
        admitted = _count <= LIMIT
    return _answer(admitted, start_response)


def _shared_count(key: str) -> int:
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(os.environ["REDIS_URL"])
    return int(_redis.incr(key))


def shared(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    key = os.environ.get("THROTTLE_HARNESS_KEY_PREFIX", "") + "hits:" + environ["REMOTE_ADDR"]
    return _answer(_shared_count(key) <= LIMIT, start_response)


def shared_unprefixed(
    environ: dict[str, Any], start_response: Callable[..., Any]
) -> Iterable[bytes]:
    """Like ``shared``, but ignores the harness's key prefix, as most apps will."""
    return _answer(_shared_count("hits:" + environ["REMOTE_ADDR"]) <= LIMIT, start_response)


def server_error(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
    return [b"boom"]


def hang(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """An app that never answers (a deadlock, a dead dependency without a timeout)."""
    threading.Event().wait()
    return _answer(True, start_response)
