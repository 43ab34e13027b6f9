"""The app's throttle state in Redis after a run, as the team behind this project checked it by
hand (``redis-cli --scan --pattern "throttle*"``, ``TTL``): which keys, of what type and size,
with what time to live against the window; keys that never expire (a limiter that never
forgets) and times to live far longer than the window are flagged. Read only: SCAN, TYPE,
PTTL, the size of each key and INFO, never a write. A key is named by
:func:`~harness.redaction.key_name`, never by its name (which may hold a token).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis

from harness.redaction import key_name

SAMPLE = 10  # keys described one by one in the report
MAX_KEYS = 10_000  # keys looked at, at most
FAR_FACTOR = 2.0  # a time to live above this many windows is flagged
_SIZE = {
    "string": "strlen",
    "list": "llen",
    "hash": "hlen",
    "set": "scard",
    "zset": "zcard",
    "stream": "xlen",
}


@dataclass(frozen=True)
class KeyInfo:
    key: str  # key_name(the key): ``key:`` and a digest, never the name itself
    type: str
    size: int  # bytes of a string, members of anything else
    ttl_s: float | None  # None: the key never expires


@dataclass(frozen=True)
class RedisState:
    """What :func:`snapshot` found under ``pattern``."""

    pattern: str
    keys: int = 0
    truncated: bool = False  # more than MAX_KEYS keys matched
    types: dict[str, int] = field(default_factory=dict)
    no_ttl: tuple[str, ...] = ()  # keys that never expire (at most SAMPLE)
    no_ttl_count: int = 0
    ttl_far: tuple[str, ...] = ()  # keys living much longer than the window (at most SAMPLE)
    ttl_far_count: int = 0
    ttl_range_s: tuple[float, float] | None = None
    sample: tuple[KeyInfo, ...] = ()
    used_memory: int | None = None
    error: str = ""

    def describe(self, period_s: float) -> str:
        """One line for the console."""
        if self.error:
            return f"redis keys {self.pattern!r}: not read ({self.error})"
        if not self.keys:
            return f"redis keys {self.pattern!r}: none"
        types = ", ".join(f"{t} {n}" for t, n in sorted(self.types.items()))
        text = f"redis keys {self.pattern!r}: {self.keys}{'+' if self.truncated else ''} ({types})"
        if self.ttl_range_s:
            low, high = self.ttl_range_s
            text += f", TTL {low:.0f}-{high:.0f}s for a {period_s:g}s window"
        if self.no_ttl_count:
            text += f"; {self.no_ttl_count} never expire (e.g. {self.no_ttl[0]})"
        if self.ttl_far_count:
            text += f"; {self.ttl_far_count} live over {FAR_FACTOR:g}x the window"
        if self.used_memory is not None:
            text += f"; {self.used_memory / 1e6:.1f} MB used"
        return text


def snapshot(client: redis.Redis, pattern: str, period_s: float) -> RedisState:
    """The keys matching ``pattern``; a Redis error is reported in the state, not raised."""
    try:
        return _snapshot(client, pattern, period_s)
    except redis.exceptions.RedisError as exc:
        return RedisState(pattern, error=str(exc).splitlines()[0][:200])


def _snapshot(client: redis.Redis, pattern: str, period_s: float) -> RedisState:
    keys: list[bytes] = []
    truncated = False
    for key in client.scan_iter(match=pattern, count=1000):
        if len(keys) >= MAX_KEYS:
            truncated = True
            break
        keys.append(key)
    infos: list[KeyInfo] = []
    for start in range(0, len(keys), 500):
        batch = keys[start : start + 500]
        with client.pipeline(transaction=False) as pipe:
            for key in batch:
                pipe.type(key)
                pipe.pttl(key)
            answers = pipe.execute()
        kinds = [_text(k) for k in answers[0::2]]
        with client.pipeline(transaction=False) as pipe:
            for key, kind in zip(batch, kinds, strict=True):
                getattr(pipe, _SIZE.get(kind, "exists"))(key)
            sizes = pipe.execute()
        for key, kind, pttl, size in zip(batch, kinds, answers[1::2], sizes, strict=True):
            if pttl == -2:
                continue  # expired between SCAN and now
            ttl = None if pttl == -1 else pttl / 1000
            infos.append(KeyInfo(key_name(key), kind, int(size), ttl))
    ttls = [i.ttl_s for i in infos if i.ttl_s is not None]
    forever = [i.key for i in infos if i.ttl_s is None]
    far = [i.key for i in infos if i.ttl_s is not None and i.ttl_s > FAR_FACTOR * period_s]
    try:
        memory = client.info("memory").get("used_memory")
    except redis.exceptions.ResponseError:  # INFO refused (a proxy, a restricted user)
        memory = None
    return RedisState(
        pattern=pattern,
        keys=len(infos),
        truncated=truncated,
        types=dict(Counter(i.type for i in infos)),
        no_ttl=tuple(forever[:SAMPLE]),
        no_ttl_count=len(forever),
        ttl_far=tuple(far[:SAMPLE]),
        ttl_far_count=len(far),
        ttl_range_s=(min(ttls), max(ttls)) if ttls else None,
        sample=tuple(infos[:SAMPLE]),
        used_memory=int(memory) if memory is not None else None,
    )


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
