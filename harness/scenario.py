"""Scenarios: what to prove, loaded from TOML files and command-line overrides.

A scenario file holds the keys of :data:`FIELDS` (and an ``[env]`` and ``[expect_by_workers]``
table); command-line flags are the same keys and override the file's values (``env`` is merged).
Every value is checked here, once (the checks in :mod:`harness.scenario_rules`), so that a bad
file or flag is one clear line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

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
    read_identities,
)
from harness.scenario_rules import MAX_PORT, Validator, parse_pace, read_toml, worker_fields
from harness.verdict import Claim
from harness.verdict.global_budget import SCOPES, Scope
from harness.verdict.rates import Rate, parse_rate
from harness.verdict.windows import WINDOW_NAMES, recovery_periods

Expectation = Literal["exact", "violation"]
EXPECTATIONS: tuple[Expectation, ...] = ("exact", "violation")
WINDOWS: tuple[str, ...] = WINDOW_NAMES  # "any" (the default) first
TRAFFIC_SHAPES = ("burst", "sequential", "sustained")
FIELDS = (
    "name",
    "description",
    "app",
    "image",
    "command",
    "compose",
    "service",
    "pythonpath",
    "env",
    "path",
    "rate",
    "window",
    "scope",
    "workers",
    "threads",
    "worker_class",
    "concurrency",
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
SUSTAINED_HEADROOM = 1.2  # sustained traffic's duration, with this margin, must fit the timeout


@dataclass(frozen=True)
class Scenario:
    name: str
    app: str  # "" with an image: the app its command names
    rate: Rate
    path: str = "/"
    description: str = ""
    pythonpath: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    window: str = "any"
    scope: Scope = "client"  # "global": one budget for every client (harness.verdict.global_budget)
    workers: tuple[int, ...] = (1, 2, 4)
    threads: int = 1  # per worker: gthread's threads, or an async worker's concurrency
    worker_class: str = ""  # sync, gthread, asgi, uvicorn ("": gthread when threads > 1, else sync)
    requests: int = 0  # 0: REQUESTS_PER_LIMIT x the limit
    traffic: str = "burst"
    pace: float = DEFAULT_PACE  # sustained: a multiple of the rate
    periods: int = DEFAULT_PERIODS  # sustained: for how many periods
    expect: Expectation = "exact"
    expect_by_workers: Mapping[int, Expectation] = field(default_factory=dict)
    min_workers_seen: int | None = None
    gunicorn_args: tuple[str, ...] = ()
    image: str = ""  # gunicorn in containers of this image (else local processes)
    command: tuple[str, ...] = ()  # the image's gunicorn command, when not its own
    compose: str = ""  # a compose file (absolute): its service's containers are the fleet
    service: str = ""  # the compose file's service that runs gunicorn
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


def load_scenarios(paths: Sequence[Path], overrides: Mapping[str, Any]) -> list[Scenario]:
    """One scenario per file, each with ``overrides`` applied; or one from ``overrides`` alone."""
    if not paths:
        return [build_scenario(dict(overrides), source="command line", base_dir=Path.cwd())]
    scenarios = []
    for path in paths:
        data = read_toml(path)
        data.setdefault("name", path.stem)
        merged = {**data, **overrides}
        merged["env"] = {**data.get("env", {}), **overrides.get("env", {})}
        scenarios.append(build_scenario(merged, source=str(path), base_dir=path.parent))
    return scenarios


def build_scenario(data: dict[str, Any], source: str, base_dir: Path) -> Scenario:
    """Validate ``data`` (scenario keys) into a :class:`Scenario`; ``source`` names it in errors."""
    _check_keys(data, source)
    v = Validator(source)
    given = _given(data, v)
    scenario = Scenario(
        **_app_fields(data, v, base_dir, given),
        **_run_fields(data, v, given),
        **_request_fields(data, v, base_dir, given),
    )
    _check_combinations(scenario, v)
    return scenario


def _check_keys(data: dict[str, Any], source: str) -> None:
    """No unknown key, and the two keys every scenario needs."""
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise ScenarioError(
            f"{source}: unknown key {unknown[0]!r} (known keys: {', '.join(FIELDS)})"
        )
    for key in ("app", "rate"):
        if key == "app" and (data.get("image") or data.get("compose")):
            continue  # the image's command may name it
        if data.get(key) in (None, ""):
            hint = "--app MODULE:CALLABLE" if key == "app" else "--rate N/PERIOD"
            raise ScenarioError(f"{source}: no {key!r} given (in the file or as {hint})")


@dataclass(frozen=True)
class _Given:
    """The values checked first (so their errors come first), that other fields build on."""

    rate: Rate
    workers: list[Any]
    expect_by: dict[str, Any]
    identities: int
    accept: frozenset[int]
    reject: frozenset[int]


def _given(data: dict[str, Any], v: Validator) -> _Given:
    """The rate, the worker counts' list, ``expect_by_workers``, identities and statuses."""
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
    return _Given(rate, workers, expect_by, identities, accept, reject)


def _app_fields(
    data: dict[str, Any], v: Validator, base_dir: Path, given: _Given
) -> dict[str, Any]:
    """The scenario's name, the app under test, its rate, path and environment."""
    return dict(
        name=v.string("name", data.get("name", "command-line")),
        description=v.string("description", data.get("description", "")),
        app=v.app(data["app"]) if data.get("app") not in (None, "") else "",
        image=v.string("image", data.get("image", "")),
        command=v.command(data.get("command", [])),
        compose=(
            str((base_dir / v.string("compose", data["compose"])).resolve())
            if data.get("compose")
            else ""
        ),
        service=v.string("service", data.get("service", "")),
        rate=given.rate,
        path=v.path(data.get("path", "/")),
        pythonpath=tuple(
            str((base_dir / v.string("pythonpath", p)).resolve())
            for p in v.list_of("pythonpath", data.get("pythonpath", []))
        ),
        env=v.env(v.table("env", data.get("env", {}))),
    )


def _run_fields(data: dict[str, Any], v: Validator, given: _Given) -> dict[str, Any]:
    """The limit's window and scope, the server's shape, the traffic and the expectations."""
    workers = given.workers
    return dict(
        window=v.choice("window", data.get("window", "any"), WINDOWS),
        scope=v.choice("scope", data.get("scope", "client"), SCOPES),
        workers=tuple(v.positive("workers", w) for w in v.list_of("workers", workers, min_len=1)),
        **worker_fields(data, v),
        requests=v.positive("requests", data["requests"]) if "requests" in data else 0,
        traffic=v.choice("traffic", data.get("traffic", "burst"), TRAFFIC_SHAPES),
        pace=v.parsed("pace", parse_pace, data.get("pace", DEFAULT_PACE)),
        periods=v.positive("periods", data.get("periods", DEFAULT_PERIODS)),
        expect=v.choice("expect", data.get("expect", "exact"), EXPECTATIONS),
        expect_by_workers={
            v.positive("expect_by_workers key", v.worker_key(k)): v.choice(
                f"expect_by_workers.{k}", e, EXPECTATIONS
            )
            for k, e in given.expect_by.items()
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
    )


def _request_fields(
    data: dict[str, Any], v: Validator, base_dir: Path, given: _Given
) -> dict[str, Any]:
    """The request, its statuses and identities, the instances and the faults."""
    return dict(
        method=v.parsed("method", parse_method, v.string("method", data.get("method", "GET"))),
        headers=tuple(
            v.parsed("headers", parse_header, v.string("headers", h))
            for h in v.list_of("headers", data.get("headers", []))
        ),
        data=v.parsed(
            "data", lambda t: parse_body(t, base_dir), v.string("data", data.get("data", ""))
        ),
        statuses=v.parsed(
            "statuses", lambda pair: checked_statuses(*pair), (given.accept, given.reject)
        ),
        bypass_check=v.boolean("bypass_check", data.get("bypass_check", False)),
        warm_up=v.boolean("warm_up", data.get("warm_up", False)),
        redis_keys=v.string("redis_keys", data.get("redis_keys", "")),
        identities=given.identities,
        identity_values=v.parsed(
            "identity_file",
            lambda t: read_identities(t, base_dir, given.identities),
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


def _check_combinations(scenario: Scenario, v: Validator) -> None:
    """What valid values cannot be combined into: ports, faults, scope and identities."""
    if scenario.port is not None and scenario.port + scenario.instances - 1 > MAX_PORT:
        raise v.error(
            f"port {scenario.port} with {scenario.instances} instances needs ports "
            f"up to {scenario.port + scenario.instances - 1}, past {MAX_PORT}"
        )
    _check_containers(scenario, v)
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


def _check_containers(scenario: Scenario, v: Validator) -> None:
    """An image, or a compose file's service, runs the app: what goes with them."""
    if scenario.image and scenario.compose:
        raise v.error("image and compose: one or the other (the compose file names its image)")
    if scenario.compose and not Path(scenario.compose).is_file():
        raise v.error(f"compose: no such file: {scenario.compose}")
    if bool(scenario.compose) != bool(scenario.service):
        raise v.error("compose and service go together: the file, and its service running gunicorn")
    if (scenario.image or scenario.compose) and scenario.pythonpath:
        raise v.error("pythonpath is for local processes: with an image, the image holds the app")
    if scenario.command and not (scenario.image or scenario.compose):
        raise v.error("command is an image's gunicorn command: it needs image or compose")


def _check_global(scenario: Scenario, v: Validator) -> None:
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
    return Validator(source).path(value)
