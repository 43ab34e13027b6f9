"""The ASGI app an async gunicorn worker serves (``--worker-class asgi`` or ``uvicorn``): the
user's ASGI app, untouched, behind the same probe as WSGI apps (:mod:`harness.fleet.probe`,
which imports the target, checks that it is an ASGI app and reports an import failure).

Same protocol: every response names the worker that served it; ``PROBE_PATH`` is answered
without the app (with the worker's parent and the client address the server handed over);
requests carrying the harness's request id leave a stamp when they enter the app and when their
response completes (the app hands over its last body message; stamped before it goes out, as the
client may act on it at once). Lifespan events, and anything that is not
HTTP, go to the app as they are; an app whose startup fails leaves the reason where an import
failure goes, so the harness says it in one line.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .probe import _Process, report_app_error
from .probe import _target as _loaded
from .probe_protocol import PARENT_HEADER, PEER_HEADER, PROBE_PATH, REQUEST_HEADER, WORKER_HEADER

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
_target: Any = _loaded  # an ASGI app: the probe has checked
_REQUEST = REQUEST_HEADER.lower().encode()
_WORKER = WORKER_HEADER.lower().encode()
_PEER = PEER_HEADER.lower().encode()
probes_answered = 0  # by this worker process: not the app's requests (see gunicorn_config)


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _target(scope, receive, _reporting_startup_failure(send))
        return
    if scope["type"] != "http":
        await _target(scope, receive, send)  # websockets: the app's own business
        return
    process = _Process.current()
    worker = process.worker
    if scope.get("path") == PROBE_PATH:
        await _answer_probe(scope, send, worker)
        return
    request = next((v.decode() for k, v in scope.get("headers", []) if k == _REQUEST), "")
    peer = str((scope.get("client") or ("",))[0]).encode()  # as the server handed it over
    status = "-"
    left = False

    async def tagged_send(message: Message) -> None:
        nonlocal status, left
        if message["type"] == "http.response.start":
            status = str(message.get("status", "-"))
            tags = [(_WORKER, worker.encode()), (_PEER, peer)]
            message = {**message, "headers": [*message.get("headers", []), *tags]}
        done = message["type"] == "http.response.body" and not message.get("more_body", False)
        if request and done and not left:  # before it goes out: the client may act on it at once
            left = True
            process.stamp(f"< {request} {status} {time.monotonic_ns()}\n")
        await send(message)

    if request:
        process.stamp(f"> {request} {worker} {time.monotonic_ns()}\n")
    try:
        await _target(scope, receive, tagged_send)
    finally:
        if request and not left:  # the app failed, or never finished its response
            process.stamp(f"< {request} {status} {time.monotonic_ns()}\n")


def _reporting_startup_failure(send: Send) -> Send:
    """``send`` for the app's lifespan, leaving the reason of a failed startup for the harness
    (its last line: Starlette sends the whole traceback)."""

    async def reporting_send(message: Message) -> None:
        if message.get("type") == "lifespan.startup.failed":
            lines = [ln.strip() for ln in str(message.get("message") or "").splitlines()]
            last = next((ln for ln in reversed(lines) if ln), "no message")
            report_app_error(f"lifespan startup failed: {last}")
        await send(message)

    return reporting_send


async def _answer_probe(scope: Scope, send: Send, worker: str) -> None:
    global probes_answered
    probes_answered += 1
    client = scope.get("client") or ("", 0)
    headers = [
        (b"content-type", b"text/plain"),
        (_WORKER, worker.encode()),
        (PARENT_HEADER.lower().encode(), str(os.getppid()).encode()),
        (_PEER, str(client[0]).encode()),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": worker.encode()})
