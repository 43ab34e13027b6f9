"""The bundled demo target: Django + DRF, one throttled endpoint (``/api/ping/``).

Chosen per scenario through the environment:

- ``DEMO_THROTTLE``: ``drf`` (DRF's ``AnonRateThrottle``), ``atomic`` (the harness's
  ``AtomicAnonRateThrottle``) or ``naive`` (a known-bad read-compare-increment counter,
  :class:`harness.demo.throttles.NaiveCounterAnonRateThrottle`).
- ``DEMO_CACHE``: the cache DRF's throttle counts in: ``django-redis``, ``redis`` (Django's
  built-in ``RedisCache``) or ``locmem`` (per-process ``LocMemCache``).
- ``DEMO_NUM_PROXIES``: DRF's ``NUM_PROXIES`` (unset by default, as in DRF: the client address
  is then taken from ``X-Forwarded-For``; ``0`` takes the connection's address).
- ``DEMO_IGNORE_REDIS_ERRORS``: set, django-redis's ``IGNORE_EXCEPTIONS`` is on: a Redis error
  reads as a cache miss, so DRF's throttle fails open while Redis is unreachable.
- ``THROTTLE_HARNESS_RATE``: the anon rate (default ``100/hour``); ``REDIS_URL`` and
  ``THROTTLE_HARNESS_KEY_PREFIX`` come from the harness.
"""
