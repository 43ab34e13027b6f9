"""The probe's stamps: when each request entered and left the app, on which worker, as the
probe (:mod:`harness.fleet.probe`) writes them to per-worker files and the fleet reads them back
(:meth:`harness.fleet.process.Fleet.read_stamps`). The evidence (:mod:`harness.verdict.evidence`)
is judged from them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.fleet.probe_protocol import STAMPS_DIR


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


class StampFiles:
    """The stamp files the probe writes under each of ``status_dirs`` (one per instance, on
    this machine or mounted into a container), read on from where the last read stopped."""

    def __init__(self, status_dirs: Sequence[Path]) -> None:
        self.status_dirs = tuple(status_dirs)
        self._offsets: dict[Path, int] = {}
        self._book = StampBook()

    def read(self) -> dict[str, Stamp]:
        """Every stamp written so far, by request id."""
        paths = [p for d in self.status_dirs for p in sorted((d / STAMPS_DIR).glob("*"))]
        for path in paths:
            with open(path, "rb") as fh:
                fh.seek(self._offsets.get(path, 0))
                data = fh.read()
            complete = data[: data.rfind(b"\n") + 1]  # a line being written waits for next time
            self._offsets[path] = self._offsets.get(path, 0) + len(complete)
            self._book.add(complete.decode(errors="replace").splitlines())
        return self._book.stamps()
