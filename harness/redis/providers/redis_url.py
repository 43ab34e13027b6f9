"""What a ``--redis`` URL may be: the harness's own rule, whatever the installed redis-py accepts.

    redis[s]://[[USER]:PASSWORD@]HOST[:PORT][/DB][?NAME=VALUE&...]

- the scheme is ``redis`` or ``rediss`` in any case (RFC 3986: schemes are case-insensitive);
  the URL handed on (to the app in ``REDIS_URL``, to redis-py) has it in lower case, which
  every redis-py reads;
- the host is a loopback address (``127.0.0.0/8``, ``[::1]``, ``localhost``): the harness only
  talks to this machine;
- the port is a number from 1 to 65535 (default 6379); the database a number (default 0), in
  the path or as ``db=`` but not both;
- ``/``, ``?``, ``#`` and ``@`` in a user name or password are percent-encoded (``%2F``...);
- the query holds only the parameters in :data:`QUERY_PARAMETERS`, each once, each value of
  its type: the ones every supported redis-py reads the same way.

Every refusal is a :class:`~harness.errors.UsageError` of one line that shows the URL as
:func:`~harness.redis.providers.base.redact_url` shows it and never the password.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, unquote_plus

from harness.errors import UsageError
from harness.redaction import redact_secrets, redact_url

SHAPE = "redis://[[USER]:PASSWORD@]127.0.0.1[:PORT][/DB]"
DEFAULT_PORT = 6379
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def _whole(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _positive_number(text: str) -> bool:
    return re.fullmatch(r"[0-9]+(\.[0-9]+)?", text) is not None and float(text) > 0


def _any_text(text: str) -> bool:
    return True


QUERY_PARAMETERS: Mapping[str, tuple[Callable[[str], bool], str]] = {
    "db": (_whole, "a number"),
    "username": (_any_text, "text"),
    "password": (_any_text, "text"),
    "client_name": (_any_text, "text"),
    "protocol": (lambda v: v in ("2", "3"), "2 or 3"),
    "socket_timeout": (_positive_number, "seconds above 0"),
    "socket_connect_timeout": (_positive_number, "seconds above 0"),
    "health_check_interval": (_whole, "whole seconds"),
    "max_connections": (lambda v: _whole(v) and int(v) > 0, "a number above 0"),
}
TLS_QUERY_PARAMETERS: Mapping[str, tuple[Callable[[str], bool], str]] = {
    "ssl_cert_reqs": (
        lambda v: v in ("none", "optional", "required"),
        "none, optional or required",
    ),
    "ssl_ca_certs": (_any_text, "a file"),
}

_Refuse = Callable[..., UsageError]  # (why with {} for each echoed part, *parts)
_HOST_PORT = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^:\[\]]*)(?::(?P<port>[^:]*))?")


@dataclass(frozen=True)
class RedisUrl:
    """A Redis URL the harness accepts, and what it names."""

    url: str = field(repr=False)  # as given, but with the scheme in lower case
    tls: bool
    host: str
    port: int
    db: int
    username: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    query: Mapping[str, str] = field(default_factory=dict, repr=False)


def parse_redis_url(url: str) -> RedisUrl:
    """``url`` read by the rule in the module docstring; :class:`UsageError` where it breaks it."""

    def refuse(why: str, *echoed: str) -> UsageError:
        """One line; the parts of ``url`` it echoes (``{}`` in ``why``) with no password."""
        shown = (redact_secrets(repr(part), url) for part in echoed)
        return UsageError(f"invalid Redis URL {redact_url(url)!r}: {why.format(*shown)}")

    if not url.isprintable() or any(ch.isspace() for ch in url):
        raise refuse("spaces and control characters must be percent-encoded")
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("redis", "rediss"):
        raise refuse(f"expected {SHAPE}")
    if "#" in rest:
        raise refuse("a '#' must be percent-encoded (%23), in a password too")
    if rest.count("@") > 1:
        raise refuse("an '@' in a user name, password or parameter must be percent-encoded (%40)")
    userinfo, _, location = rest.rpartition("@")
    if any(ch in userinfo for ch in "/?"):
        raise refuse("a '/' or '?' in a user name or password must be percent-encoded")
    host_port, path, query_text = _split_location(location)
    match = _HOST_PORT.fullmatch(host_port)
    if match is None:
        raise refuse(f"expected {SHAPE}")
    host = match["host"].strip("[]").lower()
    if not host:
        raise refuse(f"no host: expected {SHAPE}")
    if not is_loopback(host):
        raise UsageError(
            f"Redis URL host {host!r} is not a loopback address: "
            "the harness only talks to 127.0.0.1/::1"
        )
    port = _port(match["port"], refuse)
    tls = scheme.lower() == "rediss"
    query = _query(query_text, tls, refuse)
    db = _db(path, query, refuse)
    user, _, password = userinfo.partition(":")
    return RedisUrl(
        url=scheme.lower() + url[len(scheme) :],
        tls=tls,
        host=host,
        port=port,
        db=db,
        username=unquote(user),
        password=unquote(password),
        query=query,
    )


def is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _split_location(location: str) -> tuple[str, str, str]:
    """(host and port, path, query) of what follows the user info."""
    before_query, _, query = location.partition("?")
    host_port, slash, path = before_query.partition("/")
    return host_port, slash + path, query


def _port(text: str | None, refuse: _Refuse) -> int:
    if not text:  # absent, or empty after the colon (RFC 3986: the default)
        return DEFAULT_PORT
    if not _whole(text) or not 1 <= int(text) <= 65535:
        raise refuse("the port must be a number from 1 to 65535, not {}", text)
    return int(text)


def _db(path: str, query: Mapping[str, str], refuse: _Refuse) -> int:
    number = path.removeprefix("/")
    if number and "db" in query:
        raise refuse("the database is given twice (in the path and as db=): give it once")
    number = number or query.get("db", "0")
    if not _whole(number):
        raise refuse("the database must be a number (/0, /1, ...), not {}", number)
    return int(number)


def _query(text: str, tls: bool, refuse: _Refuse) -> dict[str, str]:
    known = {**QUERY_PARAMETERS, **(TLS_QUERY_PARAMETERS if tls else {})}
    found: dict[str, str] = {}
    for pair in filter(None, text.split("&")):
        raw_name, equals, raw_value = pair.partition("=")
        name, value = unquote_plus(raw_name), unquote_plus(raw_value)
        if name not in known:
            raise refuse(
                "unknown query parameter {} (the harness reads " + ", ".join(sorted(known)) + ")",
                name,
            )
        if not equals:
            raise refuse("query parameter {} has no value", name)
        if name in found:
            raise refuse("query parameter {} is given twice", name)
        valid, kind = known[name]
        if not valid(value):
            shown = "***" if "password" in name else value
            raise refuse(f"query parameter {name!r} must be {kind}, not {{}}", shown)
        found[name] = value
    return found
