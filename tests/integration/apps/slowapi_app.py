"""slowapi (the most used rate limiter for FastAPI, on top of ``limits``) on a FastAPI app:
``slowapi_app:app``, served by an async worker class.

``Limiter(key_func=get_remote_address, storage_uri=REDIS_URL, key_prefix=PREFIX, strategy=…)``
with the strategy named by ``LIMITS_STRATEGY`` (``fixed-window`` by default, or
``moving-window``), and ``@limiter.limit(APP_RATE)`` on ``GET /limited/`` (slowapi answers 429
past the limit). slowapi checks the limit with ``limits``' synchronous Redis storage: each
check is one atomic script in Redis, and it blocks the worker's event loop while it runs (no
other request of that worker runs meanwhile). Keyed on the connection's address.
"""

from __future__ import annotations

import os

import app_env
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from slowapi import Limiter, _rate_limit_exceeded_handler
from slowapi.errors import RateLimitExceeded
from slowapi.util import get_remote_address

limiter = Limiter(
    key_func=get_remote_address,
    storage_uri=app_env.redis_url(),
    key_prefix=app_env.key_prefix() + "slowapi",
    strategy=os.environ.get("LIMITS_STRATEGY", "fixed-window"),
)
app = FastAPI()
app.state.limiter = limiter
app.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)  # type: ignore[arg-type]


@app.get(app_env.LIMITED_PATH)
@limiter.limit(app_env.rate().text)
async def limited(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})
