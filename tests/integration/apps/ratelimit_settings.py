"""Django settings of :mod:`ratelimit_app`: django-ratelimit counting in django-redis.

No database; the cache is ``REDIS_URL`` with ``THROTTLE_HARNESS_KEY_PREFIX`` as its key prefix.
"""

from __future__ import annotations

import app_env

SECRET_KEY = "throttle-harness-ratelimit-app"  # noqa: S105 - served on loopback only
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "ratelimit_app"
INSTALLED_APPS = ["django_ratelimit"]  # only for its system checks of the cache backend
MIDDLEWARE: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True

CACHES = app_env.django_redis_caches()
# django-ratelimit needs a cache with an atomic add + incr: django-redis is one.
RATELIMIT_USE_CACHE = "default"
