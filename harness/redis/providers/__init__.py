"""Redis providers chosen by a spec string: ``embedded``, ``local``, ``docker[:IMAGE]``,
``redis://…``, ``auto``.

``auto`` takes the first usable provider in :data:`AUTO_ORDER` (Docker when an engine answers,
then a local ``redis-server``, then the embedded one) and records why in ``RedisServer.reason``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace

from harness.errors import RedisUnavailable, UsageError
from harness.redaction import redact_secrets, redact_url
from harness.redis.providers.base import RedisProvider, RedisServer
from harness.redis.providers.binary import EMBEDDED, LOCAL
from harness.redis.providers.docker import DockerProvider
from harness.redis.providers.url import UrlProvider

__all__ = [
    "AUTO_ORDER",
    "RedisProvider",
    "RedisServer",
    "open_redis",
    "provider_for",
    "redact_secrets",
    "redact_url",
]

DEFAULT_SPEC = "embedded"
AUTO_ORDER: list[RedisProvider] = [DockerProvider(), LOCAL, EMBEDDED]
SPEC_HELP = (
    "embedded (default), local, docker[:IMAGE], auto, or redis://[:PASSWORD@]127.0.0.1:PORT/DB"
)


def provider_for(spec: str) -> RedisProvider:
    """The provider a ``--redis`` spec names (``auto`` is resolved by :func:`open_redis`)."""
    if spec == "local":
        return LOCAL
    if spec == "embedded":
        return EMBEDDED
    if spec == "docker" or spec.startswith("docker:"):
        image = spec.removeprefix("docker").removeprefix(":")
        if spec.startswith("docker:") and not image:
            raise UsageError("--redis docker:IMAGE needs an image, such as docker:redis:7-alpine")
        return DockerProvider(image or None)
    if spec.lower().startswith(("redis://", "rediss://")):
        return UrlProvider(spec)
    raise UsageError(f"unknown --redis {redact_url(spec)!r}: use {SPEC_HELP}")


def open_redis(spec: str, require_docker: bool = False) -> AbstractContextManager[RedisServer]:
    """Start (or connect to) the Redis that ``spec`` names; stop it when the context exits.

    ``require_docker`` turns ``auto`` into ``docker`` (no silent fallback) and refuses any
    spec that is not a Docker one.
    """
    is_docker = spec == "docker" or spec.startswith("docker:")
    if require_docker and spec == "auto":
        return _with_reason(provider_for("docker"), "auto with Docker required")
    if require_docker and not is_docker:
        raise UsageError(
            f"Docker is required (--require-docker), but --redis is {redact_url(spec)!r}"
        )
    if spec == "auto":
        return _auto()
    return _with_reason(provider_for(spec), "--redis URL" if "://" in spec else f"--redis {spec}")


def _auto() -> AbstractContextManager[RedisServer]:
    skipped: list[str] = []
    for provider in AUTO_ORDER:
        why_not = provider.unavailable()
        if why_not is None:
            reason = "auto: " + "; ".join([*skipped, f"{_label(provider)} is available"])
            return _with_reason(provider, reason)
        skipped.append(f"{_label(provider)}: {why_not}")
    raise RedisUnavailable("--redis auto found no usable Redis (" + "; ".join(skipped) + ")")


def _label(provider: RedisProvider) -> str:
    return f"docker ({provider.image})" if isinstance(provider, DockerProvider) else provider.name


@contextmanager
def _with_reason(provider: RedisProvider, reason: str) -> Iterator[RedisServer]:
    if isinstance(provider, DockerProvider) and "(" not in reason:
        reason += f" (image {provider.image})"
    with provider.open() as server:
        yield replace(server, reason=reason)
