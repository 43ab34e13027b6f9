"""Traffic engines: each sends requests and returns one :class:`Record` per request."""

from __future__ import annotations

from typing import Protocol

from harness.traffic.burst import burst, fresh_requests
from harness.traffic.records import Record, Target
from harness.traffic.sequential import sequential

__all__ = ["ENGINES", "Engine", "Record", "Target", "burst", "fresh_requests", "sequential"]


class Engine(Protocol):
    def __call__(
        self, target: Target, count: int, *, identity: str, value: str, limit: int, tag: str,
        deadline: float, align: tuple[float, float] | None = None,
    ) -> list[Record]: ...


ENGINES: dict[str, Engine] = {"burst": burst, "sequential": sequential}
