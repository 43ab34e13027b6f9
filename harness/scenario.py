"""Scenarios: what to prove, loaded from TOML files and command-line overrides.

A scenario file holds the keys of :data:`FIELDS` (and an ``[env]`` and ``[expect_by_workers]``
table); command-line flags are the same keys and override the file's values (``env`` is merged).
Every value is checked here, once, so that a bad file or flag is one clear line.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness.checker import Claim, Window
from harness.errors import RateError, ScenarioError
from harness.rates import Rate, parse_rate

Expectation = Literal["exact", "violation"]
EXPECTATIONS: tuple[Expectation, ...] = ("exact", "violation")
WINDOWS: tuple[Window, ...] = ("sliding", "fixed")
TRAFFIC_SHAPES = ("burst", "sequential")
FIELDS = (
    "name", "description", "app", "pythonpath", "env", "path", "rate", "window", "workers",
    "threads", "requests", "traffic", "expect", "expect_by_workers", "min_workers_seen",
    "gunicorn_args", "port",
)
REQUESTS_PER_LIMIT = 4  # default burst size: four times the limit, so that over-admission shows


@dataclass(frozen=True)
class Scenario:
    name: str
    app: str
    rate: Rate
    path: str = "/"
    description: str = ""
    pythonpath: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    window: Window = "sliding"
    workers: tuple[int, ...] = (1, 2, 4)
    threads: int = 1
    requests: int = 0  # 0: REQUESTS_PER_LIMIT x the limit
    traffic: str = "burst"
    expect: Expectation = "exact"
    expect_by_workers: Mapping[int, Expectation] = field(default_factory=dict)
    min_workers_seen: int | None = None
    gunicorn_args: tuple[str, ...] = ()
    port: int | None = None

    @property
    def request_count(self) -> int:
        return self.requests or REQUESTS_PER_LIMIT * self.rate.limit

    def expectation(self, workers: int) -> Expectation:
        return self.expect_by_workers.get(workers, self.expect)

    def claim(self, workers: int) -> Claim:
        return Claim(
            limit=self.rate.limit, period_s=self.rate.period_s, workers=workers,
            window=self.window, min_workers_seen=self.min_workers_seen,
        )


def load_scenarios(paths: Sequence[Path], overrides: Mapping[str, Any]) -> list[Scenario]:
    """One scenario per file, each with ``overrides`` applied; or one from ``overrides`` alone."""
    if not paths:
        return [build_scenario(dict(overrides), source="command line", base_dir=Path.cwd())]
    scenarios = []
    for path in paths:
        data = _read_toml(path)
        data.setdefault("name", path.stem)
        merged = {**data, **overrides}
        merged["env"] = {**data.get("env", {}), **overrides.get("env", {})}
        scenarios.append(build_scenario(merged, source=str(path), base_dir=path.parent))
    return scenarios


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such scenario file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: malformed TOML: {exc}") from None
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None


def build_scenario(data: dict[str, Any], source: str, base_dir: Path) -> Scenario:
    """Validate ``data`` (scenario keys) into a :class:`Scenario`; ``source`` names it in errors."""
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise ScenarioError(
            f"{source}: unknown key {unknown[0]!r} (known keys: {', '.join(FIELDS)})"
        )
    v = _Validator(source)
    for key in ("app", "rate"):
        if data.get(key) in (None, ""):
            hint = "--app MODULE:CALLABLE" if key == "app" else "--rate N/PERIOD"
            raise ScenarioError(f"{source}: no {key!r} given (in the file or as {hint})")
    try:
        rate = parse_rate(v.string("rate", data["rate"]))
    except RateError as exc:
        raise v.error(exc.message) from None
    workers = data.get("workers", [1, 2, 4])
    workers = [workers] if isinstance(workers, int) else workers
    expect_by = v.table("expect_by_workers", data.get("expect_by_workers", {}))
    return Scenario(
        name=v.string("name", data.get("name", "command-line")),
        description=v.string("description", data.get("description", "")),
        app=v.app(data["app"]),
        rate=rate,
        path=v.path(data.get("path", "/")),
        pythonpath=tuple(
            str((base_dir / v.string("pythonpath", p)).resolve())
            for p in v.list_of("pythonpath", data.get("pythonpath", []))
        ),
        env={v.string("env", k): v.scalar_text(f"env.{k}", val)
             for k, val in v.table("env", data.get("env", {})).items()},
        window=v.choice("window", data.get("window", "sliding"), WINDOWS),
        workers=tuple(v.positive("workers", w) for w in v.list_of("workers", workers, min_len=1)),
        threads=v.positive("threads", data.get("threads", 1)),
        requests=v.positive("requests", data["requests"]) if "requests" in data else 0,
        traffic=v.choice("traffic", data.get("traffic", "burst"), TRAFFIC_SHAPES),
        expect=v.choice("expect", data.get("expect", "exact"), EXPECTATIONS),
        expect_by_workers={
            v.positive("expect_by_workers key", _int_key(k, v)): v.choice(
                f"expect_by_workers.{k}", e, EXPECTATIONS
            )
            for k, e in expect_by.items()
        },
        min_workers_seen=(
            v.positive("min_workers_seen", data["min_workers_seen"])
            if data.get("min_workers_seen") is not None else None
        ),
        gunicorn_args=tuple(
            v.string("gunicorn_args", a)
            for a in v.list_of("gunicorn_args", data.get("gunicorn_args", []))
        ),
        port=v.positive("port", data["port"]) if data.get("port") is not None else None,
    )


def _int_key(key: Any, v: _Validator) -> int:
    try:
        return int(key)
    except (TypeError, ValueError):
        raise v.error(f"expect_by_workers: key {key!r} is not a worker count") from None


class _Validator:
    """Type checks that raise :class:`ScenarioError` naming the source and the key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, message: str) -> ScenarioError:
        return ScenarioError(f"{self.source}: {message}")

    def string(self, key: str, value: Any) -> str:
        if not isinstance(value, str):
            raise self.error(f"{key} must be a string, not {value!r}")
        return value

    def scalar_text(self, key: str, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.error(f"{key} must be a string or number, not {value!r}")
        return str(value)

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

    def app(self, value: Any) -> str:
        module, sep, attr = self.string("app", value).partition(":")
        if not sep or not module or not attr:
            raise self.error(f"app must be MODULE:CALLABLE, not {value!r}")
        return str(value)

    def path(self, value: Any) -> str:
        text = self.string("path", value)
        if not text.startswith("/") or any(c.isspace() for c in text):
            raise self.error(f"path must be an absolute URL path such as /api/, not {value!r}")
        return text
