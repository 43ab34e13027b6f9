"""A Starlette app whose startup (its lifespan) fails, as one does when a service it needs at
startup is down: Starlette sends ``lifespan.startup.failed`` with the whole traceback."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    raise RuntimeError("the payments service did not answer")
    yield


async def ping(request: object) -> PlainTextResponse:
    return PlainTextResponse("pong")


app = Starlette(routes=[Route("/ping", ping)], lifespan=lifespan)
