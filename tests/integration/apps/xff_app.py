"""DRF's anon throttle keyed on ``X-Forwarded-For``: ``xff_app:application``.

``GET /limited/``, optionally with ``X-Forwarded-For: <address>``. A DRF ``APIView`` with no
authentication and ``harness.throttles.AtomicAnonRateThrottle`` (stock ``AnonRateThrottle``'s
scope and keys, counted with one atomic Lua script: a fixed window from a client's first hit).
Admitted: 200; rejected: DRF's 429 with ``Retry-After``. Settings: :mod:`xff_settings`.

The identity is DRF's ``get_ident``, picked by ``TRUST_XFF``:

- ``1`` (default; counts correctly, SPOOFABLE identity): ``NUM_PROXIES`` unset, so the key is
  the whole ``X-Forwarded-For`` header with its whitespace removed (one address when the client
  sends one; ``1.2.3.4,10.0.0.1`` for two), else ``REMOTE_ADDR``. Any client can claim a fresh
  budget by sending a new header.
- ``0`` (correct, the fix): ``NUM_PROXIES = 0``, so the key is ``REMOTE_ADDR`` and the header is
  ignored.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xff_settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.urls import path  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402

from harness.throttles import AtomicAnonRateThrottle  # noqa: E402


class Limited(APIView):
    authentication_classes: list[type] = []
    permission_classes: list[type] = []
    throttle_classes = [AtomicAnonRateThrottle]

    def get(self, request: Any) -> Response:
        return Response({"ok": True})


urlpatterns = [path("limited/", Limited.as_view())]
application = get_wsgi_application()
