"""The demo's one throttled endpoint."""

from __future__ import annotations

from typing import Any

from rest_framework.response import Response
from rest_framework.views import APIView


class Ping(APIView):
    """Answers 200 while the throttle admits, 429 after."""

    def get(self, request: Any) -> Response:
        return Response({"ok": True})
