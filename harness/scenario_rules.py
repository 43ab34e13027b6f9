"""The checks behind a scenario's values (:mod:`harness.scenario`): reading a scenario file,
:class:`Validator`, whose checks raise a one-line :class:`ScenarioError` naming the source and
the key, the per-key parsers (pace, paths, ports) and the gunicorn options a scenario may not
pass (the harness owns them)."""

from __future__ import annotations

import re
import shlex
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from harness.errors import ScenarioError
from harness.fleet.gunicorn_options import OWNED, owned_option
from harness.fleet.worker_classes import ASYNC_CLASSES, DEFAULT_CONCURRENCY, WORKER_CLASSES
from harness.http.request_template import parse_statuses

T = TypeVar("T")
MAX_PORT = 65535
MAX_PACE = 100.0
_URL_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))  # printable ASCII, space excluded
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def parse_pace(value: Any) -> float:
    """A multiple of the rate: ``2x``, ``0.5x``, ``2`` or ``0.5``; ValueError otherwise."""
    text = str(value).strip().lower().removesuffix("x") if not isinstance(value, bool) else ""
    try:
        pace = float(text)
    except ValueError:
        raise ValueError(
            f"pace must be a multiple of the rate such as 2x or 0.5x, not {value!r}"
        ) from None
    if not 0 < pace <= MAX_PACE:
        raise ValueError(f"pace must be above 0 and at most {MAX_PACE:g}x, not {value!r}")
    return pace


def read_toml(path: Path) -> dict[str, Any]:
    """A scenario file's table; a one-line ScenarioError naming ``path`` if it cannot be read."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such scenario file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: malformed TOML: {exc}") from None
    except IsADirectoryError:
        raise ScenarioError(f"{path}: is a directory, not a scenario file") from None
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    except ValueError:  # a NUL in the path
        raise ScenarioError(f"{str(path)!r}: not a valid file name") from None


class Validator:
    """Type checks that raise :class:`ScenarioError` naming the source and the key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, message: str) -> ScenarioError:
        return ScenarioError(f"{self.source}: {message}")

    def string(self, key: str, value: Any) -> str:
        """A string without NUL (which no file name, argument or variable can carry)."""
        if not isinstance(value, str):
            raise self.error(f"{key} must be a string, not {value!r}")
        if "\0" in value:
            shown = "" if key in ("headers", "data") else f": {value!r}"  # may hold a token
            raise self.error(f"{key} must not contain a NUL character{shown}")
        return value

    def scalar_text(self, key: str, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.error(f"{key} must be a string or number, not {value!r}")
        return self.string(key, str(value))

    def env(self, table: dict[str, Any]) -> dict[str, str]:
        env = {}
        for key, value in table.items():
            if not self.string("env", key) or "=" in key:
                raise self.error(f"env: {key!r} is not a valid variable name")
            env[key] = self.scalar_text(f"env.{key}", value)
        if "GUNICORN_CMD_ARGS" in env:  # gunicorn reads it as more command-line arguments
            try:
                words = shlex.split(env["GUNICORN_CMD_ARGS"])
            except ValueError as exc:
                raise self.error(f"env.GUNICORN_CMD_ARGS: {exc}") from None
            self._refuse_owned("env.GUNICORN_CMD_ARGS", words)
        return env

    def port(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PORT:
            raise self.error(f"port must be a TCP port, 1 to {MAX_PORT}, not {value!r}")
        return value

    def gunicorn_args(self, value: Any) -> tuple[str, ...]:
        args = tuple(self.string("gunicorn_args", a) for a in self.list_of("gunicorn_args", value))
        self._refuse_owned("gunicorn_args", args)
        return args

    def _refuse_owned(self, key: str, args: Sequence[str]) -> None:
        found = owned_option(args)
        if found is not None:
            arg, setting = found
            option, why = OWNED[setting]
            raise self.error(
                f"{key}: {arg!r} (gunicorn's {option}) is not allowed: the harness owns "
                f"gunicorn's binding, worker shape and daemonizing; {why}"
            )

    def parsed(self, key: str, parse: Callable[[Any], T], value: Any) -> T:
        """``parse(value)``, its ValueError turned into this source's one-line error."""
        try:
            return parse(value)
        except ValueError as exc:
            raise self.error(str(exc)) from None

    def statuses(self, key: str, value: Any) -> frozenset[int] | None:
        """A list of statuses (``[403, 429]``, or ``"403,429"`` as a flag gives it)."""
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, list)):
            raise self.error(f"{key} must be a list of HTTP statuses, not {value!r}")
        items = [value] if isinstance(value, int) else value
        return self.parsed(key, lambda v: parse_statuses(v), items)

    def boolean(self, key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.error(f"{key} must be true or false, not {value!r}")
        return value

    def seconds(self, key: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise self.error(f"{key} must be a number of seconds above 0, not {value!r}")
        return float(value)

    def positive(self, key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.error(f"{key} must be a whole number of at least 1, not {value!r}")
        return value

    def choice(self, key: str, value: Any, choices: Sequence[str]) -> Any:
        if value not in choices:
            raise self.error(f"{key} must be one of {', '.join(choices)}, not {value!r}")
        return value

    def list_of(self, key: str, value: Any, min_len: int = 0) -> list[Any]:
        if not isinstance(value, list) or len(value) < min_len:
            raise self.error(f"{key} must be a list" + (" (not empty)" if min_len else ""))
        return value

    def table(self, key: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(f"{key} must be a table")
        return value

    def worker_key(self, key: Any) -> int:
        """An ``expect_by_workers`` key (a TOML key is a string) as a worker count."""
        try:
            return int(key)
        except (TypeError, ValueError):
            raise self.error(f"expect_by_workers: key {key!r} is not a worker count") from None

    def app(self, value: Any) -> str:
        module, sep, attr = self.string("app", value).partition(":")
        if not sep or not module or not attr:
            raise self.error(f"app must be MODULE:CALLABLE, not {value!r}")
        return str(value)

    def command(self, value: Any) -> tuple[str, ...]:
        """A command line: a string split as a shell would, or a list of strings."""
        if isinstance(value, str):
            try:
                return tuple(shlex.split(value))
            except ValueError as exc:
                raise self.error(f"command: cannot split it as a shell would: {exc}") from None
        return tuple(self.string("command", a) for a in self.list_of("command", value))

    def path(self, value: Any) -> str:
        """An absolute request target as it goes on the wire: printable ASCII, no spaces."""
        text = self.string("path", value)
        if not text.startswith("/") or any(c.isspace() for c in text):
            raise self.error(f"path must be an absolute URL path such as /api/, not {value!r}")
        bad = next((c for c in text if not "!" <= c <= "~"), None)
        if bad is not None:
            encoded = quote(text, safe=_URL_SAFE)
            raise self.error(
                f"path {value!r} has the character {bad!r}: a URL path is printable ASCII, "
                f"percent-encode the rest (such as {encoded})"
            )
        if _BAD_PERCENT.search(text):
            raise self.error(f"path {value!r}: '%' must start an escape such as %2F")
        return text


def worker_fields(data: dict[str, Any], v: Validator) -> dict[str, Any]:
    """The worker class, and what runs in one worker at once: gthread's threads, or an async
    class's concurrency (kept in ``threads``, which the traffic and the evidence read)."""
    worker_class = ""
    if data.get("worker_class"):
        worker_class = v.choice("worker_class", data["worker_class"], WORKER_CLASSES)
    threads = v.positive("threads", data.get("threads", 1))
    concurrency = v.positive("concurrency", data.get("concurrency", DEFAULT_CONCURRENCY))
    if worker_class in ASYNC_CLASSES:
        if threads > 1:
            raise v.error(
                f"worker_class {worker_class}: an async worker has no threads; give concurrency"
            )
        return dict(worker_class=worker_class, threads=concurrency)
    if "concurrency" in data:
        raise v.error(
            "concurrency is for an async worker_class (asgi, uvicorn); gthread has threads"
        )
    if worker_class == "sync" and threads > 1:
        raise v.error("worker_class sync serves one request at a time: threads > 1 needs gthread")
    return dict(worker_class=worker_class, threads=threads)
