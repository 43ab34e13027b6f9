"""Runs scenarios: for each run, a clean Redis namespace, a fresh fleet, its bursts, a verdict.

Data flows one way: scenarios in, :class:`RunResult` records out (to an observer as they
happen, and in the returned :class:`MatrixReport`). Reports render results; they never decide.
What a run sends to its fleet is :func:`harness.bursts.send_bursts`'s business.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from harness.bursts import client_addresses, identity_values, send_bursts
from harness.checker import Burst, Verdict, judge
from harness.errors import HarnessError
from harness.fleet import FleetSpec, gunicorn_fleet, ignored_user_config
from harness.providers import RedisServer
from harness.providers.base import glob_escape
from harness.redis_state import RedisState, snapshot
from harness.request_template import RequestTemplate, Statuses
from harness.resources import ensure_fd_budget
from harness.scenario import Expectation, Scenario
from harness.traffic.burst import connections_for
from harness.versions import software_versions

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

    @property
    def as_expected(self) -> bool:
        return self.verdict.kind == VERDICT_FOR[self.expect]

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


def run_matrix(
    scenarios: Sequence[Scenario], redis: RedisServer, observer: Observer, report: MatrixReport
) -> MatrixReport:
    """Run every scenario at every worker count against ``redis``, filling ``report`` as runs
    finish. Errors propagate (after cleanup) with ``report`` holding the runs done so far."""
    session = secrets.token_hex(4)
    addresses = client_addresses()
    report.redis = redis
    report.notes += [
        f"{found} is ignored: the harness owns gunicorn's configuration (use gunicorn_args)"
        for found in ignored_user_config()
    ]
    observer.matrix_started(sum(len(s.workers) for s in scenarios), redis)
    for scenario in scenarios:
        values = identity_values(scenario)  # never the same value twice for a scenario
        for workers in scenario.workers:
            observer.run_started(scenario, workers)
            prefix = f"throttle-harness:{session}:{len(report.runs) + 1}:"
            result = _one_run(scenario, workers, redis, prefix, addresses, values)
            report.runs.append(result)
            observer.run_finished(result)
    return report


def _one_run(
    scenario: Scenario, workers: int, redis: RedisServer, prefix: str,
    addresses: Iterator[str], values: Iterator[list[str]],
) -> RunResult:
    """One fleet, several bursts. The run has its own key prefix and each burst its own client
    address (a fresh throttle identity even in a Redis the harness may not flush, whatever the
    app's keys look like)."""
    connections = connections_for(scenario.request_count * scenario.identities)
    ensure_fd_budget(connections)
    redis.clear(prefix)
    spec = FleetSpec(
        app=scenario.app,
        workers=workers,
        threads=scenario.threads,
        pythonpath=scenario.pythonpath,
        env={
            **scenario.env,
            "REDIS_URL": redis.url,
            "THROTTLE_HARNESS_KEY_PREFIX": prefix,
            "THROTTLE_HARNESS_RATE": scenario.rate.text,
        },
        port=scenario.port,
        gunicorn_args=scenario.gunicorn_args,
        connections=connections,
    )
    claim = scenario.claim(workers)
    try:
        with gunicorn_fleet(spec) as fleet:
            started = time.monotonic()
            bursts = send_bursts(fleet, scenario, claim, addresses, values)
            traffic_s = time.monotonic() - started
        # A Redis the harness started holds this run's keys only; any other, those it prefixed.
        pattern = scenario.redis_keys or ("*" if redis.owned else glob_escape(prefix) + "*")
        with redis.client() as client:
            state = snapshot(client, pattern, scenario.rate.period_s)
    finally:
        redis.clear(prefix)
    return RunResult(
        scenario=scenario.name,
        workers=workers,
        threads=scenario.threads,
        expect=scenario.expectation(workers),
        verdict=judge(bursts, claim),
        requests=scenario.request_count,
        rate=scenario.rate.text,
        limit=scenario.rate.limit,
        period_s=scenario.rate.period_s,
        window=scenario.window,
        request=scenario.request,
        statuses=scenario.statuses,
        identities=tuple(b.identity for b in bursts),
        ready_s=fleet.ready_s,
        traffic_s=traffic_s,
        redis_state=state,
        bursts=tuple(bursts),
    )
