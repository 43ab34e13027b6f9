"""What every Redis provider yields, the key hygiene that keeps a user's Redis untouched, and
the redaction that keeps its password out of anything shown to the user."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import unquote, unquote_plus, urlsplit

import redis

from harness.errors import RedisUnavailable


@dataclass(frozen=True)
class RedisServer:
    """A Redis the harness can use: where it is and whether the harness owns it.

    ``owned`` is True only for servers the harness started itself; only those are ever flushed
    or restarted (``restart``: stop it and start it again at the same URL, its data lost, and
    return once it answers; None where the provider cannot).
    """

    url: str = field(repr=False)  # carries the password: show redact_url(url)
    provider: str
    owned: bool
    version: str
    reason: str = ""
    restart: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def clear(self, prefix: str) -> int:
        """Forget throttle state before or after a run.

        A server the harness started is flushed whole. Any other server keeps every key except
        those under ``prefix`` (the run's own namespace), which are deleted one by one.
        """
        try:
            with self.client() as client:
                if self.owned:
                    client.flushall()
                    return 0
                deleted = 0
                for key in client.scan_iter(match=glob_escape(prefix) + "*", count=500):
                    deleted += int(client.delete(key))
                return deleted
        except redis.exceptions.RedisError as exc:
            raise RedisUnavailable(
                f"Redis ({self.provider}) stopped answering: {redact_secrets(str(exc), self.url)}"
            ) from None


class RedisProvider(Protocol):
    """One way of getting a Redis. ``unavailable()`` says why not (None when usable)."""

    name: str

    def unavailable(self) -> str | None: ...

    def open(self) -> AbstractContextManager[RedisServer]: ...


def glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def server_version(url: str) -> str:
    with redis.Redis.from_url(url, socket_timeout=5) as client:
        return str(client.info("server").get("redis_version", "unknown"))


_QUERY_PARAM = re.compile(r"(?P<key>[^&;#=]*)=(?P<value>[^&;#]*)")


def redact_url(url: str) -> str:
    """``url`` fit to show: the password of its user info and the value of every query
    parameter named like ``password`` (any case, percent-encoded or not) become ``***``; the
    user name, host, port, database and other parameters stay.

    Everything before the last ``@`` counts as user info, even where an unencoded ``/``, ``?``
    or ``#`` in a password would make a URL parser end the host early, and a mistyped scheme
    (``redis:/``) still has one: showing too little is safe, showing part of a password is not.
    """
    scheme, sep, rest = _split_scheme(url)
    if not sep:
        return url
    userinfo, at, location = rest.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        userinfo = f"{user}:***" if colon else userinfo
    where, question, query = f"{userinfo}{at}{location}".partition("?")
    query = _QUERY_PARAM.sub(
        lambda m: f"{m['key']}=***" if _is_password_key(m["key"]) else m[0], query
    )
    return f"{scheme}{sep}{where}{question}{query}"


def redact_secrets(text: str, url: str) -> str:
    """``text`` (an error message, a log tail) without the secrets of ``url``: the URL itself is
    shown as :func:`redact_url` shows it, and its passwords, as written or percent-decoded,
    become ``***`` wherever else they appear (not inside the redacted URL, whose user name may
    contain the password as a part: ``default:def``)."""
    secrets = sorted(_secrets(url), key=len, reverse=True)
    if not secrets:
        return text
    shown = redact_url(url)
    pieces = re.split(f"({re.escape(url)}|{re.escape(shown)})", text)
    for i in range(0, len(pieces), 2):  # the even pieces are outside every URL
        for secret in secrets:
            pieces[i] = pieces[i].replace(secret, "***")
    return "".join(shown if i % 2 else piece for i, piece in enumerate(pieces))


def _split_scheme(url: str) -> tuple[str, str, str]:
    scheme, sep, rest = url.partition("://")
    return (scheme, sep, rest) if sep else url.partition(":")


def _secrets(url: str) -> set[str]:
    rest = _split_scheme(url)[2]
    userinfo, at, location = rest.rpartition("@")
    found = set()
    if at and ":" in userinfo:
        password = userinfo.partition(":")[2]
        found |= {password, unquote(password)}
    try:  # the password as a URL parser reads it, should that differ
        password = urlsplit(url).password or ""
    except ValueError:
        password = ""
    found |= {password, unquote(password)}
    for m in _QUERY_PARAM.finditer(rest.partition("?")[2]):
        if _is_password_key(m["key"]):
            found |= {m["value"], unquote_plus(m["value"])}
    return {secret for secret in found if secret}


def _is_password_key(key: str) -> bool:
    return "password" in unquote_plus(key).lower()
