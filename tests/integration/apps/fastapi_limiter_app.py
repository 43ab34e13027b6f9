"""fastapi-limiter (a FastAPI dependency on top of pyrate-limiter) on a FastAPI app:
``fastapi_limiter_app:app``, served by an async worker class.

``Depends(RateLimiter(limiter=Limiter(bucket)))`` on ``GET /limited/`` (fastapi-limiter raises
HTTP 429 past the limit), the bucket named by ``FASTAPI_LIMITER_BUCKET``:

- ``memory`` (the default): ``Limiter(Rate(...))`` as fastapi-limiter's quick start writes it,
  pyrate-limiter's in-memory bucket, one per worker process;
- ``redis``: pyrate-limiter's ``RedisBucket`` on ``redis.asyncio``, a sliding log checked and
  written by one Lua script, each entry stamped with the worker's clock before the script runs.

fastapi-limiter's default identifier (the first address in ``X-Forwarded-For``, else the
connection's, and the path) only names the entries: ``Limiter(bucket)`` puts them all in its
one bucket, so every client draws on one budget. pyrate-limiter serialises one worker's
acquisitions behind an asyncio lock, so one worker never runs two checks at once.

The Redis bucket races across workers: each entry is stamped with its worker's clock before the
script runs, and the script counts the entries up to its own stamp only, so an entry another
worker stamped a millisecond later and stored first is not counted. ``FASTAPI_LIMITER_COUNT=all``
patches the script to count every entry in the window (one line), the control that shows it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import app_env
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi_limiter.depends import RateLimiter
from fastapi_limiter.identifier import default_identifier
from pyrate_limiter import Duration, Limiter, Rate, RedisBucket
from redis.asyncio import Redis

_RATE = app_env.rate()
_RATES = [Rate(_RATE.limit, Duration.SECOND * _RATE.period)]
_BUCKET = os.environ.get("FASTAPI_LIMITER_BUCKET", "memory")


if os.environ.get("FASTAPI_LIMITER_COUNT") == "all":
    from pyrate_limiter.buckets import redis_bucket

    _STOCK = "redis.call('ZCOUNT', bucket, window_start, now)"
    assert _STOCK in redis_bucket.LuaScript.PUT_ITEM, "pyrate-limiter's script has changed"
    redis_bucket.LuaScript.PUT_ITEM = redis_bucket.LuaScript.PUT_ITEM.replace(
        _STOCK, "redis.call('ZCOUNT', bucket, window_start, '+inf')"
    )


class _Dependency:
    """The RateLimiter dependency, made at startup (a Redis bucket needs the event loop)."""

    limiter: RateLimiter | None = None

    async def __call__(self, request: Request, response: Response) -> None:
        assert self.limiter is not None, "the app has not started"
        await self.limiter(request, response)


_DEPENDENCY = _Dependency()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    if _BUCKET == "redis":
        redis = Redis.from_url(app_env.redis_url())
        key = app_env.key_prefix() + "fastapi-limiter"
        bucket = await RedisBucket.init(_RATES, redis, key)
        _DEPENDENCY.limiter = RateLimiter(Limiter(bucket), identifier=default_identifier)
        yield
        await redis.aclose()
    else:
        _DEPENDENCY.limiter = RateLimiter(Limiter(_RATES), identifier=default_identifier)
        yield


app = FastAPI(lifespan=lifespan)


@app.get(app_env.LIMITED_PATH, dependencies=[Depends(_DEPENDENCY)])
async def limited() -> JSONResponse:
    return JSONResponse({"ok": True})
