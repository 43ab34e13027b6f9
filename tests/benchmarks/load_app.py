"""WSGI targets for ``load_fidelity.py``: ``cpu`` spins the CPU for ``LOAD_APP_WORK_MS``
(default 1 ms) per request, as a small Django view would; ``sleep`` waits that long instead
(an endpoint waiting on a database); ``chunked`` answers without a length (gunicorn chunks it)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

WORK_S = float(os.environ.get("LOAD_APP_WORK_MS", "1")) / 1000
BODY = b'{"ok": true}'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def cpu(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    end = time.thread_time() + WORK_S
    while time.thread_time() < end:
        pass
    start_response("200 OK", HEADERS)
    return [BODY]


def sleep(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    time.sleep(WORK_S)
    start_response("200 OK", HEADERS)
    return [BODY]


def chunked(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "application/json")])
    yield BODY[:5]
    yield BODY[5:]
