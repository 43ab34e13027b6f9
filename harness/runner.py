"""Runs scenarios: for each run, a clean Redis namespace, a fresh fleet, bursts, a verdict.

Data flows one way: scenarios in, :class:`RunResult` records out (to an observer as they
happen, and in the returned :class:`MatrixReport`). Reports render results; they never decide.

A run sends several bursts to one fleet, each from a fresh client address (a fresh budget for
throttles keyed on it), so that a race that shows only now and then is caught: the run fails if
any burst proves over-admission. The first burst sends the scenario's requests; later ones
retest the crossing of the limit (the limit plus ``RETEST_WAVES`` requests per thread). A run
stops early once a failure is proven, and sends more bursts (up to ``EXTRA_BURSTS``) while an
over-admission could still be a window edge. Where the period is short, each burst starts just
after a clock-aligned window edge.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from harness.checker import (
    EDGE_ALPHA,
    REJECTED,
    Burst,
    Claim,
    Verdict,
    edge_chance,
    find,
    judge,
    wants_another_burst,
)
from harness.errors import HarnessError
from harness.evidence import Stamp
from harness.fleet import Fleet, FleetSpec, gunicorn_fleet, ignored_user_config
from harness.providers import RedisServer
from harness.resources import ensure_fd_budget
from harness.scenario import Expectation, Scenario
from harness.traffic import ENGINES, Engine, Record, Target, fresh_requests
from harness.traffic.burst import CHUNK, MAP_SPARE
from harness.versions import software_versions

VERDICT_FOR: dict[Expectation, str] = {"exact": "pass", "violation": "fail"}
RETEST_WAVES = 4  # bursts after the first send the limit plus this many requests per thread
EXTRA_BURSTS = 6  # more bursts, at most, while an over-admission could be a window edge
ALIGN_PERIOD_S = 10.0  # bursts against periods this short start just after a window edge
ALIGN_SETUP_S = 0.3  # time to map and arm before the edge a burst is aligned to
RESEND_ROUNDS = 3
CONFIRMATIONS = 4  # requests sent after an over-admission with nothing rejected
STAMP_WAIT_S = 0.5


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
    window: str
    identities: tuple[str, ...]
    ready_s: float
    traffic_s: float

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

    @property
    def all_as_expected(self) -> bool:
        return self.error is None and all(r.as_expected for r in self.runs)


class Observer(Protocol):
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
        for workers in scenario.workers:
            observer.run_started(scenario, workers)
            prefix = f"throttle-harness:{session}:{len(report.runs) + 1}:"
            result = _one_run(scenario, workers, redis, prefix, addresses)
            report.runs.append(result)
            observer.run_finished(result)
    return report


def client_addresses() -> Iterator[str]:
    """Fresh loopback client addresses (127.X.Y.Z), never the same twice in a session."""
    first = secrets.randbelow(254) + 1
    for x in (first, *(n for n in range(1, 255) if n != first)):
        for y in range(256):
            for z in range(1, 255):
                yield f"127.{x}.{y}.{z}"


def connections_needed(requests: int) -> int:
    """The most connections one burst of ``requests`` has open at once."""
    return int(min(requests, CHUNK) * (1 + MAP_SPARE)) + 1


def _one_run(
    scenario: Scenario, workers: int, redis: RedisServer, prefix: str,
    addresses: Iterator[str],
) -> RunResult:
    """One fleet, several bursts. The run has its own key prefix and each burst its own client
    address (a fresh throttle identity even in a Redis the harness may not flush, whatever the
    app's keys look like)."""
    connections = connections_needed(scenario.request_count)
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
    engine = ENGINES[scenario.traffic]
    bursts: list[Burst] = []
    try:
        with gunicorn_fleet(spec) as fleet:
            target = Target(fleet.host, fleet.port, scenario.path, workers, scenario.threads)
            started = time.monotonic()
            deadline = started + scenario.timeout_s
            while _wants_burst(bursts, scenario.bursts, claim) and time.monotonic() < deadline:
                count = scenario.request_count
                if bursts:  # a retest of the crossing: the limit, every thread, and some more
                    count = min(count, claim.limit + RETEST_WAVES * target.capacity)
                bursts.append(_one_burst(
                    engine, fleet, target, count, claim, next(addresses),
                    f"b{len(bursts) + 1}", deadline,
                ))
            traffic_s = time.monotonic() - started
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
        window=scenario.window,
        identities=tuple(b.identity for b in bursts),
        ready_s=fleet.ready_s,
        traffic_s=traffic_s,
    )


def _wants_burst(bursts: Sequence[Burst], planned: int, claim: Claim) -> bool:
    """Another burst, unless the run is settled: a failure proven, an error seen, or the planned
    bursts done with nothing left that more bursts could decide."""
    if not bursts:
        return True
    findings = [find(b, claim) for b in bursts]
    if any(f.fit.kind == "over" for f in findings) or edge_chance(findings) < EDGE_ALPHA:
        return False
    if any(f.tally.errors for f in findings):
        return False
    if len(bursts) < planned:
        return True
    return len(bursts) < planned + EXTRA_BURSTS and wants_another_burst(findings)


def _one_burst(
    engine: Engine, fleet: Fleet, target: Target, count: int, claim: Claim, identity: str,
    tag: str, deadline: float,
) -> Burst:
    """One burst from ``identity``; requests that never reached the app are sent again, and an
    over-admission with nothing rejected is followed by a few confirmation requests."""
    not_before = _aligned_start(claim.period_s) if claim.period_s <= ALIGN_PERIOD_S else 0.0
    records = engine(target, count, identity=identity, limit=claim.limit, tag=tag,
                     deadline=deadline, not_before=not_before)
    stamps = fleet.read_stamps()
    for _ in range(RESEND_ROUNDS):
        lost = [r for r in records if r.status is None and r.request_id not in stamps
                and not (r.error or "").startswith("not sent")]
        if not lost or time.monotonic() >= deadline:
            break
        again = fresh_requests(
            target, [f"{r.request_id}.{r.attempts + 1}" for r in lost],
            identity=identity, deadline=deadline,
        )
        for old, new in zip(lost, again, strict=True):
            records[old.index] = replace(
                new, index=old.index, attempts=old.attempts + 1
            )
        stamps.update(fleet.read_stamps())
    stamps.update(_remaining_stamps(fleet, records, stamps))
    confirmation: list[Record] = []
    accepted = sum(r.status == 200 for r in records)
    if accepted > claim.limit and not any(r.status == REJECTED for r in records):
        confirmation = fresh_requests(
            target, [f"{tag}c-{i}" for i in range(CONFIRMATIONS)], identity=identity,
            deadline=deadline,
        )
    ours = {k: v for k, v in stamps.items() if k.startswith(f"{tag}-")}
    return Burst(identity, records, ours, confirmation)


def _remaining_stamps(
    fleet: Fleet, records: Sequence[Record], stamps: dict[str, Stamp]
) -> dict[str, Stamp]:
    """Stamps still being written: a worker stamps a request as left only after its answer
    went out, so the last ones may trail the client by a moment."""
    found: dict[str, Stamp] = {}
    waiting = {r.request_id for r in records if r.status is not None}
    until = time.monotonic() + STAMP_WAIT_S
    while time.monotonic() < until:
        found.update(fleet.read_stamps())
        known = {**stamps, **found}
        if all(i in known and known[i].left_ns is not None for i in waiting):
            break
        time.sleep(0.01)
    return found


def _aligned_start(period_s: float) -> float:
    """Just after the next clock-aligned window edge that leaves time to map and arm."""
    now = time.time()
    edge = (math.floor(now / period_s) + 1) * period_s
    while edge - now < ALIGN_SETUP_S:
        edge += period_s
    return edge + 0.005
