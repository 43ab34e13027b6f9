"""Django settings of :mod:`drf_user_app`: DRF's user throttle counting in django-redis.

No database. The cache is ``REDIS_URL`` with ``THROTTLE_HARNESS_KEY_PREFIX`` as its key prefix;
the atomic throttle counts in the same Redis under that prefix + ``throttle:``. The ``user``
rate is ``APP_RATE`` (see :mod:`app_env`).
"""

from __future__ import annotations

import app_env

SECRET_KEY = "throttle-harness-drf-user-app"  # noqa: S105 - served on loopback only
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "drf_user_app"
INSTALLED_APPS = ["rest_framework"]
MIDDLEWARE: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True

CACHES = app_env.django_redis_caches()
ATOMIC_THROTTLE_REDIS_URL = app_env.redis_url()
ATOMIC_THROTTLE_KEY_PREFIX = app_env.key_prefix() + "throttle:"

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,  # no django.contrib.auth (its AnonymousUser needs the app)
    "DEFAULT_THROTTLE_RATES": {"user": app_env.rate().text},
}
