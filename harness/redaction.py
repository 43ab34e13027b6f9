"""Secrets have one exit: the names that stand for them, and the scrub every output goes through.

What is secret: ``{identity}`` values (an identity file's tokens, or the generated
``client-TAG-N``), the header values and body the user gives, Redis passwords and Redis key
names. None of them is ever shown:

- a client is named by its loopback address, or by :func:`client_name` of its value
  (``id:3f9a1c``, the first hex digits of its SHA-256, stable within and across runs:
  ``printf %s TOKEN | sha256sum | cut -c1-6``); a Redis key by :func:`key_name` (``key:…``);
- a URL by :func:`redact_url` (its password ``***``);
- every output (console, JSON, HTML, JUnit, Markdown, errors, pytest messages) passes through
  :func:`scrub`, which replaces each secret this process was told of (:data:`MASKS`: the
  runner tells it a matrix's secrets before anything runs), as written and as that output
  escapes it, by what stands for it: a last guard for text that picked one up (an app's log
  tail, an error).
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO, cast
from urllib.parse import quote, unquote, unquote_plus, urlsplit

Escape = Callable[[str], str]  # how an output writes a piece of text (html.escape, ...)

DIGITS = 6  # hex digits of a name: two clients share one once in 16 million pairs
MIN_LENGTH = 4  # shorter strings are no secret, and scrubbing them would garble every line
PART_LENGTH = 8  # a fixed part beside {identity} shorter than this is a label ("Bearer ")
HIDDEN = "***"
PLACEHOLDER = "{identity}"


def digest(text: str | bytes) -> str:
    """The first :data:`DIGITS` hex digits of the SHA-256 of ``text`` (a string in UTF-8)."""
    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()[:DIGITS]


def client_name(value: str) -> str:
    """How a client whose ``{identity}`` is ``value`` is named: ``id:`` and its digest."""
    return f"id:{digest(value)}"


def key_name(key: str | bytes) -> str:
    """How a Redis key is named: ``key:`` and the digest of its name (its bytes as stored)."""
    return f"key:{digest(key)}"


class Masks:
    """The secrets one process knows of, each with what stands for it (thread-safe)."""

    def __init__(self, min_length: int = MIN_LENGTH) -> None:
        self.min_length = min_length
        self._shown: dict[str, str] = {}  # secret (or a text kept whole) -> what is shown
        self._lock = threading.Lock()

    def _add(self, pairs: Iterable[tuple[str, str]]) -> None:
        with self._lock:
            for secret, shown in pairs:
                if len(secret) >= self.min_length or secret == shown:
                    self._shown.setdefault(secret, shown)

    def identities(self, values: Iterable[str]) -> None:
        """``{identity}`` values: each shown as :func:`client_name`."""
        self._add((v, client_name(v)) for v in values)

    def secrets(self, values: Iterable[str]) -> None:
        """Any other secret text: shown as ``***``."""
        self._add((v, HIDDEN) for v in values)

    def request(self, texts: Iterable[str]) -> None:
        """Header values and a body as the user gave them: each whole, or where it holds a
        ``{identity}`` (masked as drawn, by :meth:`identities`), each fixed part of at least
        :data:`PART_LENGTH` characters beside it."""
        for text in texts:
            if PLACEHOLDER not in text:
                self.secrets([text.strip()])
            else:
                parts = (part.strip() for part in text.split(PLACEHOLDER))
                self.secrets(part for part in parts if len(part) >= PART_LENGTH)

    def url(self, url: str) -> None:
        """A Redis URL: itself shown as :func:`redact_url` shows it (kept whole wherever it
        appears so), its passwords elsewhere as ``***``."""
        shown = redact_url(url)
        self._add([(url, shown), (shown, shown), *((s, HIDDEN) for s in url_passwords(url))])

    def known(self) -> dict[str, str]:
        with self._lock:
            return dict(self._shown)

    def scrub(self, text: str, *escapes: Escape) -> str:
        """``text`` with every known secret replaced, as written and as each of ``escapes``
        writes it (then replaced by what stands for it, escaped alike), and percent-encoded."""
        known = self.known()
        table: dict[str, str] = {}  # a form of a secret -> what is shown instead
        # As written first: a secret that is another's form (hunter2%21, hunter2!) is itself.
        forms: list[tuple[Escape, Escape]] = [(_same, _same), (_percent_encoded, _same)]
        forms += [(e, e) for e in escapes]
        for escape, shown_as in forms:
            for secret, shown in known.items():
                form = escape(secret)
                if form and form in text:
                    table.setdefault(form, shown_as(shown))
        if not table:
            return text
        # The longest first: a URL before its password, client-x-10 before client-x-1.
        pattern = "|".join(map(re.escape, sorted(table, key=len, reverse=True)))
        return re.sub(pattern, lambda m: table[m[0]], text)


def _same(text: str) -> str:
    return text


@functools.cache
def _percent_encoded(text: str) -> str:  # as a value goes into a path
    return quote(text, safe="")


MASKS = Masks()  # this process's: what every output is scrubbed of


def scrub(text: str, *escapes: Escape) -> str:
    """``text`` fit to show: :meth:`Masks.scrub` with this process's secrets."""
    return MASKS.scrub(text, *escapes)


def masked_batches(batches: Iterator[list[str]]) -> Iterator[list[str]]:
    """``batches`` of ``{identity}`` values, each masked as it is drawn (generated values are
    known only then)."""
    for batch in batches:
        MASKS.identities(batch)
        yield batch


def scrubbed(stream: TextIO) -> TextIO:
    """A text stream that writes to ``stream`` what :func:`scrub` leaves of each write: the
    console's exit (``rich.console.Console(file=scrubbed(sys.stdout))``)."""
    return cast(TextIO, _ScrubbedStream(stream))


class _ScrubbedStream(io.TextIOBase):
    """What :func:`scrubbed` returns."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(scrub(text))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", None) or "utf-8"


# Redis URLs.

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
        userinfo = f"{user}:{HIDDEN}" if colon else userinfo
    where, question, query = f"{userinfo}{at}{location}".partition("?")
    query = _QUERY_PARAM.sub(
        lambda m: f"{m['key']}={HIDDEN}" if _is_password_key(m["key"]) else m[0], query
    )
    return f"{scheme}{sep}{where}{question}{query}"


def redact_secrets(text: str, url: str) -> str:
    """``text`` (an error message, a log tail) without the secrets of ``url``, however short:
    the URL itself is shown as :func:`redact_url` shows it, and its passwords, as written or
    percent-decoded, become ``***`` wherever else they appear (not inside the redacted URL,
    whose user name may contain the password as a part: ``default:def``)."""
    masks = Masks(min_length=1)
    masks.url(url)
    return masks.scrub(text)


def url_passwords(url: str) -> set[str]:
    """The passwords ``url`` carries, as written and percent-decoded."""
    rest = _split_scheme(url)[2]
    userinfo, at, _ = rest.rpartition("@")
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


def _split_scheme(url: str) -> tuple[str, str, str]:
    scheme, sep, rest = url.partition("://")
    return (scheme, sep, rest) if sep else url.partition(":")


def _is_password_key(key: str) -> bool:
    return "password" in unquote_plus(key).lower()
