"""Rate limits as people write them by hand: ``handrolled_app:application``.

``PATTERN`` picks one (required); all key on ``REMOTE_ADDR`` unless said otherwise and count in
``REDIS_URL`` under ``THROTTLE_HARNESS_KEY_PREFIX``; ``APP_RATE`` as in :mod:`app_env`.

- ``read-compare-increment`` (RACY): through Django's cache API on django-redis,
  ``count = cache.get(key, 0)``; reject if ``count >= limit``; else ``cache.add(key, 1, period)``
  or, when the key exists, ``cache.incr(key)``. Each step is atomic, the sequence is not:
  requests that read the same count all pass. Over-admits under concurrency.
- ``set-then-incr`` (RACY at a window's start): through Django's cache API on django-redis,
  ``if cache.get(key) is None: cache.set(key, 0, period)``, then ``n = cache.incr(key)``, admit
  iff ``n <= limit``. Exact once the key exists, but requests that all saw it missing each
  ``set`` it back to 0, wiping the increments made meanwhile: it over-admits at the *start* of
  a client's window, not where the limit is crossed (``cache.add`` would have been atomic).
- ``incr-then-check`` (correct): ``n = INCR key``, ``EXPIRE`` when ``n == 1``, admit iff
  ``n <= limit``. A fixed window starting at the client's first request.
- ``no-expiry`` (never forgets): ``INCR`` with no ``EXPIRE``: exact at first, then a client
  that reached the limit is refused for good.
- ``clock-window`` (correct): ``INCR`` + ``EXPIRE`` on ``key:<int(now // period)>``, admit iff
  ``<= limit``. A clock-aligned fixed window: a burst across an edge can pass twice the limit.
- ``token-bucket`` (correct): GCRA in one Lua script (as in redis-gcra), burst = limit,
  emission interval = period / limit, on Redis's clock. Refills one request every interval.
- ``sliding-counter`` (correct, approximate): a sliding-window counter in one Lua script, on
  Redis's clock in milliseconds: windows ``key:<now // period>`` (clock-aligned), admit iff
  ``previous * (share of the previous window still inside the period) + current + 1 <= limit``
  (weighted exactly, not rounded), then ``INCR`` + ``PEXPIRE`` of two periods. Admits at most
  the limit per window; one period after a burst it may admit only part of the limit, all of it
  two periods after.
- ``sliding-log`` (correct): a sorted-set log in one Lua script on Redis's clock in
  microseconds: trim entries a period old, count, add this hit only when admitted (count
  below the limit), ``PEXPIRE`` a period. At most the limit in any period.
- ``get-set-list`` (RACY): redis-py ``GET`` of a JSON list of timestamps, drop the old ones,
  compare the length, ``SET`` it back (DRF's ``SimpleRateThrottle``, hand-written). Concurrent
  requests overwrite each other's history.
- ``log-of-hits`` (NEVER LETS BACK IN): a sorted-set log in one MULTI/EXEC (trim entries older
  than the period, count, add this hit, expire), refused when the count is at the limit. It
  records refused hits too, so it is exact in a burst, but a client that keeps sending faster
  than the rate is refused for as long as it sends.
- ``none`` (no limit): always 200.
- ``constant-key`` (correct total, wrong identity): ``INCR`` on one key for every client, so all
  clients share one budget.
- ``global-read-compare-increment`` (RACY, global): a downstream quota shared by every
  client on purpose, written as a read-compare-increment (redis-py ``GET`` of one key, reject
  if ``>= limit``, else ``INCR`` and ``EXPIRE`` on the first): requests that read the same
  count all pass. Claimed with ``--scope global``; ``constant-key`` is its correct twin.
- ``per-process`` (per-worker state): a module-global dict of counters behind a lock; every
  gunicorn worker admits the limit on its own.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import app_env
import redis

RATE = app_env.rate()
PREFIX = app_env.key_prefix()

GCRA_LUA = """
-- GCRA: KEYS[1] holds the client's theoretical arrival time (TAT) in microseconds.
-- ARGV[1]: emission interval (period / limit, in microseconds); ARGV[2]: burst (the limit).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local emission = tonumber(ARGV[1])
local tolerance = emission * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + emission
local allow_at = new_tat - tolerance
if allow_at > now then
  return {0, math.ceil((allow_at - now) / 1000)}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX',
           math.ceil((new_tat - now) / 1000))
return {1, 0}
"""

SLIDING_COUNTER_LUA = """
-- A sliding-window counter. KEYS[1]: the client's key, to which the window index is appended.
-- ARGV[1]: the limit; ARGV[2]: the period in milliseconds.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local window = math.floor(now / period)
local current_key = KEYS[1] .. ':' .. string.format('%d', window)
local previous_key = KEYS[1] .. ':' .. string.format('%d', window - 1)
local current = tonumber(redis.call('GET', current_key)) or 0
local previous = tonumber(redis.call('GET', previous_key)) or 0
local left = (period - (now - window * period)) / period
if previous * left + current + 1 > limit then
  return 0
end
redis.call('INCR', current_key)
redis.call('PEXPIRE', current_key, 2 * period)
return 1
"""

SLIDING_LOG_LUA = """
-- A sliding log of admitted hits. KEYS[1]: the client's sorted set.
-- ARGV[1]: the limit; ARGV[2]: the period in microseconds.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local period = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - period)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now, string.format('%d-%d', now, redis.call('INCR', KEYS[1] .. ':n')))
redis.call('PEXPIRE', KEYS[1], math.ceil(period / 1000))
redis.call('PEXPIRE', KEYS[1] .. ':n', math.ceil(period / 1000))
return 1
"""

Check = Callable[[str], bool]


def _redis() -> redis.Redis:
    # redis-py's pool notices a fork and reconnects, so a client made before one is safe.
    return redis.Redis.from_url(app_env.redis_url())


def _django_cache() -> Any:
    """Django's default cache on django-redis (made per thread, on its first use)."""
    from django.conf import settings

    settings.configure(CACHES=app_env.django_redis_caches())
    from django.core.cache import cache

    return cache


def read_compare_increment() -> Check:
    cache = _django_cache()

    def check(ip: str) -> bool:
        key = f"handrolled:rci:{ip}"
        count = cache.get(key, 0)
        if count >= RATE.limit:
            return False
        if not cache.add(key, 1, RATE.period):
            try:
                cache.incr(key)
            except ValueError:  # it expired between add and incr: a new window
                cache.add(key, 1, RATE.period)
        return True

    return check


def set_then_incr() -> Check:
    cache = _django_cache()

    def check(ip: str) -> bool:
        key = f"handrolled:setincr:{ip}"
        if cache.get(key) is None:
            cache.set(key, 0, RATE.period)  # not add: a concurrent first request resets it
        try:
            n = cache.incr(key)
        except ValueError:  # it expired between set and incr: a new window
            cache.set(key, n := 1, RATE.period)
        return bool(n <= RATE.limit)

    return check


def incr_then_check() -> Check:
    r = _redis()

    def check(ip: str) -> bool:
        key = f"{PREFIX}handrolled:incr:{ip}"
        n = int(r.incr(key))
        if n == 1:
            r.expire(key, RATE.period)
        return n <= RATE.limit

    return check


def no_expiry() -> Check:
    r = _redis()

    def check(ip: str) -> bool:
        return int(r.incr(f"{PREFIX}handrolled:forever:{ip}")) <= RATE.limit

    return check


def clock_window() -> Check:
    r = _redis()

    def check(ip: str) -> bool:
        key = f"{PREFIX}handrolled:clock:{ip}:{int(time.time() // RATE.period)}"
        with r.pipeline() as pipe:
            n, _ = pipe.incr(key).expire(key, RATE.period).execute()
        return int(n) <= RATE.limit

    return check


def token_bucket() -> Check:
    script = _redis().register_script(GCRA_LUA)
    emission_us = RATE.period * 1_000_000 / RATE.limit

    def check(ip: str) -> bool:
        allowed, _retry_ms = script(
            keys=[f"{PREFIX}handrolled:gcra:{ip}"], args=[repr(emission_us), RATE.limit]
        )
        return bool(allowed)

    return check


def sliding_counter() -> Check:
    script = _redis().register_script(SLIDING_COUNTER_LUA)

    def check(ip: str) -> bool:
        key = f"{PREFIX}handrolled:counter:{ip}"
        return bool(script(keys=[key], args=[RATE.limit, RATE.period * 1000]))

    return check


def sliding_log() -> Check:
    script = _redis().register_script(SLIDING_LOG_LUA)

    def check(ip: str) -> bool:
        key = f"{PREFIX}handrolled:log:{ip}"
        return bool(script(keys=[key], args=[RATE.limit, int(RATE.period * 1_000_000)]))

    return check


def get_set_list() -> Check:
    r = _redis()

    def check(ip: str) -> bool:
        key = f"{PREFIX}handrolled:list:{ip}"
        now = time.time()
        raw = r.get(key)
        history = [t for t in json.loads(raw) if t > now - RATE.period] if raw else []
        if len(history) >= RATE.limit:
            return False
        history.append(now)
        r.set(key, json.dumps(history), ex=RATE.period)
        return True

    return check


def log_of_hits() -> Check:
    """The widely copied sorted-set log that records refused hits too (MULTI/EXEC: trim,
    count, add, expire; refuse when the count is at the limit)."""
    r = _redis()

    def check(ip: str) -> bool:
        key = f"{PREFIX}handrolled:hits:{ip}"
        now = time.time()
        with r.pipeline() as pipe:  # MULTI/EXEC
            pipe.zremrangebyscore(key, 0, now - RATE.period)
            pipe.zcard(key)
            pipe.zadd(key, {f"{now}:{threading.get_ident()}:{os.getpid()}": now})
            pipe.expire(key, RATE.period)
            _, count, _, _ = pipe.execute()
        return int(count) < RATE.limit

    return check


def no_limit() -> Check:
    return lambda ip: True


def constant_key() -> Check:
    r = _redis()
    key = f"{PREFIX}handrolled:constant"

    def check(ip: str) -> bool:
        n = int(r.incr(key))
        if n == 1:
            r.expire(key, RATE.period)
        return n <= RATE.limit

    return check


def global_read_compare_increment() -> Check:
    r = _redis()
    key = f"{PREFIX}handrolled:global"

    def check(ip: str) -> bool:
        if int(r.get(key) or 0) >= RATE.limit:
            return False
        if int(r.incr(key)) == 1:
            r.expire(key, RATE.period)
        return True

    return check


def per_process() -> Check:
    lock = threading.Lock()
    windows: dict[str, tuple[float, int]] = {}  # ip -> (window start, count)

    def check(ip: str) -> bool:
        now = time.monotonic()
        with lock:
            start, count = windows.get(ip, (now, 0))
            if now - start >= RATE.period:
                start, count = now, 0
            windows[ip] = (start, count + 1)
        return count + 1 <= RATE.limit

    return check


PATTERNS: dict[str, Callable[[], Check]] = {
    "read-compare-increment": read_compare_increment,
    "set-then-incr": set_then_incr,
    "incr-then-check": incr_then_check,
    "clock-window": clock_window,
    "no-expiry": no_expiry,
    "log-of-hits": log_of_hits,
    "token-bucket": token_bucket,
    "sliding-counter": sliding_counter,
    "sliding-log": sliding_log,
    "get-set-list": get_set_list,
    "none": no_limit,
    "constant-key": constant_key,
    "global-read-compare-increment": global_read_compare_increment,
    "per-process": per_process,
}

PATTERN = os.environ.get("PATTERN", "")
if PATTERN not in PATTERNS:
    raise RuntimeError(f"PATTERN={PATTERN!r}: expected one of {', '.join(PATTERNS)}")
CHECK = PATTERNS[PATTERN]()


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("PATH_INFO") != app_env.LIMITED_PATH:
        return app_env.not_found(start_response)
    return app_env.answer(start_response, CHECK(environ["REMOTE_ADDR"]))
