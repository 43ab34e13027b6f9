"""The fault objects of a scenario's fault specs."""

from __future__ import annotations

from collections.abc import Sequence

from harness.faults import Fault, FaultSpec
from harness.faults.redis_faults import RedisLatency, RedisOutage, RedisRestart
from harness.faults.worker_kill import WorkerKill


def make_faults(specs: Sequence[FaultSpec], expect_outage: str | None = None) -> list[Fault]:
    faults: list[Fault] = []
    for spec in specs:
        if spec.kind == "worker-kill":
            faults.append(WorkerKill())
        elif spec.kind == "redis-restart":
            faults.append(RedisRestart())
        elif spec.kind == "redis-outage":
            faults.append(RedisOutage(expect_outage))
        else:
            faults.append(RedisLatency(spec.latency_ms))
    return faults
