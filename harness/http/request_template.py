"""What the harness sends and how it reads the answers: a request template that each client
fills in, and which statuses count as admitted or refused.

A template holds a method, a path, headers and a body, any of which may carry the placeholder
``{identity}``: each client's own value (``client-TAG-1``, ``client-TAG-2``, … or a line of an
identity file: a token, a user name). The value goes into headers and body as it is, and into
the path percent-encoded. Engines render every request's bytes before the clock starts, so the
hot loop only writes prepared buffers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
PLACEHOLDER = "{identity}"
FORM = "application/x-www-form-urlencoded"
_OTHER_PLACEHOLDER = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")


@dataclass(frozen=True)
class Rendered:
    """One request, ready for the wire (``headers`` without Host, which the engine adds)."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True)
class RequestTemplate:
    """A request with ``{identity}`` placeholders. A body without a ``Content-Type`` header is
    sent as a form (``application/x-www-form-urlencoded``)."""

    method: str = "GET"
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""

    @property
    def uses_identity(self) -> bool:
        texts = [self.path, self.body, *(v for _, v in self.headers)]
        return any(PLACEHOLDER in text for text in texts)

    def render(self, identity: str) -> Rendered:
        """This request as the client whose value is ``identity`` sends it."""
        headers = [(k, v.replace(PLACEHOLDER, identity)) for k, v in self.headers]
        body = self.body.replace(PLACEHOLDER, identity).encode()
        if body and not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("Content-Type", FORM))
        target = self.path.replace(PLACEHOLDER, quote(identity, safe=""))
        return Rendered(self.method, target, tuple(headers), body)


def stray_placeholders(template: RequestTemplate) -> list[str]:
    """Placeholders other than ``{identity}`` (a typo such as ``{identiy}`` or ``{user}``)."""
    texts = [template.path, template.body, *(v for _, v in template.headers)]
    return sorted({m for text in texts for m in _OTHER_PLACEHOLDER.findall(text)} - {PLACEHOLDER})


@dataclass(frozen=True)
class Statuses:
    """Which answers count as admitted (``accept``; empty: any 2xx) and which as refused by the
    throttle (``reject``); anything else is an error."""

    accept: frozenset[int] = field(default_factory=frozenset)
    reject: frozenset[int] = frozenset({429})

    def admitted(self, status: int | None) -> bool:
        if status is None:
            return False
        return status in self.accept if self.accept else 200 <= status < 300

    def refused(self, status: int | None) -> bool:
        return status in self.reject

    def describe(self) -> str:
        accept = ",".join(map(str, sorted(self.accept))) if self.accept else "2xx"
        return f"admitted {accept}, refused {','.join(map(str, sorted(self.reject)))}"


# Parsing, for scenario files and flags: each raises ValueError with a one-line reason.

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_OWNED_HEADERS = {"host", "content-length", "connection", "transfer-encoding"}


def parse_method(text: str) -> str:
    method = text.strip().upper()
    if method not in METHODS:
        raise ValueError(f"unknown method {text!r}: use one of {', '.join(METHODS)}")
    return method


def parse_header(text: str) -> tuple[str, str]:
    """``Name: value`` as curl takes it. A complaint never shows the value (it may be a
    token): of a header without a colon, only its first word."""
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not name:
        words = text.split(maxsplit=1) if sep == "" else []
        shown = f"header {words[0]!r}{' ...' if len(words) > 1 else ''}" if words else "a header"
        raise ValueError(f"{shown}: expected 'Name: value'")
    if not _TOKEN.match(name):
        raise ValueError(f"header {name!r}: not a header name")
    if any(c in value for c in "\r\n\0") or not value.isascii():
        raise ValueError(f"header {name!r}: a value is ASCII, without line breaks or NUL")
    if name.lower() in _OWNED_HEADERS or name.lower().startswith("x-throttle-harness-"):
        raise ValueError(f"header {name!r} is set by the harness itself")
    return name, value


def parse_body(text: str, base_dir: Path) -> str:
    """A request body; ``@FILE`` reads it from a file (relative to ``base_dir``), as curl does."""
    if not text.startswith("@"):
        return text
    path = base_dir / text[1:]
    try:
        return path.read_text()
    except FileNotFoundError:
        raise ValueError(f"data {text!r}: no such file {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"data {text!r}: cannot read {path}: {exc}") from None


def parse_statuses(text: str | Sequence[int]) -> frozenset[int]:
    """``403,429`` (or a list of numbers): HTTP statuses."""
    items = text.split(",") if isinstance(text, str) else list(text)
    statuses = set()
    for item in items:
        try:
            status = int(str(item).strip())
        except ValueError:
            raise ValueError(f"status {item!r} is not a number") from None
        if not 100 <= status <= 599:
            raise ValueError(f"status {status} is not an HTTP status (100-599)")
        statuses.add(status)
    if not statuses:
        raise ValueError("no status given")
    return frozenset(statuses)


def checked_statuses(accept: frozenset[int], reject: frozenset[int]) -> Statuses:
    """The statuses, once it is clear that no answer counts both ways."""
    both = accept & reject if accept else {s for s in reject if 200 <= s < 300}
    if both:
        raise ValueError(
            f"status {min(both)} would count both as admitted and as refused: "
            "--accept-status and --reject-status must not overlap"
        )
    return Statuses(accept, reject)


def checked_template(template: RequestTemplate) -> RequestTemplate:
    """The template, once its placeholders are all ``{identity}``."""
    stray = stray_placeholders(template)
    if stray:
        raise ValueError(f"unknown placeholder {stray[0]}: the only one is {PLACEHOLDER}")
    return template


def read_identities(name: str, base_dir: Path, per_burst: int) -> tuple[str, ...]:
    """The ``{identity}`` values of an identity file, one a line (blank lines skipped);
    ``name`` empty: none, and the harness makes its own."""
    if not name:
        return ()
    path = base_dir / name
    try:
        lines = [(n, v.strip()) for n, v in enumerate(path.read_text().splitlines(), 1)]
    except FileNotFoundError:
        raise ValueError(f"identity file {name!r}: no such file {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"identity file {name!r}: cannot read {path}: {exc}") from None
    lines = [(n, v) for n, v in lines if v]
    values = tuple(v for _, v in lines)
    if not values:
        raise ValueError(f"identity file {name!r} holds no values")
    if len(values) < per_burst:
        raise ValueError(
            f"identity file {name!r} holds {len(values)} values, fewer than the {per_burst} "
            "identities of one burst"
        )
    if any(c in v for v in values for c in "\r\n\0"):
        raise ValueError(f"identity file {name!r}: a value holds a control character")
    first: dict[str, int] = {}
    for n, v in lines:  # the lines, never the values: they may be tokens
        if v in first:
            raise ValueError(
                f"identity file {name!r}: lines {first[v]} and {n} hold the same value; "
                "one client each"
            )
        first[v] = n
    return values
