"""An API limited per token, refusing with 403: ``token_app:application``.

``GET /limited/`` with ``Authorization: Bearer <token>`` or ``X-API-Key: <token>`` (the
``Authorization`` header wins when both are sent). Answers 404 off ``/limited/``, 405 for any
other method, 401 without a token (none of these counts); then **403** when the throttle
rejects, 200 when it admits.

``TOKEN_PATTERN`` picks the counter (keys ``<THROTTLE_HARNESS_KEY_PREFIX>token:<pattern>:<token>``
in ``REDIS_URL``; ``APP_RATE`` as in :mod:`app_env`):

- ``atomic`` (default, correct): :class:`keyed_window.FixedWindow`, ``INCR`` + ``EXPIRE`` on the
  first hit in one script; a fixed window starting at a token's first request.
- ``racy`` (RACY): ``GET`` the count, reject if ``>= limit``, else ``INCR`` (and ``EXPIRE`` when
  it returns 1). Exact one request at a time; requests that read the same count all pass.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

import app_env
from keyed_window import FixedWindow, respond

PATTERNS = ("atomic", "racy")
TOKEN_PATTERN = os.environ.get("TOKEN_PATTERN", "atomic")
if TOKEN_PATTERN not in PATTERNS:
    raise RuntimeError(f"TOKEN_PATTERN={TOKEN_PATTERN!r}: expected one of {', '.join(PATTERNS)}")
WINDOW = FixedWindow(f"token:{TOKEN_PATTERN}")


def read_compare_increment(token: str) -> bool:
    key = WINDOW.key(token)
    if int(WINDOW.redis.get(key) or 0) >= WINDOW.rate.limit:
        return False
    if int(WINDOW.redis.incr(key)) == 1:
        WINDOW.redis.expire(key, WINDOW.rate.period)
    return True


CHECK: Callable[[str], bool] = WINDOW.hit if TOKEN_PATTERN == "atomic" else read_compare_increment


def token_of(environ: dict[str, Any]) -> str | None:
    scheme, _, credentials = environ.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return environ.get("HTTP_X_API_KEY", "").strip() or None


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("PATH_INFO") != app_env.LIMITED_PATH:
        return respond(start_response, HTTPStatus.NOT_FOUND, "not found")
    if environ.get("REQUEST_METHOD") != "GET":
        return respond(
            start_response, HTTPStatus.METHOD_NOT_ALLOWED, "GET only", [("Allow", "GET")]
        )
    token = token_of(environ)
    if token is None:
        return respond(
            start_response,
            HTTPStatus.UNAUTHORIZED,
            "a token is required",
            [("WWW-Authenticate", 'Bearer realm="limited"')],
        )
    if not CHECK(token):
        return respond(start_response, HTTPStatus.FORBIDDEN, "quota exceeded")
    return respond(start_response, HTTPStatus.OK, "ok")
