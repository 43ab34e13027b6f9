"""The load generator's loop, run in each child process of :func:`harness.gate.load.run_load`: one
thread, one epoll (or poll) loop over the connections it owns, closed loop or on a fixed
schedule whose latencies run from each request's intended time."""

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
import sys
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from harness.gate.wire import RECV_BYTES, parse_response, wire_request
from harness.http.request_template import Rendered

RECONNECT_PAUSE_S = 0.01  # a connection whose connect failed waits this long before its next try
TIMEOUT_SCAN_S = 0.01  # how often outstanding requests are checked against ``timeout_s``
PRECISE_WAIT_S = 0.005  # shorter waits (and all at a fixed rate) select() to the microsecond
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})


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
    latencies as the bytes of a sorted ``array('d')`` of milliseconds; ``in_phase`` counts
    the answers that arrived by the end of the measured phase, ``drain_s`` how long the
    answers outstanding then took."""
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
    sent = completed = in_phase = errors = 0
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
        nonlocal completed, in_phase, errors
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
            in_phase += now <= t_end
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
        "duration_s": duration_s,
        "drain_s": max(0.0, end - t_end),
        "sent": sent,
        "completed": completed,
        "in_phase": in_phase,
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
