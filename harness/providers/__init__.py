"""Redis providers chosen by a spec string: ``embedded``, ``local``, ``redis://…``, ``auto``.

``auto`` takes the first usable provider in :data:`AUTO_ORDER` and records why. A Docker
provider plugs in by adding itself to :data:`AUTO_ORDER` and to :func:`provider_for`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace

from harness.errors import RedisUnavailable, UsageError
from harness.providers.base import RedisProvider, RedisServer
from harness.providers.binary import EMBEDDED, LOCAL
from harness.providers.url import UrlProvider

__all__ = ["AUTO_ORDER", "RedisProvider", "RedisServer", "open_redis", "provider_for"]

DEFAULT_SPEC = "embedded"
AUTO_ORDER: list[RedisProvider] = [LOCAL, EMBEDDED]
SPEC_HELP = "embedded (default), local, auto, or redis://[:PASSWORD@]127.0.0.1:PORT/DB"


def provider_for(spec: str) -> RedisProvider:
    """The provider a ``--redis`` spec names (``auto`` is resolved by :func:`open_redis`)."""
    if spec == "local":
        return LOCAL
    if spec == "embedded":
        return EMBEDDED
    if spec.startswith(("redis://", "rediss://")):
        return UrlProvider(spec)
    raise UsageError(f"unknown --redis {spec!r}: use {SPEC_HELP}")


def open_redis(spec: str) -> AbstractContextManager[RedisServer]:
    """Start (or connect to) the Redis that ``spec`` names; stop it when the context exits."""
    if spec == "auto":
        return _auto()
    provider = provider_for(spec)
    return _with_reason(provider, f"--redis {spec}" if "://" not in spec else "--redis URL")


def _auto() -> AbstractContextManager[RedisServer]:
    skipped: list[str] = []
    for provider in AUTO_ORDER:
        why_not = provider.unavailable()
        if why_not is None:
            reason = "auto: " + "; ".join([*skipped, f"{provider.name} is available"])
            return _with_reason(provider, reason)
        skipped.append(f"{provider.name}: {why_not}")
    raise RedisUnavailable("--redis auto found no usable Redis (" + "; ".join(skipped) + ")")


@contextmanager
def _with_reason(provider: RedisProvider, reason: str) -> Iterator[RedisServer]:
    with provider.open() as server:
        yield replace(server, reason=reason)
