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
awaited (each for ``timeout_s`` at most), so every request sent is either answered or an
error, and ``duration_s`` runs until the last one was settled. 5xx answers, connection and
protocol errors and timeouts are errors; any other status (429 from a throttle, say) is not.
A keep-alive connection the server closed is reopened; an idempotent request that met such a
stale connection before any byte of its answer is sent again once, not counted twice.

The generators are child processes (``python -P -c``), one per usable core up to
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
import ctypes
import errno
import gc
import math
import os
import pickle
import resource
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from harness.errors import InfrastructureError
from harness.ports import LOOPBACK
from harness.processes import PARENT_ENV
from harness.request_template import Rendered

RECV_BYTES = 65536
RECONNECT_PAUSE_S = 0.01  # a connection whose connect failed waits this long before its next try
TIMEOUT_SCAN_S = 0.01  # how often outstanding requests are checked against ``timeout_s``
PRECISE_WAIT_S = 0.005  # shorter waits (and all at a fixed rate) select() to the microsecond
CHILD_GRACE_S = 30.0  # the children's start-up and hand-over, beyond the phases themselves
START_MARGIN_S = 0.02  # from the go to the common start, for every child to be woken
MAX_PROCESSES = 4
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
CHUNKED = -1
UNTIL_CLOSE = -2


class LoadError(InfrastructureError):
    """The load generator failed or did not finish."""


@dataclass(frozen=True)
class LoadResult:
    """What one load phase measured. ``latencies_ms`` holds one latency per completed request
    (errors have none), sorted ascending; ``rate`` is the fixed arrival rate, None for a closed
    loop; ``backlog`` the requests due at a fixed rate that no connection was free to start
    before the end; ``client_cpu_s`` the CPU time the generator itself used (both phases)."""

    duration_s: float
    sent: int
    completed: int
    errors: int
    statuses: dict[int, int]
    latencies_ms: tuple[float, ...]
    rate: float | None = None
    backlog: int = 0
    client_cpu_s: float = 0.0

    @property
    def throughput_rps(self) -> float:
        return self.completed / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def error_rate(self) -> float:
        return self.errors / max(self.sent, 1)

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
    )


def generator_processes(connections: int) -> int:
    """How many processes share the connections: one per usable core, up to
    ``MAX_PROCESSES``."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(connections, cores, MAX_PROCESSES))


def _in_children(jobs: list[dict[str, Any]], limit_s: float) -> list[dict[str, Any]]:
    """Run each job in a child of its own, all started at once; their results' fields."""
    root = str(Path(__file__).resolve().parent.parent)
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
                [sys.executable, "-P", "-c", "from harness.load import _child_main; _child_main()"],
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


def _child_main() -> None:
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


# The wire.


def wire_request(request: Rendered, host: str, port: int) -> bytes:
    """``request`` as bytes for HTTP/1.1 keep-alive to ``host:port``."""
    lines = [f"{request.method} {request.target} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{name}: {value}" for name, value in request.headers]
    if request.body or request.method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(request.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + request.body


def parse_response(
    buf: bytes | bytearray, head_request: bool = False, at_eof: bool = False
) -> tuple[int, bool, int] | None:
    """The first complete answer in ``buf``: (status, keep-alive, bytes used), or None while
    incomplete. ``at_eof``: the server closed, which ends a body without a length.
    Informational (1xx) answers are skipped. Raises ValueError on a malformed answer."""
    start = 0
    while True:
        hend = buf.find(b"\r\n\r\n", start)
        if hend < 0:
            if at_eof:
                raise ValueError("connection closed inside an answer's head")
            return None
        status, length, keep = _parse_head(bytes(buf[start:hend]), head_request)
        body = hend + 4
        if 100 <= status < 200:
            start = body
            continue
        if length >= 0:
            end = body + length
            if len(buf) < end:
                if at_eof:
                    raise ValueError("connection closed inside an answer's body")
                return None
            return status, keep, end
        if length == CHUNKED:
            end = _chunked_end(buf, body)
            if end < 0:
                if at_eof:
                    raise ValueError("connection closed inside a chunked body")
                return None
            return status, keep, end
        return (status, False, len(buf)) if at_eof else None  # until close


def _parse_head(head: bytes, head_request: bool) -> tuple[int, int, bool]:
    """(status, body length or CHUNKED or UNTIL_CLOSE, keep-alive) of a response head."""
    if not head.startswith(b"HTTP/1.") or len(head) < 12 or head[12:13] not in (b" ", b"\r", b""):
        raise ValueError(f"not an HTTP/1.x status line: {head[:40]!r}")
    try:
        status = int(head[9:12])
    except ValueError:
        raise ValueError(f"bad status in {head[:40]!r}") from None
    lower = head.lower()
    connection = _header(lower, b"connection")
    tokens = {t.strip() for t in connection.split(b",")} if connection is not None else set()
    keep = b"keep-alive" in tokens if head[7:8] == b"0" else b"close" not in tokens
    if head_request or status in (204, 304) or 100 <= status < 200:
        return status, 0, keep
    coding = _header(lower, b"transfer-encoding")
    if coding is not None and b"chunked" in coding:
        return status, CHUNKED, keep
    length = _header(lower, b"content-length")
    if length is not None:
        try:
            return status, int(length), keep
        except ValueError:
            raise ValueError(f"bad Content-Length {length!r}") from None
    return status, UNTIL_CLOSE, False


def _header(lower_head: bytes, name: bytes) -> bytes | None:
    at = lower_head.find(b"\r\n" + name + b":")
    if at < 0:
        return None
    at += len(name) + 3
    end = lower_head.find(b"\r\n", at)
    return lower_head[at : end if end >= 0 else None].strip()


def _chunked_end(buf: bytes | bytearray, at: int) -> int:
    """Where a chunked body starting at ``at`` ends (after its trailers), or -1 if not yet."""
    while True:
        eol = buf.find(b"\r\n", at)
        if eol < 0:
            return -1
        try:
            size = int(bytes(buf[at:eol]).split(b";", 1)[0], 16)
        except ValueError:
            raise ValueError(f"bad chunk size {bytes(buf[at:eol])[:20]!r}") from None
        if size == 0:
            if buf[eol + 2 : eol + 4] == b"\r\n":
                return eol + 4
            end = buf.find(b"\r\n\r\n", eol)
            return -1 if end < 0 else end + 4
        at = eol + 2 + size + 2
        if len(buf) < at:
            return -1


# The generator.

_IN = select.POLLIN
_OUT = select.POLLOUT
_BROKEN = select.POLLERR | select.POLLHUP


class _Conn:
    """One client connection: at most one request outstanding on it."""

    __slots__ = (
        "addr",
        "payload",
        "sock",
        "fd",
        "epoch",
        "connecting",
        "busy",
        "reused",
        "out",
        "buf",
        "sent_at",
        "origin",
        "measured",
        "retried",
        "ready_at",
    )

    def __init__(self, addr: tuple[str, int], payload: bytes) -> None:
        self.addr = addr
        self.payload = payload
        self.sock: socket.socket | None = None
        self.fd = -1
        self.epoch = -1  # the poll round in which the socket was opened
        self.connecting = False
        self.busy = False  # a request is outstanding
        self.reused = False  # it went out on a connection that had served one before
        self.out = b""  # what is still to be written of it
        self.buf = bytearray()
        self.sent_at = 0.0
        self.origin = 0.0  # where its latency runs from: sent_at, or the intended time
        self.measured = False
        self.retried = False
        self.ready_at = 0.0


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
    latencies as the bytes of a sorted ``array('d')`` of milliseconds."""
    cpu0 = _cpu_s()
    payloads = {a: wire_request(request, *a) for a in set(addresses)}
    conns = [_Conn(a, payloads[a]) for a in addresses]
    head_request = request.method == "HEAD"
    may_retry = request.method in IDEMPOTENT
    poller, per_second, wait_fd = _poller()
    by_fd: dict[int, _Conn] = {}
    clock = time.monotonic
    idle: deque[_Conn] = deque(conns)
    resting: list[_Conn] = []
    queue: deque[tuple[float, bool]] = deque()  # fixed rate: (intended time, measured), due
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    sent = completed = errors = 0
    epoch = 0

    t0 = start + warmup_s
    t_end = t0 + duration_s
    interval = 1.0 / rate if rate else 0.0
    warm_n = math.ceil(warmup_s * rate - 1e-9) if rate else 0
    total_n = warm_n + (math.ceil(duration_s * rate - 1e-9) if rate else 0)
    next_i = phase

    def due(i: int) -> float:
        return start + i * interval if i < warm_n else t0 + (i - warm_n) * interval

    def close(conn: _Conn) -> None:
        if conn.sock is not None:
            poller.unregister(conn.fd)
            del by_fd[conn.fd]
            conn.sock.close()
            conn.sock = None
        conn.buf.clear()
        conn.connecting = False

    def free(conn: _Conn, now: float) -> None:
        """``conn`` has nothing outstanding: in a closed loop it sends the next request."""
        conn.busy = False
        if rate is None and now < t_end:
            begin(conn, None, now >= t0)
        else:
            idle.append(conn)

    def fail(conn: _Conn, rest: bool) -> None:
        """The outstanding request ended without an answer."""
        nonlocal errors
        if conn.measured:
            errors += 1
        close(conn)
        if rest:  # the connect failed: pause before the next try
            conn.busy = False
            conn.ready_at = clock() + RECONNECT_PAUSE_S
            resting.append(conn)
        else:
            free(conn, clock())

    def begin(conn: _Conn, origin: float | None, measured: bool) -> None:
        """Send the next request on ``conn`` (``origin``: its intended time, if any)."""
        nonlocal sent
        now = clock()
        conn.sent_at = now
        conn.origin = now if origin is None else origin
        conn.measured = measured
        conn.retried = False
        conn.busy = True
        if measured:
            sent += 1
        transmit(conn)

    def transmit(conn: _Conn) -> None:
        sock = conn.sock
        if sock is not None:  # keep-alive: the common case, one send()
            conn.reused = True
            try:
                n = sock.send(conn.payload)
            except BlockingIOError:
                n = 0
            except OSError:
                lost(conn)
                return
            if n < len(conn.payload):
                conn.out = conn.payload[n:]
                poller.modify(conn.fd, _IN | _OUT)
            return
        conn.reused = False
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        code = sock.connect_ex(conn.addr)
        if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
            sock.close()
            fail(conn, rest=True)
            return
        conn.sock, conn.fd, conn.epoch = sock, sock.fileno(), epoch
        by_fd[conn.fd] = conn
        conn.connecting = code != 0
        conn.out = conn.payload
        poller.register(conn.fd, _OUT)
        if not conn.connecting:
            write(conn)

    def write(conn: _Conn) -> None:
        """Write what is left of the request (a new connection, or a partial send)."""
        assert conn.sock is not None
        try:
            n = conn.sock.send(conn.out)
        except BlockingIOError:
            n = 0
        except OSError:
            lost(conn)
            return
        conn.out = conn.out[n:]
        poller.modify(conn.fd, _IN | _OUT if conn.out else _IN)

    def connected(conn: _Conn) -> None:
        assert conn.sock is not None
        if conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            fail(conn, rest=True)
            return
        conn.connecting = False
        write(conn)

    def lost(conn: _Conn) -> None:
        """The connection broke before an answer: resend once if it was a stale keep-alive."""
        if conn.reused and not conn.buf and may_retry and not conn.retried:
            close(conn)
            conn.retried = True
            transmit(conn)
        else:
            fail(conn, rest=not conn.reused)

    def readable(conn: _Conn, now: float) -> None:
        nonlocal completed, errors
        sock = conn.sock
        assert sock is not None
        try:
            data = sock.recv(RECV_BYTES)
        except BlockingIOError:
            return
        except OSError:
            if conn.busy:
                lost(conn)
            else:
                close(conn)
            return
        if not conn.busy:  # bytes or a close on an idle connection: drop it
            close(conn)
            return
        buf = conn.buf
        if not data:
            if not buf:
                lost(conn)
                return
            parsed: bytes | bytearray = buf
        elif buf:
            buf += data
            parsed = buf
        else:
            parsed = data
        try:
            done = parse_response(parsed, head_request, not data)
        except ValueError:
            fail(conn, rest=False)
            return
        if done is None:
            if parsed is data:
                buf += data
            return
        status, keep, used = done
        if conn.measured:
            completed += 1
            statuses[status] = statuses.get(status, 0) + 1
            latencies.append((now - conn.origin) * 1000.0)
            if status >= 500:
                errors += 1
        if keep and data and used == len(parsed):
            buf.clear()
        else:
            close(conn)
        free(conn, now)

    while clock() < start:  # the other generators start together with this one
        time.sleep(start - clock())
    next_scan = start
    flushed = False
    while True:
        now = clock()
        if resting:
            for conn in [c for c in resting if c.ready_at <= now]:
                resting.remove(conn)
                idle.append(conn)
        sending = now < t_end
        if rate:
            while next_i < total_n and due(next_i) <= now:
                queue.append((due(next_i), next_i >= warm_n))
                next_i += stride
            # Past the end, requests due before it still go once, on connections idle now.
            while queue and idle and (sending or not flushed):
                intended, measured = queue.popleft()
                begin(idle.popleft(), intended, measured)
            flushed = not sending
        elif sending:
            while idle:
                begin(idle.popleft(), None, now >= t0)
        if not sending and not any(c.busy and c.measured for c in conns):
            break
        if now >= next_scan:
            next_scan = now + TIMEOUT_SCAN_S
            for conn in conns:
                if conn.busy and now - conn.sent_at > timeout_s:
                    fail(conn, rest=False)
        wait = TIMEOUT_SCAN_S
        if sending:
            if t_end - now < wait:
                wait = t_end - now
            if rate and idle and next_i < total_n:
                wait = min(wait, due(next_i) - now)
            if resting:
                wait = min(wait, min(c.ready_at for c in resting) - now)
        if wait > 0 and wait_fd is not None and (rate or wait < PRECISE_WAIT_S):
            # epoll counts its timeout in whole milliseconds (rounded up): select() on the
            # epoll descriptor wakes to the microsecond, on the same events.
            select.select([wait_fd], [], [], wait)
            wait = 0.0
        events = poller.poll(max(wait, 0.0) * per_second)
        epoch += 1
        now = clock()
        for fd, mask in events:
            ready = by_fd.get(fd)
            if ready is None or ready.epoch == epoch:  # closed, or a new socket on an old fd
                continue
            if ready.connecting:
                connected(ready)
                continue
            if mask & _OUT and ready.out:
                write(ready)
            if mask & (_IN | _BROKEN) and ready.sock is not None:
                readable(ready, now)
    end = clock()
    backlog = sum(1 for _, measured in queue if measured)
    for conn in conns:
        close(conn)
    if hasattr(poller, "close"):  # poll objects have none
        poller.close()
    latencies.sort()
    return {
        "duration_s": end - t0,
        "sent": sent,
        "completed": completed,
        "errors": errors,
        "statuses": statuses,
        "latencies_ms": array.array("d", latencies).tobytes(),
        "rate": rate,
        "backlog": backlog,
        "client_cpu_s": _cpu_s() - cpu0,
    }


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
