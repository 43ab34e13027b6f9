"""The ``limits`` library on a plain WSGI app: ``limits_app:application``.

``storage_from_string(REDIS_URL, key_prefix=PREFIX + "LIMITS")`` (the URL goes to
``redis.from_url`` as it is, password included) and the strategy named by ``LIMITS_STRATEGY``:

- ``fixed-window`` (default): one Lua script, ``INCRBY`` + ``EXPIRE`` on the first hit. The key
  has no time bucket, so the window starts at a client's first request (not clock-aligned).
- ``moving-window``: a Lua script over a list of the last ``limit`` timestamps (taken by the
  client's clock) per key: exact over any ``period``.
- ``sliding-window-counter``: a Lua script weighting the previous window's count by the time
  it has left; an approximation, but atomic. Windows start at a client's first request.

All three are correct under concurrency: each decision is one atomic script in Redis. Keyed on
``REMOTE_ADDR``; ``APP_RATE`` as in :mod:`app_env`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import app_env
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import STRATEGIES

STRATEGY = os.environ.get("LIMITS_STRATEGY", "fixed-window")
if STRATEGY not in STRATEGIES:
    raise RuntimeError(f"LIMITS_STRATEGY={STRATEGY!r}: expected one of {', '.join(STRATEGIES)}")

ITEM = parse(app_env.rate().text)
STORAGE = storage_from_string(app_env.redis_url(), key_prefix=app_env.key_prefix() + "LIMITS")
LIMITER = STRATEGIES[STRATEGY](STORAGE)


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("PATH_INFO") != app_env.LIMITED_PATH:
        return app_env.not_found(start_response)
    return app_env.answer(start_response, LIMITER.hit(ITEM, "limits_app", environ["REMOTE_ADDR"]))
