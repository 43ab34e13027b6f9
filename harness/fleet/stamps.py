"""The probe's stamps: when each request entered and left the app, on which worker, as the
probe (:mod:`harness.fleet.probe`) writes them to per-worker files and the fleet reads them back
(:meth:`harness.fleet.process.Fleet.read_stamps`). The evidence (:mod:`harness.verdict.evidence`)
is judged from them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Stamp:
    """One request inside the app: entered and left (CLOCK_MONOTONIC ns), the app's status."""

    request: str
    worker: str
    entered_ns: int
    left_ns: int | None = None
    status: int | None = None


class StampBook:
    """Every stamp read so far. The probe writes a request's entry and exit as separate lines,
    which may arrive in separate reads; the book pairs them up."""

    def __init__(self) -> None:
        self._entered: dict[str, tuple[str, int]] = {}
        self._left: dict[str, tuple[int | None, int]] = {}

    def add(self, lines: Iterable[str]) -> None:
        """Take the probe's ``> ID WORKER NS`` / ``< ID STATUS NS`` lines."""
        for line in lines:
            parts = line.split()
            if len(parts) != 4:
                continue  # a torn line from a worker that died mid-write
            mark, request, what, ns = parts
            try:
                t = int(ns)
            except ValueError:
                continue
            if mark == ">":
                self._entered[request] = (what, t)
            elif mark == "<":
                self._left[request] = (int(what) if what.isdigit() else None, t)

    def stamps(self) -> dict[str, Stamp]:
        """Stamps by request id, of every request that entered the app. One with no exit yet
        is still inside (or its worker died)."""
        stamps = {}
        for request, (worker, t_in) in self._entered.items():
            status, t_out = self._left.get(request, (None, None))
            stamps[request] = Stamp(request, worker, t_in, t_out, status)
        return stamps
