"""The load generator's child process, one per share of :func:`harness.gate.load.run_load`'s
connections: its job and start time from the parent, then one thread, one epoll (or poll) loop
(:mod:`harness.gate.loop`) over the connections it owns, closed loop or on a fixed schedule
whose latencies run from each request's intended time."""

from __future__ import annotations

import ctypes
import gc
import os
import pickle
import resource
import select
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from harness.gate.loop import Run, Schedule
from harness.http.request_template import Rendered


def child_main() -> None:
    """A child's side: its job from stdin, ``R`` once ready, the start time (the parent's
    ``time.monotonic()``, system-wide) from stdin, the result's fields to stdout."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides, and kills
    job = pickle.load(sys.stdin.buffer)
    _die_with_parent(job.pop("parent"))
    gc.disable()  # a bounded run: no collector pauses inside latencies
    sys.stdout.buffer.write(b"R")
    sys.stdout.buffer.flush()
    start = pickle.load(sys.stdin.buffer)
    fields = _generate(start=start, **job)
    sys.stdout.buffer.write(pickle.dumps(fields))
    sys.stdout.buffer.flush()


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


def _poller() -> tuple[Any, float, int | None]:
    """epoll where there is one, else poll (same interface): the poller, what its timeout is
    counted in (per second), and a descriptor select() can wait on for a precise timeout."""
    if hasattr(select, "epoll"):
        epoll = select.epoll()
        return epoll, 1.0, epoll.fileno()
    return select.poll(), 1000.0, None


def _generate(
    addresses: Sequence[tuple[str, int]],
    request: Rendered,
    duration_s: float,
    rate: float | None,
    phase: int,
    stride: int,
    timeout_s: float,
    warmup_s: float,
    start: float,
) -> dict[str, Any]:
    """Run both phases from ``start`` (``time.monotonic()``) on one connection per address
    (the child's side of :func:`run_load`). At a fixed rate, this process sends requests
    ``phase``, ``phase + stride``, … of the whole schedule. Returns the result's fields,
    latencies as the bytes of a sorted ``array('d')`` of milliseconds; ``in_phase`` counts
    the answers that arrived by the end of the measured phase, ``drain_s`` how long the
    answers outstanding then took."""
    cpu0 = _cpu_s()
    schedule = Schedule(start, warmup_s, duration_s, rate)
    run = Run(addresses, request, schedule, phase, stride, timeout_s, _poller())
    while time.monotonic() < start:  # the other generators start together with this one
        time.sleep(start - time.monotonic())
    run.loop()
    fields = run.finish()
    fields["client_cpu_s"] = _cpu_s() - cpu0
    return fields


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
