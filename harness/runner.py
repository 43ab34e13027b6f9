"""Runs scenarios: for each run, a clean Redis namespace, a fresh fleet, its bursts, a verdict.

Data flows one way: scenarios in, :class:`RunResult` records out (to an observer as they
happen, and in the returned :class:`MatrixReport`). Reports render results; they never decide.
What a run sends to its fleet is :func:`harness.campaign.bursts.send_bursts`'s business; a run with
faults on Redis gives the app a proxy in front of Redis (:mod:`harness.redis.proxy`).
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import Protocol
from urllib.parse import urlsplit

from harness.campaign.bursts import client_addresses, send_bursts
from harness.campaign.identities import values_for_run
from harness.errors import HarnessError, UsageError
from harness.faults import PROXIED, REDIS_FAULTS, Fault, FaultOutcome, FaultSpec
from harness.faults.make import make_faults
from harness.faults.redis_faults import RedisLatency
from harness.fleet import FleetSpec, ImageInfo, ignored_user_config, start_fleet
from harness.fleet.worker_classes import ASYNC_CLASSES, effective_class
from harness.host.resources import ensure_fd_budget
from harness.host.versions import software_versions
from harness.http.request_template import RequestTemplate, Statuses
from harness.redaction import MASKS, masked_batches
from harness.redis.providers import RedisServer
from harness.redis.providers.base import glob_escape
from harness.redis.proxy import RedisProxy, redis_proxy
from harness.redis.state import RedisState, snapshot
from harness.scenario import Expectation, Scenario
from harness.traffic.burst import connections_for
from harness.verdict import Burst, Verdict, judge

VERDICT_FOR: dict[Expectation, str] = {"exact": "pass", "violation": "fail"}


@dataclass(frozen=True)
class RunResult:
    scenario: str
    workers: int
    threads: int
    expect: Expectation
    verdict: Verdict
    requests: int
    rate: str
    limit: int
    period_s: float
    window: str
    request: RequestTemplate
    statuses: Statuses
    identities: tuple[str, ...]
    ready_s: float
    traffic_s: float
    redis_state: RedisState | None = None
    bursts: tuple[Burst, ...] = ()  # the records and stamps the verdict was judged from
    scope: str = "client"  # whose budget the limit is: each client's, or one "global"
    instances: int = 1
    faults: tuple[FaultOutcome, ...] = ()
    image: ImageInfo | None = None  # the image the fleet ran, for a container fleet
    worker_class: str = "sync"  # gunicorn's: sync, gthread, asgi, uvicorn

    @property
    def as_expected(self) -> bool:
        return self.verdict.kind == VERDICT_FOR[self.expect] and all(
            f.as_expected for f in self.faults
        )

    @property
    def shape(self) -> str:
        """WORKERSxTHREADS, and @INSTANCES when there are several."""
        shape = f"{self.workers}x{self.threads}"
        return shape + (f"@{self.instances}" if self.instances > 1 else "")

    @property
    def shape_and_class(self) -> str:
        """The shape, with an async worker class named (``2x10 asgi``: 10 in flight per worker)."""
        return self.shape + (f" {self.worker_class}" if self.worker_class in ASYNC_CLASSES else "")

    @property
    def identity(self) -> str:
        return self.identities[0] if self.identities else ""


@dataclass
class MatrixReport:
    runs: list[RunResult] = field(default_factory=list)
    redis: RedisServer | None = None
    versions: dict[str, str] = field(default_factory=software_versions)
    error: HarnessError | None = None
    notes: list[str] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)  # wall clock, for the reports

    @property
    def all_as_expected(self) -> bool:
        return self.error is None and all(r.as_expected for r in self.runs)

    def headline(self, exit_code: int) -> str:
        """One line for a report's title: the error, the runs not as expected, or all well."""
        unexpected = sum(not r.as_expected for r in self.runs)
        if self.error:
            return f"error (exit {exit_code}): {self.error.message}"
        if unexpected:
            return f"{unexpected} of {len(self.runs)} runs not as expected (exit {exit_code})"
        return f"{len(self.runs)} runs, every verdict as expected"


class Observer(Protocol):
    def matrix_started(self, total_runs: int, redis: RedisServer) -> None: ...

    def run_started(self, scenario: Scenario, workers: int) -> None: ...

    def run_finished(self, result: RunResult) -> None: ...


class SilentObserver:
    """An observer that shows nothing (the pytest plugin, tests)."""

    def matrix_started(self, total_runs: int, redis: RedisServer) -> None: ...

    def run_started(self, scenario: Scenario, workers: int) -> None: ...

    def run_finished(self, result: RunResult) -> None: ...


def fleet_spec(
    scenario: Scenario, workers: int, redis_url: str, prefix: str, connections: int
) -> FleetSpec:
    """The fleet of one run of ``scenario``: its app, shape and gunicorn arguments, and the
    environment the app is handed (its Redis, its key prefix, and the rate under test in the
    canonical form DRF reads, whatever the user's spelling)."""
    return FleetSpec(
        app=scenario.app,
        workers=workers,
        threads=scenario.threads,
        pythonpath=scenario.pythonpath,
        env={
            **scenario.env,
            "REDIS_URL": redis_url,
            "THROTTLE_HARNESS_KEY_PREFIX": prefix,
            "THROTTLE_HARNESS_RATE": scenario.rate.text,
        },
        port=scenario.port,
        gunicorn_args=scenario.gunicorn_args,
        connections=connections,
        instances=scenario.instances,
        image=scenario.image or None,
        command=scenario.command,
        compose=scenario.compose or None,
        worker_class=scenario.worker_class,
        service=scenario.service or None,
    )


def run_matrix(
    scenarios: Sequence[Scenario], redis: RedisServer, observer: Observer, report: MatrixReport
) -> MatrixReport:
    """Run every scenario at every worker count against ``redis``, filling ``report`` as runs
    finish. Errors propagate (after cleanup) with ``report`` holding the runs done so far."""
    session = secrets.token_hex(4)
    addresses = client_addresses()
    report.redis = redis
    mask_secrets(scenarios, redis)
    if any(not (s.image or s.compose) for s in scenarios):  # a container's config is kept
        report.notes += [
            f"{found} is ignored: the harness owns gunicorn's configuration (use gunicorn_args)"
            for found in ignored_user_config()
        ]
    for scenario in scenarios:
        check_faults_allowed(scenario.faults, scenario.name, redis)
    observer.matrix_started(sum(len(s.workers) for s in scenarios), redis)
    for scenario in scenarios:
        for workers in scenario.workers:
            values = masked_batches(values_for_run(scenario))  # none this session has used
            observer.run_started(scenario, workers)
            prefix = f"throttle-harness:{session}:{len(report.runs) + 1}:"
            result = _one_run(scenario, workers, redis, prefix, addresses, values)
            report.runs.append(result)
            observer.run_finished(result)
    return report


def mask_secrets(scenarios: Sequence[Scenario], redis: RedisServer) -> None:
    """Tell :mod:`harness.redaction` the secrets of a matrix before anything runs: the Redis
    URL's password, the headers' values and the bodies (``{identity}`` values as they are
    drawn, see :func:`~harness.redaction.masked_batches`)."""
    MASKS.url(redis.url)
    for scenario in scenarios:
        MASKS.request([*(value for _, value in scenario.headers), scenario.data])


def check_faults_allowed(faults: Sequence[FaultSpec], scenario: str, redis: RedisServer) -> None:
    """Refuse (exit 2) faults that touch a Redis the harness did not start, or cannot
    restart."""
    kinds = [f.kind for f in faults]
    touching = [k for k in kinds if k in REDIS_FAULTS]
    if touching and not redis.owned:
        raise UsageError(
            f"{scenario}: fault {touching[0]} touches Redis, and the harness never restarts, "
            f"cuts off or slows a Redis it did not start ({redis.provider}); use --redis "
            "embedded, local or docker"
        )
    if "redis-restart" in kinds and redis.restart is None:
        raise UsageError(
            f"{scenario}: fault redis-restart: the {redis.provider} provider "
            "cannot restart its Redis"
        )


def _fault_proxy(
    stack: ExitStack, scenario: Scenario, redis: RedisServer, faults: Sequence[Fault]
) -> RedisProxy | None:
    """The proxy the app reaches Redis through, where a fault needs one (its latency set, and
    measured), kept running by ``stack``; else None."""
    if not any(f.kind in PROXIED for f in scenario.faults):
        return None
    where = urlsplit(redis.url)
    latency = sum(f.latency_ms for f in scenario.faults)
    proxy = stack.enter_context(
        redis_proxy(where.hostname or "127.0.0.1", where.port or 6379, latency_ms=latency)
    )
    for fault in faults:
        if isinstance(fault, RedisLatency):
            fault.measure(redis.url, proxy)
    proxy.mark_harness_done()
    return proxy


def _one_run(
    scenario: Scenario,
    workers: int,
    redis: RedisServer,
    prefix: str,
    addresses: Iterator[str],
    values: Iterator[list[str]],
) -> RunResult:
    """One fleet, several bursts. The run has its own key prefix and each burst its own client
    address (a fresh throttle identity even in a Redis the harness may not flush, whatever the
    app's keys look like)."""
    connections = connections_for(scenario.request_count * scenario.identities)
    ensure_fd_budget(connections)
    redis.clear(prefix)
    spec = fleet_spec(scenario, workers, redis.url, prefix, connections)
    claim = scenario.claim(workers)
    faults = make_faults(scenario.faults, scenario.expect_outage)
    try:
        with ExitStack() as stack:
            proxy = _fault_proxy(stack, scenario, redis, faults)
            if proxy is not None:
                spec = replace(spec, env={**spec.env, "REDIS_URL": proxy.url(redis.url)})
            fleet = stack.enter_context(start_fleet(spec))
            started = time.monotonic()
            bursts = send_bursts(fleet, scenario, claim, addresses, values, faults, redis, proxy)
            traffic_s = time.monotonic() - started
        # A Redis the harness started holds this run's keys only; any other, those it prefixed.
        pattern = scenario.redis_keys or ("*" if redis.owned else glob_escape(prefix) + "*")
        with redis.client() as client:
            state = snapshot(client, pattern, scenario.rate.period_s)
    except BaseException:
        with contextlib.suppress(HarnessError):  # the first error is the one to tell
            redis.clear(prefix)
        raise
    redis.clear(prefix)
    return RunResult(
        scenario=scenario.name,
        workers=workers,
        threads=scenario.threads,
        expect=scenario.expectation(workers * scenario.instances),
        verdict=judge(bursts, claim),
        requests=scenario.request_count,
        rate=scenario.rate.text,
        limit=scenario.rate.limit,
        period_s=scenario.rate.period_s,
        window=scenario.window,
        scope=scenario.scope,
        request=scenario.request,
        statuses=scenario.statuses,
        identities=tuple(b.identity for b in bursts),
        ready_s=fleet.ready_s,
        traffic_s=traffic_s,
        redis_state=state,
        bursts=tuple(bursts),
        instances=scenario.instances,
        faults=tuple(f.outcome() for f in faults),
        image=fleet.image,
        worker_class=effective_class(scenario.worker_class, scenario.threads),
    )
