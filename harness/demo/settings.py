"""Settings of the demo target; see :mod:`harness.demo` for the environment it reads."""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

THROTTLES = {
    "drf": "rest_framework.throttling.AnonRateThrottle",
    "atomic": "harness.throttles.AtomicAnonRateThrottle",
    "naive": "harness.demo.throttles.NaiveCounterAnonRateThrottle",
    "set-then-incr": "harness.demo.throttles.SetThenIncrAnonRateThrottle",
    "log-of-hits": "harness.demo.throttles.LogOfHitsAnonRateThrottle",
    "global-quota": "harness.demo.throttles.GlobalQuotaThrottle",
    "atomic-global-quota": "harness.demo.throttles.AtomicGlobalQuotaThrottle",
}
CACHE_BACKENDS = {
    "django-redis": "django_redis.cache.RedisCache",
    "redis": "django.core.cache.backends.redis.RedisCache",
    "locmem": "django.core.cache.backends.locmem.LocMemCache",
}


def _choice(name: str, choices: dict[str, str], default: str) -> str:
    value = os.environ.get(name, default)
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r}: expected one of {', '.join(choices)}")
    return choices[value]


SECRET_KEY = "throttle-harness-demo"  # noqa: S105 - a demo served on loopback only
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "harness.demo.urls"
INSTALLED_APPS = ["rest_framework"]
MIDDLEWARE: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True

KEY_PREFIX = os.environ.get("THROTTLE_HARNESS_KEY_PREFIX", "")
_backend = _choice("DEMO_CACHE", CACHE_BACKENDS, "django-redis")
_cache: dict[str, object] = {"BACKEND": _backend, "KEY_PREFIX": KEY_PREFIX}
if "locmem" not in _backend:
    if not os.environ.get("REDIS_URL"):
        raise ImproperlyConfigured("REDIS_URL is not set")
    _cache["LOCATION"] = os.environ["REDIS_URL"]
if os.environ.get("DEMO_IGNORE_REDIS_ERRORS") and "django_redis" in _backend:
    _cache["OPTIONS"] = {"IGNORE_EXCEPTIONS": True}  # django-redis: a Redis error is a miss
CACHES = {"default": _cache}

ATOMIC_THROTTLE_KEY_PREFIX = KEY_PREFIX + "throttle:"
REST_FRAMEWORK: dict[str, object] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": [_choice("DEMO_THROTTLE", THROTTLES, "drf")],
    "DEFAULT_THROTTLE_RATES": {"anon": os.environ.get("THROTTLE_HARNESS_RATE", "100/hour")},
}
if os.environ.get("DEMO_NUM_PROXIES"):  # unset, DRF keys anonymous clients on X-Forwarded-For
    REST_FRAMEWORK["NUM_PROXIES"] = int(os.environ["DEMO_NUM_PROXIES"])
