"""Django settings of :mod:`xff_app`: DRF's anon throttle, trusting ``X-Forwarded-For`` or not.

No database. ``TRUST_XFF`` sets DRF's ``NUM_PROXIES``: ``1`` (default) leaves it unset (None),
so DRF identifies a client by its ``X-Forwarded-For`` header; ``0`` sets it to 0, so DRF uses
``REMOTE_ADDR`` alone. The atomic throttle counts in ``REDIS_URL`` under
``THROTTLE_HARNESS_KEY_PREFIX`` + ``throttle:``; the ``anon`` rate is ``APP_RATE``.
"""

from __future__ import annotations

import os

import app_env

TRUST_XFF = os.environ.get("TRUST_XFF", "1")
if TRUST_XFF not in ("0", "1"):
    raise RuntimeError(f"TRUST_XFF={TRUST_XFF!r}: expected 1 (trust the header) or 0")

SECRET_KEY = "throttle-harness-xff-app"  # noqa: S105 - served on loopback only
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "xff_app"
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
    "DEFAULT_THROTTLE_RATES": {"anon": app_env.rate().text},
    "NUM_PROXIES": None if TRUST_XFF == "1" else 0,
}
