"""The bundled demo target: Django + DRF, one throttled endpoint (``/api/ping/``).

Chosen per scenario through the environment:

- ``DEMO_THROTTLE``: ``drf`` (DRF's ``AnonRateThrottle``), ``atomic`` (the harness's
  ``AtomicAnonRateThrottle``), or one of the known-bad controls in
  :mod:`harness.demo.throttles`: ``naive`` (a read-compare-increment counter, racy where the
  limit is crossed), ``set-then-incr`` (a counter initialised with a plain ``set``, racy where
  a client's window starts), ``log-of-hits`` (a log that records refused hits too: it never
  lets a client that keeps sending back in).
- ``DEMO_CACHE``: the cache DRF's throttle counts in: ``django-redis``, ``redis`` (Django's
  built-in ``RedisCache``) or ``locmem`` (per-process ``LocMemCache``).
- ``DEMO_NUM_PROXIES``: DRF's ``NUM_PROXIES`` (unset by default, as in DRF: the client address
  is then taken from ``X-Forwarded-For``; ``0`` takes the connection's address).
- ``DEMO_IGNORE_REDIS_ERRORS``: set, django-redis's ``IGNORE_EXCEPTIONS`` is on: a Redis error
  reads as a cache miss, so DRF's throttle fails open while Redis is unreachable.
- ``THROTTLE_HARNESS_RATE``: the anon rate (default ``100/hour``); ``REDIS_URL`` and
  ``THROTTLE_HARNESS_KEY_PREFIX`` come from the harness.
"""
