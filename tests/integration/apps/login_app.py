"""A login endpoint limited per posted username: ``login_app:application``.

``POST /login/`` with a form body ``username=<name>&password=<anything>``
(``application/x-www-form-urlencoded``, or no ``Content-Type``) or, with ``Content-Type:
application/json``, ``{"username": "<name>", "password": "<anything>"}``. Answers, in order:

- 404 off ``/login/``, 405 for any other method (``Allow: POST``), 400 when no non-empty
  ``username`` can be read (another content type, bad JSON): none of these counts;
- 429 when the throttle rejects;
- else 200 when ``password == "right"``, 401 (a failed login) otherwise.

``LOGIN_KEY`` picks the identity: ``username`` (default: a brute-force guard per account) or
``ip`` (``REMOTE_ADDR``: one budget per client address, whatever the username).

Correct: :class:`keyed_window.FixedWindow` (atomic ``INCR`` + ``EXPIRE`` on the first hit), a
fixed window starting at an identity's first request. ``APP_RATE`` as in :mod:`app_env`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from keyed_window import FixedWindow, read_body, respond

LOGIN_PATH = "/login/"
KEYS = ("username", "ip")

LOGIN_KEY = os.environ.get("LOGIN_KEY", "username")
if LOGIN_KEY not in KEYS:
    raise RuntimeError(f"LOGIN_KEY={LOGIN_KEY!r}: expected one of {', '.join(KEYS)}")
WINDOW = FixedWindow(f"login:{LOGIN_KEY}")


def credentials(environ: dict[str, Any]) -> tuple[str, str] | None:
    """``(username, password)`` from the body, or None when there is no username."""
    content_type = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    body = read_body(environ)
    if content_type == "application/json":
        try:
            data = json.loads(body)
        except ValueError:  # UnicodeDecodeError included
            return None
        if not isinstance(data, dict):
            return None
        username, password = data.get("username"), data.get("password", "")
    elif content_type in ("", "application/x-www-form-urlencoded"):
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        username, password = form.get("username", [""])[0], form.get("password", [""])[0]
    else:
        return None
    if not isinstance(username, str) or not username:
        return None
    return username, password if isinstance(password, str) else ""


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("PATH_INFO") != LOGIN_PATH:
        return respond(start_response, HTTPStatus.NOT_FOUND, "not found")
    if environ.get("REQUEST_METHOD") != "POST":
        return respond(
            start_response, HTTPStatus.METHOD_NOT_ALLOWED, "POST only", [("Allow", "POST")]
        )
    found = credentials(environ)
    if found is None:
        return respond(start_response, HTTPStatus.BAD_REQUEST, "username is required")
    username, password = found
    if not WINDOW.hit(username if LOGIN_KEY == "username" else environ["REMOTE_ADDR"]):
        return respond(start_response, HTTPStatus.TOO_MANY_REQUESTS, "slow down")
    if password == "right":
        return respond(start_response, HTTPStatus.OK, "welcome")
    return respond(start_response, HTTPStatus.UNAUTHORIZED, "wrong password")
