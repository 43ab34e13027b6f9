"""Scenarios: what to prove, loaded from TOML files and command-line overrides.

A scenario file holds the keys of :data:`FIELDS` (and an ``[env]`` and ``[expect_by_workers]``
table); command-line flags are the same keys and override the file's values (``env`` is merged).
Every value is checked here, once, so that a bad file or flag is one clear line.
"""

from __future__ import annotations

import functools
import importlib
import re
import shlex
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote

from harness.errors import RateError, ScenarioError
from harness.faults import OUTAGE_EXPECTATIONS, FaultSpec, parse_fault
from harness.http.request_template import (
    PLACEHOLDER,
    RequestTemplate,
    Statuses,
    checked_statuses,
    checked_template,
    parse_body,
    parse_header,
    parse_method,
    parse_statuses,
    read_identities,
)
from harness.verdict import Claim
from harness.verdict.global_budget import SCOPES, Scope
from harness.verdict.rates import Rate, parse_rate
from harness.verdict.windows import WINDOW_NAMES, recovery_periods

T = TypeVar("T")
Expectation = Literal["exact", "violation"]
EXPECTATIONS: tuple[Expectation, ...] = ("exact", "violation")
WINDOWS: tuple[str, ...] = WINDOW_NAMES  # "any" (the default) first
TRAFFIC_SHAPES = ("burst", "sequential", "sustained")
FIELDS = (
    "name",
    "description",
    "app",
    "pythonpath",
    "env",
    "path",
    "rate",
    "window",
    "scope",
    "workers",
    "threads",
    "requests",
    "traffic",
    "pace",
    "periods",
    "expect",
    "expect_by_workers",
    "min_workers_seen",
    "gunicorn_args",
    "port",
    "bursts",
    "timeout",
    "method",
    "headers",
    "data",
    "accept_status",
    "reject_status",
    "bypass_check",
    "warm_up",
    "redis_keys",
    "identities",
    "identity_file",
    "instances",
    "faults",
    "expect_outage",
)
REQUESTS_PER_LIMIT = 4  # default burst size: four times the limit, so that over-admission shows
DEFAULT_BURSTS = 3  # bursts per run, each from a fresh client address
DEFAULT_TIMEOUT_S = 120.0  # a run's traffic ends by then, whatever the server does
DEFAULT_PACE = 2.0  # sustained traffic: each client sends at this multiple of the rate
DEFAULT_PERIODS = 3  # sustained traffic: for this many periods
MAX_PACE = 100.0
SUSTAINED_HEADROOM = 1.2  # sustained traffic's duration, with this margin, must fit the timeout
MAX_PORT = 65535
_URL_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))  # printable ASCII, space excluded
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class Scenario:
    name: str
    app: str
    rate: Rate
    path: str = "/"
    description: str = ""
    pythonpath: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    window: str = "any"
    scope: Scope = "client"  # "global": one budget for every client (harness.verdict.global_budget)
    workers: tuple[int, ...] = (1, 2, 4)
    threads: int = 1
    requests: int = 0  # 0: REQUESTS_PER_LIMIT x the limit
    traffic: str = "burst"
    pace: float = DEFAULT_PACE  # sustained: a multiple of the rate
    periods: int = DEFAULT_PERIODS  # sustained: for how many periods
    expect: Expectation = "exact"
    expect_by_workers: Mapping[int, Expectation] = field(default_factory=dict)
    min_workers_seen: int | None = None
    gunicorn_args: tuple[str, ...] = ()
    port: int | None = None
    bursts: int = DEFAULT_BURSTS
    timeout_s: float = DEFAULT_TIMEOUT_S
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    data: str = ""
    statuses: Statuses = field(default_factory=Statuses)
    bypass_check: bool = False
    warm_up: bool = False  # every thread runs the run's request once before the first burst
    redis_keys: str = ""  # a SCAN pattern for the report; "": the run's keys
    identities: int = 1  # clients per burst
    identity_values: tuple[str, ...] = ()  # from an identity file; (): client-TAG-1, ...
    instances: int = 1  # gunicorn servers, each of workers x threads, behind a round robin
    faults: tuple[FaultSpec, ...] = ()
    expect_outage: str | None = None  # "open" or "closed": what redis-outage must show

    @property
    def request(self) -> RequestTemplate:
        return RequestTemplate(self.method, self.path, self.headers, self.data)

    @property
    def request_count(self) -> int:
        return self.requests or REQUESTS_PER_LIMIT * self.rate.limit

    def expectation(self, workers: int) -> Expectation:
        return self.expect_by_workers.get(workers, self.expect)

    def claim(self, workers: int) -> Claim:
        """What a run with ``workers`` per instance must show (the workers of every instance
        count)."""
        return Claim(
            limit=self.rate.limit,
            period_s=self.rate.period_s,
            workers=workers * self.instances,
            threads=self.threads,
            window=self.window,
            min_workers_seen=self.min_workers_seen,
            statuses=self.statuses,
            sustained=self.traffic == "sustained" and self.sustained_fits,
            note=self.sustained_note or self.global_note,
            scope=self.scope,
        )

    @property
    def global_note(self) -> str:
        """What a global limit's run tests when its budget is not forgotten within the run's
        timeout: one burst (a burst's clients pooled), crossed once."""
        forgotten_s = self.rate.period_s * recovery_periods(self.window)
        if self.scope != "global" or forgotten_s * 2 < self.timeout_s:
            return ""
        return (
            f"one budget for every client, forgotten {forgotten_s:g}s after its last request, "
            f"past the run's {self.timeout_s:g}s timeout: one burst crossed it"
        )

    @property
    def sustained_s(self) -> float:
        """How long sustained traffic sends: ``periods`` periods."""
        return self.periods * self.rate.period_s

    @property
    def sustained_fits(self) -> bool:
        """Whether sustained traffic ends well inside the run's timeout."""
        return self.sustained_s * SUSTAINED_HEADROOM <= self.timeout_s

    @property
    def sustained_note(self) -> str:
        """What is tested instead when sustained traffic would outlast the run's timeout."""
        if self.traffic != "sustained" or self.sustained_fits:
            return ""
        return (
            f"sustained traffic for {self.periods} periods of {self.rate.period_s:g}s would "
            f"outlast the run's {self.timeout_s:g}s timeout: bursts were sent instead (raise "
            "--timeout, or lower --periods)"
        )


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
    except IsADirectoryError:
        raise ScenarioError(f"{path}: is a directory, not a scenario file") from None
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    except ValueError:  # a NUL in the path
        raise ScenarioError(f"{str(path)!r}: not a valid file name") from None


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
    identities = v.positive("identities", data.get("identities", 1))
    accept = v.statuses("accept_status", data.get("accept_status")) or frozenset()
    reject = v.statuses("reject_status", data.get("reject_status")) or frozenset({429})
    scenario = Scenario(
        name=v.string("name", data.get("name", "command-line")),
        description=v.string("description", data.get("description", "")),
        app=v.app(data["app"]),
        rate=rate,
        path=v.path(data.get("path", "/")),
        pythonpath=tuple(
            str((base_dir / v.string("pythonpath", p)).resolve())
            for p in v.list_of("pythonpath", data.get("pythonpath", []))
        ),
        env=v.env(v.table("env", data.get("env", {}))),
        window=v.choice("window", data.get("window", "any"), WINDOWS),
        scope=v.choice("scope", data.get("scope", "client"), SCOPES),
        workers=tuple(v.positive("workers", w) for w in v.list_of("workers", workers, min_len=1)),
        threads=v.positive("threads", data.get("threads", 1)),
        requests=v.positive("requests", data["requests"]) if "requests" in data else 0,
        traffic=v.choice("traffic", data.get("traffic", "burst"), TRAFFIC_SHAPES),
        pace=v.parsed("pace", parse_pace, data.get("pace", DEFAULT_PACE)),
        periods=v.positive("periods", data.get("periods", DEFAULT_PERIODS)),
        expect=v.choice("expect", data.get("expect", "exact"), EXPECTATIONS),
        expect_by_workers={
            v.positive("expect_by_workers key", _int_key(k, v)): v.choice(
                f"expect_by_workers.{k}", e, EXPECTATIONS
            )
            for k, e in expect_by.items()
        },
        min_workers_seen=(
            v.positive("min_workers_seen", data["min_workers_seen"])
            if data.get("min_workers_seen") is not None
            else None
        ),
        gunicorn_args=v.gunicorn_args(data.get("gunicorn_args", [])),
        port=v.port(data["port"]) if data.get("port") is not None else None,
        bursts=v.positive("bursts", data.get("bursts", DEFAULT_BURSTS)),
        timeout_s=v.seconds("timeout", data.get("timeout", DEFAULT_TIMEOUT_S)),
        method=v.parsed("method", parse_method, v.string("method", data.get("method", "GET"))),
        headers=tuple(
            v.parsed("headers", parse_header, v.string("headers", h))
            for h in v.list_of("headers", data.get("headers", []))
        ),
        data=v.parsed(
            "data", lambda t: parse_body(t, base_dir), v.string("data", data.get("data", ""))
        ),
        statuses=v.parsed("statuses", lambda pair: checked_statuses(*pair), (accept, reject)),
        bypass_check=v.boolean("bypass_check", data.get("bypass_check", False)),
        warm_up=v.boolean("warm_up", data.get("warm_up", False)),
        redis_keys=v.string("redis_keys", data.get("redis_keys", "")),
        identities=identities,
        identity_values=v.parsed(
            "identity_file",
            lambda t: read_identities(t, base_dir, identities),
            v.string("identity_file", data.get("identity_file", "")),
        ),
        instances=v.positive("instances", data.get("instances", 1)),
        faults=tuple(
            v.parsed("faults", parse_fault, v.string("faults", f))
            for f in v.list_of("faults", data.get("faults", []))
        ),
        expect_outage=(
            v.choice("expect_outage", data["expect_outage"], OUTAGE_EXPECTATIONS)
            if data.get("expect_outage") is not None
            else None
        ),
    )
    if scenario.port is not None and scenario.port + scenario.instances - 1 > MAX_PORT:
        raise v.error(
            f"port {scenario.port} with {scenario.instances} instances needs ports "
            f"up to {scenario.port + scenario.instances - 1}, past {MAX_PORT}"
        )
    kinds = [f.kind for f in scenario.faults]
    if len(set(kinds)) < len(kinds):
        raise v.error(f"faults: each fault at most once, not {kinds}")
    if scenario.expect_outage and "redis-outage" not in kinds:
        raise v.error('expect_outage needs the redis-outage fault (faults = ["redis-outage"])')
    if kinds and scenario.traffic == "sustained":
        raise v.error("faults act around bursts: they need traffic burst or sequential")
    if scenario.scope == "global":
        _check_global(scenario, v)
    v.parsed("request", checked_template, scenario.request)
    in_header = any(PLACEHOLDER in value for _, value in scenario.headers)
    if in_header and not all(value.isascii() for value in scenario.identity_values):
        raise v.error("identity_file: a value that goes into a header must be ASCII")
    return scenario


def _check_global(scenario: Scenario, v: _Validator) -> None:
    """What a global limit cannot be combined with: whatever sends on other clients than the
    bursts' (the warm-up, faults' probes) would spend the one budget unseen, and sustained
    traffic judges each client on its own."""
    if scenario.warm_up:
        raise v.error("scope global: warm_up would spend the one budget before the first burst")
    if scenario.faults:
        raise v.error("scope global: faults probe with fresh clients, which share the budget")
    if scenario.traffic == "sustained":
        raise v.error("scope global: sustained traffic judges each client; use burst traffic")


def checked_path(value: Any, source: str) -> str:
    """A request path as a scenario's ``path`` takes it; ScenarioError naming ``source``."""
    return _Validator(source).path(value)


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
        found = _owned_option(args)
        if found is not None:
            arg, setting = found
            option, why = _OWNED[setting]
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

    def app(self, value: Any) -> str:
        module, sep, attr = self.string("app", value).partition(":")
        if not sep or not module or not attr:
            raise self.error(f"app must be MODULE:CALLABLE, not {value!r}")
        return str(value)

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


# gunicorn settings the harness sets itself (or that would take gunicorn out of its hands): the
# option that sets each, and why not. gunicorn's own parser tells every spelling of them.
_OWNED: dict[str, tuple[str, str]] = {
    "bind": ("--bind", "the harness binds gunicorn to 127.0.0.1 on a port of its own (use port)"),
    "workers": ("--workers", "the harness sets the worker count of each run (use workers)"),
    "threads": ("--threads", "the harness sets the threads per worker (use threads)"),
    "worker_class": ("--worker-class", "the harness picks sync or gthread (from threads)"),
    "daemon": ("--daemon", "the harness keeps gunicorn in the foreground to watch and stop it"),
    "config": ("--config", "a config file could bind, reshape or daemonize gunicorn"),
    "pidfile": ("--pid", "the harness tracks gunicorn's process; a pid file would be left behind"),
}
_FALLBACK_OPTIONS: dict[str, tuple[str, bool]] = {  # option string: (setting, takes no value)
    "-b": ("bind", False),
    "--bind": ("bind", False),
    "-w": ("workers", False),
    "--workers": ("workers", False),
    "--threads": ("threads", False),
    "-k": ("worker_class", False),
    "--worker-class": ("worker_class", False),
    "-D": ("daemon", True),
    "--daemon": ("daemon", True),
    "-c": ("config", False),
    "--config": ("config", False),
    "-p": ("pidfile", False),
    "--pid": ("pidfile", False),
}


@functools.cache
def _gunicorn_options() -> dict[str, tuple[str, bool]]:
    """Every gunicorn option string: the setting it sets and whether it takes no value."""
    try:
        config: Any = importlib.import_module("gunicorn.config")
        actions = config.Config().parser()._actions
        options = {opt: (a.dest, a.nargs == 0) for a in actions for opt in a.option_strings}
    except Exception:  # gunicorn's internals moved: the documented spellings still apply
        return _FALLBACK_OPTIONS
    return {**_FALLBACK_OPTIONS, **options}


def _owned_option(args: Sequence[str]) -> tuple[str, str] | None:
    """The first of ``args`` that sets a setting of :data:`_OWNED` and that setting, as
    gunicorn's argparse would read it: ``--bind=x``, an abbreviation such as ``--daem``, a
    short option with its value attached (``-w4``) or after flags (``-RD``)."""
    options = _gunicorn_options()
    long_options = [opt for opt in options if opt.startswith("--")]
    for arg in args:
        if arg == "--":
            break
        if arg.startswith("--"):
            name = arg.partition("=")[0]
            matches = [name] if name in options else [o for o in long_options if o.startswith(name)]
            if len(matches) == 1 and options[matches[0]][0] in _OWNED:
                return arg, options[matches[0]][0]
            continue
        cluster = arg
        while cluster.startswith("-") and len(cluster) >= 2 and cluster[:2] in options:
            setting, flag = options[cluster[:2]]
            if setting in _OWNED:
                return arg, setting
            if not flag:
                break  # the rest is this option's value
            cluster = "-" + cluster[2:]
    return None
