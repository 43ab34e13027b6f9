"""django-ratelimit (>= 4) on a plain Django view: ``ratelimit_app:application``.

``@ratelimit(key="ip", rate=APP_RATE, block=False)``; the view answers 429 when
``request.limited``. Settings: :mod:`ratelimit_settings` (django-redis on ``REDIS_URL``).

Correct: a fixed window counted with ``cache.add(key, 0)`` then ``cache.incr(key)``, both atomic
in Redis, and the count that ``incr`` returns decides. The window is clock-aligned but shifted
per client: it ends at ``t - t % period + crc32(ip) % period``, and its cache key carries that
end, so a burst that crosses it can pass up to twice the limit.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ratelimit_settings")

import app_env  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django_ratelimit.decorators import ratelimit  # noqa: E402

RATE = app_env.rate()


@ratelimit(key="ip", rate=RATE.text, block=False)
def limited(request: Any) -> HttpResponse:
    if getattr(request, "limited", False):
        return HttpResponse("slow down\n", status=429, content_type="text/plain")
    return HttpResponse("ok\n", content_type="text/plain")


urlpatterns = [path("limited/", limited)]
application = get_wsgi_application()
