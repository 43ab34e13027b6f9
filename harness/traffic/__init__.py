"""Traffic engines: each sends requests and returns one :class:`Record` per request."""

from __future__ import annotations

from collections.abc import Callable

from harness.traffic.burst import burst
from harness.traffic.records import Record
from harness.traffic.sequential import sequential

__all__ = ["ENGINES", "Engine", "Record", "burst", "sequential"]

Engine = Callable[..., list[Record]]
ENGINES: dict[str, Engine] = {"burst": burst, "sequential": sequential}
