"""Traffic engines: each sends requests and returns one :class:`Record` per request."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from harness.http.records import Client, Record, Target
from harness.traffic.burst import burst, fresh_requests
from harness.traffic.sequential import sequential
from harness.traffic.warm import warm_up, warm_up_client

__all__ = [
    "ENGINES",
    "Client",
    "Engine",
    "Record",
    "Target",
    "burst",
    "fresh_requests",
    "sequential",
    "warm_up",
    "warm_up_client",
]


class Engine(Protocol):
    def __call__(
        self,
        target: Target,
        count: int,
        *,
        clients: Sequence[Client],
        limit: int,
        tag: str,
        deadline: float,
        align: tuple[float, float] | None = None,
        on_release: Callable[[int], None] | None = None,
        shared: bool = False,
    ) -> list[Record]: ...


ENGINES: dict[str, Engine] = {"burst": burst, "sequential": sequential}
