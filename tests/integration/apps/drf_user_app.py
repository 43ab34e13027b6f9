"""DRF's ``UserRateThrottle`` behind a token per username: ``drf_user_app:application``.

``GET /limited/`` with ``Authorization: Token <username>``: any username is a valid account,
made in memory (no database) with a stable integer ``pk`` (the first 63 bits of its SHA-256),
which is what ``UserRateThrottle`` keys on. Without the header: 401 (``IsAuthenticated``,
checked before the throttle, so it counts nothing). Admitted: 200; rejected: DRF's 429 with
``Retry-After``. Settings: :mod:`drf_user_settings`.

``DRF_USER_THROTTLE`` picks the throttle class:

- ``drf`` (default; RACY): stock ``rest_framework.throttling.UserRateThrottle`` on django-redis:
  it reads a user's history list, checks it and writes it back; concurrent requests overwrite
  each other's entries and over-admit. A sliding window (the list's timestamps).
- ``atomic`` (correct): ``harness.throttles.AtomicUserRateThrottle``, the same scope and keys
  counted with one Lua script (``INCR`` + ``PEXPIRE``); a fixed window from a user's first hit.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "drf_user_settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.urls import path  # noqa: E402
from django.utils.module_loading import import_string  # noqa: E402
from rest_framework.authentication import (  # noqa: E402
    BaseAuthentication,
    get_authorization_header,
)
from rest_framework.exceptions import AuthenticationFailed  # noqa: E402
from rest_framework.permissions import IsAuthenticated  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402

THROTTLES = {
    "drf": "rest_framework.throttling.UserRateThrottle",
    "atomic": "harness.throttles.AtomicUserRateThrottle",
}
DRF_USER_THROTTLE = os.environ.get("DRF_USER_THROTTLE", "drf")
if DRF_USER_THROTTLE not in THROTTLES:
    raise RuntimeError(
        f"DRF_USER_THROTTLE={DRF_USER_THROTTLE!r}: expected one of {', '.join(THROTTLES)}"
    )


class TokenUser:
    """An account that exists because its name was sent; ``pk``/``id`` are stable across
    processes (unlike ``hash()``)."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, username: str) -> None:
        self.username = username
        digest = hashlib.sha256(username.encode()).digest()
        self.pk = self.id = int.from_bytes(digest[:8], "big") >> 1

    def __str__(self) -> str:
        return self.username


class UsernameTokenAuthentication(BaseAuthentication):
    """``Authorization: Token <username>``; anything else is anonymous."""

    keyword = "Token"

    def authenticate(self, request: Any) -> tuple[TokenUser, str] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("expected 'Authorization: Token <username>'")
        try:
            username = parts[1].decode()
        except UnicodeDecodeError as exc:
            raise AuthenticationFailed("the username is not UTF-8") from exc
        return TokenUser(username), username

    def authenticate_header(self, request: Any) -> str:
        return self.keyword  # makes DRF answer 401 (not 403) to anonymous requests


class Limited(APIView):
    authentication_classes = [UsernameTokenAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes = [import_string(THROTTLES[DRF_USER_THROTTLE])]

    def get(self, request: Any) -> Response:
        return Response({"ok": True, "user": request.user.username})


urlpatterns = [path("limited/", Limited.as_view())]
application = get_wsgi_application()
