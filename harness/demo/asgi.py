"""The ASGI demo target: FastAPI, one throttled endpoint (``/api/ping/``, GET or POST), served with
``--worker-class asgi`` or ``uvicorn`` (``pip install 'throttle-harness[asgi]'``):
``harness.demo.asgi:app``.

The limiter is a fixed window per client address (the connection's, ``request.client.host``),
chosen by ``DEMO_ASGI_LIMITER``:

- ``atomic`` (default): one Lua script on ``redis.asyncio`` (INCR, and PEXPIRE on the first):
  exact at any worker count and any concurrency.
- ``read-await-incr``: the hand-rolled pattern people write with ``redis.asyncio``: read the
  count, decide, then increment. Every ``await`` between the read and the write lets the event
  loop run another request's read, so one async worker with no threads over-admits.
- ``memory``: a dict in the worker's memory: each worker keeps its own count.

The rate is ``THROTTLE_HARNESS_RATE`` (DRF's syntax: ``100/hour``, ``5/second``), Redis is
``REDIS_URL``, keys start with ``THROTTLE_HARNESS_KEY_PREFIX``.
"""

from __future__ import annotations

import os
import time

import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
FIXED_WINDOW = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return count
"""


def _rate(text: str) -> tuple[int, int]:
    """``100/hour`` -> (100, 3600), as DRF reads a rate."""
    count, _, period = text.partition("/")
    return int(count), PERIODS[period.strip()[0]]


LIMIT, PERIOD_S = _rate(os.environ.get("THROTTLE_HARNESS_RATE", "100/hour"))
LIMITER = os.environ.get("DEMO_ASGI_LIMITER", "atomic")
PREFIX = os.environ.get("THROTTLE_HARNESS_KEY_PREFIX", "") + "asgi-demo:"
if LIMITER not in ("atomic", "read-await-incr", "memory"):
    raise ValueError(f"DEMO_ASGI_LIMITER={LIMITER!r}: atomic, read-await-incr or memory")

app = FastAPI()
_redis = aioredis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
_memory: dict[str, int] = {}


def _key(client: str) -> str:
    return f"{PREFIX}{client}:{int(time.time() // PERIOD_S)}"


async def _admit(client: str) -> bool:
    key = _key(client)
    if LIMITER == "memory":
        _memory[key] = _memory.get(key, 0) + 1
        return _memory[key] <= LIMIT
    if LIMITER == "atomic":
        count = await _redis.eval(FIXED_WINDOW, 1, key, PERIOD_S * 1000)
        return int(count) <= LIMIT
    seen = int(await _redis.get(key) or 0)  # read-await-incr: the read...
    if seen >= LIMIT:
        return False
    await _redis.incr(key)  # ...and the write, with other requests' reads in between
    await _redis.pexpire(key, PERIOD_S * 1000)
    return True


@app.api_route("/api/ping/", methods=["GET", "POST"])
async def ping(request: Request) -> JSONResponse:
    await request.body()  # a POST's body is read before the check, as a form view would
    client = request.client.host if request.client else "unknown"
    if await _admit(client):
        return JSONResponse({"pong": True})
    return JSONResponse({"detail": "Request was throttled."}, status_code=429)
