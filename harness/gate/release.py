"""The release gate: the before/after check of a worker-count change, in one command.

For each shape (``WORKERSxTHREADS``, or ``WORKERSxCONCURRENCY`` for an async worker class;
``@M`` for M instances): the throttle verdict as ``run``
gives it (:func:`harness.runner.run_matrix`; anything but a pass blocks the change), then a
load phase on a fresh fleet of that shape (:func:`harness.gate.load.run_load`) metered for CPU,
memory and Redis (:mod:`harness.fleet.usage`). The last shape is compared with the first
against the budgets (:mod:`harness.gate.budgets`).
"""

from __future__ import annotations

import contextlib
import math
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from harness.campaign.identities import values_for_run
from harness.errors import HarnessError, UsageError
from harness.fleet import start_fleet
from harness.fleet.usage import RedisLoad, Usage
from harness.gate.budgets import Budget, BudgetCheck, check
from harness.gate.load import LoadResult, run_load
from harness.redaction import masked_batches
from harness.redis.providers import RedisServer
from harness.runner import MatrixReport, Observer, RunResult, fleet_spec, run_matrix
from harness.scenario import Scenario

DEFAULT_DURATION_S = 10.0
WARMUP_S = 1.0
_SHAPE = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*(?:@\s*(\d+))?\s*$")


@dataclass(frozen=True)
class Shape:
    """WORKERSxTHREADS (WORKERSxCONCURRENCY for an async worker class), on ``instances``
    gunicorn servers (None: as many as the scenario's)."""

    workers: int
    threads: int
    instances: int | None = None

    @property
    def text(self) -> str:
        return f"{self.workers}x{self.threads}" + (
            f"@{self.instances}" if self.instances and self.instances > 1 else ""
        )

    @property
    def capacity(self) -> int:
        return self.workers * self.threads * (self.instances or 1)

    def resolved(self, scenario: Scenario) -> Shape:
        return replace(self, instances=self.instances or scenario.instances)

    def applied(self, scenario: Scenario) -> Scenario:
        """``scenario`` at this shape, expected exact: a gate lets through only a throttle
        proven to hold (a scenario's ``violation`` expectations are for known-bad controls).
        For an async worker class the shape's second number is its concurrency."""
        if scenario.worker_class == "sync" and self.threads > 1:
            raise UsageError(
                f"shape {self.text}: worker_class sync serves one request at a time "
                f"({self.workers}x1, or gthread for threads)"
            )
        return replace(
            scenario,
            workers=(self.workers,),
            threads=self.threads,
            instances=self.instances or scenario.instances,
            expect="exact",
            expect_by_workers={},
        )


def parse_shape(text: str) -> Shape:
    """``2x2`` or ``2x2@3``; UsageError otherwise."""
    m = _SHAPE.match(text)
    if not m or int(m[1]) < 1 or int(m[2]) < 1 or (m[3] is not None and int(m[3]) < 1):
        raise UsageError(
            f"shape {text!r}: expected WORKERSxTHREADS such as 2x2, or 2x2@3 for 3 instances"
        )
    return Shape(int(m[1]), int(m[2]), int(m[3]) if m[3] else None)


@dataclass(frozen=True)
class LoadOptions:
    duration_s: float = DEFAULT_DURATION_S
    connections: int = 0  # 0: four per thread of the largest shape, at least 8
    rate: float | None = None  # a fixed arrival rate (requests/s); None: closed loop
    path: str | None = None  # the endpoint to load; None: the scenario's

    def connections_for(self, shapes: Sequence[Shape]) -> int:
        return self.connections or max(8, 4 * max(s.capacity for s in shapes))


@dataclass(frozen=True)
class ShapeResult:
    shape: Shape
    run: RunResult
    load: LoadResult
    usage: Usage
    redis: RedisLoad

    def metrics(self) -> dict[str, float]:
        """Every metric a budget can name, in its unit (:data:`harness.gate.budgets.METRICS`)."""
        return {
            "throughput": self.load.throughput_rps,
            "p50": self.load.percentile(50) if self.load.latencies_ms else math.nan,
            "p95": self.load.percentile(95) if self.load.latencies_ms else math.nan,
            "p99": self.load.percentile(99) if self.load.latencies_ms else math.nan,
            "errors": 100 * self.load.error_rate,
            "cpu": self.usage.cpu_percent,
            "rss": self.usage.rss_total_mb,
            "rss_worker": self.usage.rss_per_worker_mb,
            "redis_clients": float(self.redis.clients),
            "redis_ops": self.redis.ops_per_s,
        }


@dataclass
class GateReport:
    shapes: list[Shape] = field(default_factory=list)
    budgets: list[Budget] = field(default_factory=list)
    options: LoadOptions = field(default_factory=LoadOptions)
    results: list[ShapeResult] = field(default_factory=list)
    checks: list[BudgetCheck] = field(default_factory=list)
    matrix: MatrixReport = field(default_factory=MatrixReport)  # the verdict runs

    @property
    def verdicts_ok(self) -> bool:
        return self.matrix.all_as_expected and len(self.matrix.runs) == len(self.shapes)

    @property
    def ok(self) -> bool:
        return (
            self.verdicts_ok
            and len(self.results) == len(self.shapes)
            and all(c.ok for c in self.checks)
        )


def run_gate(
    scenario: Scenario, redis: RedisServer, observer: Observer, report: GateReport
) -> GateReport:
    """Fill ``report`` (its shapes, budgets and options set): the verdict of every shape, then
    each one's load phase, then the budget checks. Errors propagate after cleanup, ``report``
    holding what was done. Faults of the scenario apply to the verdict runs, not to the load
    phases."""
    report.shapes = [s.resolved(scenario) for s in report.shapes]
    shaped = [s.applied(scenario) for s in report.shapes]
    run_matrix(shaped, redis, observer, report.matrix)
    connections = report.options.connections_for(report.shapes)
    session = secrets.token_hex(4)
    for shape, scen, run in zip(report.shapes, shaped, report.matrix.runs, strict=True):
        load, usage, rload = _load_phase(
            scen,
            redis,
            report.options,
            connections,
            f"throttle-harness:gate-{session}:{shape.text}:",
        )
        report.results.append(ShapeResult(shape, run, load, usage, rload))
        refused = sum(n for status, n in load.statuses.items() if scen.statuses.refused(status))
        if load.completed and refused > load.completed / 2:
            report.matrix.notes.append(
                f"{100 * refused / load.completed:.0f}% of the load at {shape.text} was refused "
                "by the throttle: it measures the refusal path (use --load-path for an "
                "endpoint the throttle leaves alone)"
            )
    before, after = report.results[0].metrics(), report.results[-1].metrics()
    report.checks = [check(b, before[b.metric], after[b.metric]) for b in report.budgets]
    return report


def _load_phase(
    scenario: Scenario, redis: RedisServer, options: LoadOptions, connections: int, prefix: str
) -> tuple[LoadResult, Usage, RedisLoad]:
    """A fresh fleet of the scenario's shape, warmed up, then loaded and metered."""
    redis.clear(prefix)
    spec = fleet_spec(scenario, scenario.workers[0], redis.url, prefix, connections)
    (value,) = next(masked_batches(values_for_run(scenario, per_batch=1)))  # one no run used
    template = scenario.request
    request = replace(template, path=options.path or template.path).render(value)
    try:
        with start_fleet(spec) as fleet:
            endpoints = [(fleet.host, port) for port in fleet.ports]
            run_load(
                endpoints,
                request,
                duration_s=WARMUP_S,
                connections=connections,
                rate=options.rate,
                warmup_s=0,
            )
            with fleet.metered(redis.url) as meter:
                load = run_load(
                    endpoints,
                    request,
                    duration_s=options.duration_s,
                    connections=connections,
                    rate=options.rate,
                    warmup_s=0,
                )
                usage, rload = meter.stop()
    except BaseException:
        with contextlib.suppress(HarnessError):  # the first error is the one to tell
            redis.clear(prefix)
        raise
    redis.clear(prefix)
    return load, usage, rload
