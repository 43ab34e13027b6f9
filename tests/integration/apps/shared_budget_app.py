"""Clients named by a header, limited on one shared key: ``shared_budget_app:application``.

``GET /limited/`` with ``X-Client: <id>``. Answers 404 off ``/limited/``, 405 for any other
method, 400 without ``X-Client`` (in both modes, so the request is the same; none of these
counts); then 429 when the throttle rejects, 200 when it admits.

``SHARED_KEY`` picks the identity (:class:`keyed_window.FixedWindow`: atomic ``INCR`` +
``EXPIRE`` on the first hit; ``APP_RATE`` as in :mod:`app_env`):

- ``1`` (default; correct total, WRONG IDENTITY): one constant key for every request, the header
  ignored: the admitted total is exact, but all clients share one budget (a known-bad control
  for per-client isolation, like ``handrolled_app``'s ``constant-key``).
- ``0`` (correct, isolated): keyed on the ``X-Client`` value, one budget per client.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

import app_env
from keyed_window import FixedWindow, respond

SHARED_KEY = os.environ.get("SHARED_KEY", "1")
if SHARED_KEY not in ("0", "1"):
    raise RuntimeError(f"SHARED_KEY={SHARED_KEY!r}: expected 1 (one shared key) or 0 (per client)")
SHARED = SHARED_KEY == "1"
WINDOW = FixedWindow("shared-budget" if SHARED else "per-client")


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("PATH_INFO") != app_env.LIMITED_PATH:
        return respond(start_response, HTTPStatus.NOT_FOUND, "not found")
    if environ.get("REQUEST_METHOD") != "GET":
        return respond(
            start_response, HTTPStatus.METHOD_NOT_ALLOWED, "GET only", [("Allow", "GET")]
        )
    client = environ.get("HTTP_X_CLIENT", "").strip()
    if not client:
        return respond(start_response, HTTPStatus.BAD_REQUEST, "X-Client is required")
    if not WINDOW.hit("all" if SHARED else client):
        return respond(start_response, HTTPStatus.TOO_MANY_REQUESTS, "slow down")
    return respond(start_response, HTTPStatus.OK, "ok")
