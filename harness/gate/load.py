"""The load phase of a release gate: throughput and latency of an endpoint served on loopback.

:func:`run_load` drives ``connections`` keep-alive HTTP/1.1 connections, spread round-robin over
the endpoints (as a load balancer would), for ``warmup_s`` (not measured) and then
``duration_s`` (measured), in one of two modes:

- **Closed loop** (``rate`` None): each connection sends its next request as soon as the
  previous answer is in; latency runs from the actual send. This measures capacity.
- **Fixed arrival rate**: request *i* is due at ``t0 + i / rate``; while every connection is
  busy it waits for one. Its latency runs from the *intended* time, not the actual send, so
  that a stalled server cannot hide its stall by slowing the client down (coordinated
  omission; wrk2's correction). Due requests that no connection was free to start before the
  end are the ``backlog``.

A request belongs to the measured phase when it is sent (closed loop) or due (fixed rate) at
or after its start. Sending stops at the end of the phase; answers still outstanding are
awaited (each for ``timeout_s`` at most, ``drain_s`` in all), so every request sent is either
answered or an error, with its latency. Throughput is the answers that arrived within the
phase over the phase's own duration: the drain neither adds its answers nor stretches the
time (one slow request could otherwise cut a 10 s phase's throughput by a third), and the at
most one request per connection still outstanding at the end is left out, as the requests
already running at its start are. 5xx answers, connection and protocol errors and timeouts
are errors; any other status (429 from a throttle, say) is not.
A keep-alive connection the server closed is reopened; an idempotent request that met such a
stale connection before any byte of its answer is sent again once, not counted twice.

The generators are child processes (:mod:`harness.gate.generator`; the loop in
:mod:`harness.gate.loop`, the wire in :mod:`harness.gate.wire`), one per usable core up to
``MAX_PROCESSES``, each a single-threaded epoll loop: process *k* of *P* owns connections
*k*, *k + P*, … (so the round-robin over endpoints holds) and, at a fixed rate, requests
*k*, *k + P*, … of the schedule; a request waits for a connection of its own process. They
start together (ready, then a common start time on the system-wide monotonic clock).
Measured on the 2-core development VM (``tests/benchmarks/load_fidelity.py`` and the numbers
behind it):

- In the caller's process the generator shares the GIL with the harness's threads: a thread
  doing 10 ms of Python every 0.25 s (a usage sampler) took p95 at 700 requests/s from 2.7 ms
  to 7.4 ms; in a child it cannot.
- One process is a serialisation point on a busy machine: against a fast endpoint (DRF,
  ~3,800 requests/s) it reached 0.81x wrk's throughput; two reached 0.95x.
- Answers are parsed by a small hand parser (status line, ``Content-Length``, chunked,
  read-until-close, ``Connection``; the tests check it against h11): 2.5 µs per answer where
  h11 takes 32, and 65 µs of client CPU per request in all instead of 155.

A child never outlives the caller: :func:`run_load` kills them when it leaves early (an
exception, Ctrl-C), they have the kernel's parent-death signal on Linux, and each ends by
itself once its phases are over.
"""

from __future__ import annotations

import array
import math
import os
import pickle
import select
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from harness.errors import InfrastructureError
from harness.gate.wire import RECV_BYTES
from harness.host.cpus import usable_cpus
from harness.host.ports import LOOPBACK
from harness.host.processes import PARENT_ENV
from harness.http.request_template import Rendered

CHILD_GRACE_S = 30.0  # the children's start-up and hand-over, beyond the phases themselves
START_MARGIN_S = 0.02  # from the go to the common start, for every child to be woken
MAX_PROCESSES = 4


class LoadError(InfrastructureError):
    """The load generator failed or did not finish."""


@dataclass(frozen=True)
class LoadResult:
    """What one load phase measured. ``duration_s`` is the measured phase's own duration;
    ``completed`` counts every answer, ``in_phase`` those that arrived within the phase (the
    rest during the ``drain_s`` after it). ``latencies_ms`` holds one latency per completed
    request (errors have none), sorted ascending; ``rate`` is the fixed arrival rate, None for a
    closed loop; ``backlog`` the requests due at a fixed rate that no connection was free to
    start before the end; ``client_cpu_s`` the CPU time the generator itself used (both
    phases)."""

    duration_s: float
    sent: int
    completed: int
    errors: int
    statuses: dict[int, int]
    latencies_ms: tuple[float, ...]
    rate: float | None = None
    backlog: int = 0
    client_cpu_s: float = 0.0
    in_phase: int = 0
    drain_s: float = 0.0

    @property
    def throughput_rps(self) -> float:
        """Answers per second within the phase (see the module)."""
        return self.in_phase / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def error_rate(self) -> float:
        """Errors among the requests due: a request a fixed rate never got to send in time
        (the backlog) failed its client as surely as one that timed out."""
        return (self.errors + self.backlog) / max(self.sent + self.backlog, 1)

    def percentile(self, q: float) -> float:
        """The latency (ms) that ``q`` percent of completed requests did not exceed (nearest
        rank; NaN when nothing completed)."""
        if not 0 < q <= 100:
            raise ValueError(f"percentile {q} is not in (0, 100]")
        if not self.latencies_ms:
            return math.nan
        rank = math.ceil(q / 100 * len(self.latencies_ms))
        return self.latencies_ms[max(rank, 1) - 1]


def run_load(
    endpoints: Sequence[tuple[str, int]],
    request: Rendered,
    *,
    duration_s: float,
    connections: int,
    rate: float | None = None,
    timeout_s: float = 5.0,
    warmup_s: float = 0.5,
) -> LoadResult:
    """Load ``endpoints`` (127.0.0.1 only) with ``request`` and measure it; see the module."""
    if not endpoints:
        raise ValueError("no endpoint to load")
    for host, port in endpoints:
        if host != LOOPBACK or not 0 < port < 65536:
            raise ValueError(f"endpoint {host}:{port}: only {LOOPBACK} ports are loaded")
    if connections < 1:
        raise ValueError(f"connections must be at least 1, not {connections}")
    if duration_s <= 0 or warmup_s < 0 or timeout_s <= 0:
        raise ValueError("duration_s and timeout_s must be positive, warmup_s not negative")
    if rate is not None and not (rate > 0 and math.isfinite(rate)):
        raise ValueError(f"rate must be a positive number of requests per second, not {rate}")
    addresses = [(h, int(p)) for h, p in endpoints]
    per_connection = [addresses[i % len(addresses)] for i in range(connections)]
    count = generator_processes(connections)
    jobs = [
        {
            "addresses": per_connection[k::count],
            "request": request,
            "duration_s": float(duration_s),
            "rate": None if rate is None else float(rate),
            "phase": k,
            "stride": count,
            "timeout_s": float(timeout_s),
            "warmup_s": float(warmup_s),
        }
        for k in range(count)
    ]
    parts = _in_children(jobs, warmup_s + duration_s + timeout_s + CHILD_GRACE_S)
    latencies = array.array("d")
    statuses: Counter[int] = Counter()
    for part in parts:
        latencies.frombytes(part["latencies_ms"])
        statuses.update(part["statuses"])
    return LoadResult(
        duration_s=max(part["duration_s"] for part in parts),
        sent=sum(part["sent"] for part in parts),
        completed=sum(part["completed"] for part in parts),
        errors=sum(part["errors"] for part in parts),
        statuses=dict(sorted(statuses.items())),
        latencies_ms=tuple(sorted(latencies)),
        rate=rate,
        backlog=sum(part["backlog"] for part in parts),
        client_cpu_s=sum(part["client_cpu_s"] for part in parts),
        in_phase=sum(part["in_phase"] for part in parts),
        drain_s=max(part["drain_s"] for part in parts),
    )


def generator_processes(connections: int) -> int:
    """How many processes share the connections: one per usable CPU, up to
    ``MAX_PROCESSES``."""
    return max(1, min(connections, usable_cpus(), MAX_PROCESSES))


_CHILD = "from harness.gate.generator import child_main; child_main()"


def _in_children(jobs: list[dict[str, Any]], limit_s: float) -> list[dict[str, Any]]:
    """Run each job in a child of its own, all started at once; their results' fields."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    # PARENT_ENV, as processes.spawn sets it: what finds a child left behind (tests do)
    env = {**os.environ, "PYTHONPATH": path, PARENT_ENV: str(os.getpid())}
    deadline = time.monotonic() + limit_s
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[IO[bytes]] = []
    try:
        for job in jobs:
            logs.append(tempfile.TemporaryFile())
            proc = subprocess.Popen(
                [sys.executable, "-P", "-c", _CHILD],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=logs[-1],
                env=env,
            )
            procs.append(proc)
            _send(proc, pickle.dumps({**job, "parent": os.getpid()}), logs[-1])
        for proc, log in zip(procs, logs, strict=True):  # each one ready to go
            if _read(proc, deadline, 1) != b"R":
                raise _failed(proc, log)
        start = pickle.dumps(time.monotonic() + START_MARGIN_S)
        for proc, log in zip(procs, logs, strict=True):
            _send(proc, start, log)
            assert proc.stdin is not None
            proc.stdin.close()
        parts = []
        for proc, log in zip(procs, logs, strict=True):
            out = _read(proc, deadline)
            if proc.wait(timeout=max(deadline - time.monotonic(), 0.1)) != 0 or not out:
                raise _failed(proc, log)
            parts.append(pickle.loads(out))
        return parts
    except subprocess.TimeoutExpired:
        raise LoadError(f"the load generator did not finish within {limit_s:.0f} s") from None
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
        for log in logs:
            log.close()


def _send(proc: subprocess.Popen[bytes], data: bytes, log: IO[bytes]) -> None:
    assert proc.stdin is not None
    try:
        proc.stdin.write(data)
        proc.stdin.flush()
    except BrokenPipeError:
        proc.wait()
        raise _failed(proc, log) from None


def _read(proc: subprocess.Popen[bytes], deadline: float, size: int = -1) -> bytes:
    """``size`` bytes of the child's output (all of it: -1), by ``deadline``; fewer at its end."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    chunks: list[bytes] = []
    got = 0
    while size < 0 or got < size:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise subprocess.TimeoutExpired(proc.args, 0)
        chunk = os.read(fd, RECV_BYTES if size < 0 else size - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _failed(proc: subprocess.Popen[bytes], log: IO[bytes]) -> LoadError:
    if proc.poll() is None:
        proc.kill()
    code = proc.wait()
    log.seek(0)
    tail = log.read().decode(errors="replace").strip().splitlines()[-5:]
    return LoadError(f"the load generator failed (exit {code})", "\n".join(tail))
