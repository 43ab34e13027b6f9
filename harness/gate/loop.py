"""The loop of one load generator (:mod:`harness.gate.generator`): its connections, the
fixed-rate schedule, and :class:`Run`, whose named steps open, send, receive, pace and drain
over one epoll (or poll) loop."""

from __future__ import annotations

import array
import errno
import math
import select
import socket
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
_IN = select.POLLIN
_OUT = select.POLLOUT
_BROKEN = select.POLLERR | select.POLLHUP


class Conn:
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


class Schedule:
    """The phases' times (``start`` is the warmup's, ``t0`` the measured phase's, ``t_end``
    its end) and, at a fixed rate, the whole schedule's: request *i* is due at ``due(i)``,
    the first ``warm_n`` of ``total_n`` in the warmup."""

    __slots__ = ("start", "duration_s", "rate", "t0", "t_end", "interval", "warm_n", "total_n")

    def __init__(
        self, start: float, warmup_s: float, duration_s: float, rate: float | None
    ) -> None:
        self.start = start
        self.duration_s = duration_s
        self.rate = rate
        self.t0 = start + warmup_s
        self.t_end = self.t0 + duration_s
        self.interval = 1.0 / rate if rate else 0.0
        self.warm_n = math.ceil(warmup_s * rate - 1e-9) if rate else 0
        self.total_n = self.warm_n + (math.ceil(duration_s * rate - 1e-9) if rate else 0)

    def due(self, i: int) -> float:
        """When request ``i`` of the fixed-rate schedule is due."""
        if i < self.warm_n:
            return self.start + i * self.interval
        return self.t0 + (i - self.warm_n) * self.interval


class Run:
    """One child's run: its connections, the poller over them, the fixed-rate queue and the
    counters every step shares. Per request: begin, transmit (or open, connected), write,
    readable, answered, or fail and lost; per round of :meth:`loop`: wake, dispatch (the pace),
    scan, wait_s, poll; then :meth:`finish` (the drain's end)."""

    def __init__(
        self,
        addresses: Sequence[tuple[str, int]],
        request: Rendered,
        schedule: Schedule,
        phase: int,
        stride: int,
        timeout_s: float,
        poller: tuple[Any, float, int | None],
    ) -> None:
        payloads = {a: wire_request(request, *a) for a in set(addresses)}
        self.conns = [Conn(a, payloads[a]) for a in addresses]
        self.head_request = request.method == "HEAD"
        self.may_retry = request.method in IDEMPOTENT
        self.poller, self.per_second, self.wait_fd = poller
        self.by_fd: dict[int, Conn] = {}
        self.clock = time.monotonic
        self.idle: deque[Conn] = deque(self.conns)
        self.resting: list[Conn] = []
        self.queue: deque[tuple[float, bool]] = deque()  # fixed rate: (intended, measured), due
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.sent = self.completed = self.in_phase = self.errors = 0
        self.epoch = 0
        self.schedule = schedule
        self.rate = schedule.rate
        self.t0 = schedule.t0
        self.t_end = schedule.t_end
        self.timeout_s = timeout_s
        self.stride = stride
        self.next_i = phase
        self.next_scan = schedule.start
        self.flushed = False

    def close(self, conn: Conn) -> None:
        """Close ``conn``'s socket, if open, and forget what it had read."""
        if conn.sock is not None:
            self.poller.unregister(conn.fd)
            del self.by_fd[conn.fd]
            conn.sock.close()
            conn.sock = None
        conn.buf.clear()
        conn.connecting = False

    def free(self, conn: Conn, now: float) -> None:
        """``conn`` has nothing outstanding: in a closed loop it sends the next request."""
        conn.busy = False
        if self.rate is None and now < self.t_end:
            self.begin(conn, None, now >= self.t0)
        else:
            self.idle.append(conn)

    def fail(self, conn: Conn, rest: bool) -> None:
        """The outstanding request ended without an answer."""
        if conn.measured:
            self.errors += 1
        self.close(conn)
        if rest:  # the connect failed: pause before the next try
            conn.busy = False
            conn.ready_at = self.clock() + RECONNECT_PAUSE_S
            self.resting.append(conn)
        else:
            self.free(conn, self.clock())

    def begin(self, conn: Conn, origin: float | None, measured: bool) -> None:
        """Send the next request on ``conn`` (``origin``: its intended time, if any)."""
        now = self.clock()
        conn.sent_at = now
        conn.origin = now if origin is None else origin
        conn.measured = measured
        conn.retried = False
        conn.busy = True
        if measured:
            self.sent += 1
        self.transmit(conn)

    def transmit(self, conn: Conn) -> None:
        """Send the request on ``conn``'s open socket, or open one for it."""
        sock = conn.sock
        if sock is None:
            self.open(conn)
            return
        conn.reused = True  # keep-alive: the common case, one send()
        try:
            n = sock.send(conn.payload)
        except BlockingIOError:
            n = 0
        except OSError:
            self.lost(conn)
            return
        if n < len(conn.payload):
            conn.out = conn.payload[n:]
            self.poller.modify(conn.fd, _IN | _OUT)

    def open(self, conn: Conn) -> None:
        """Connect a new socket for ``conn``, its request to be written once connected."""
        conn.reused = False
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        code = sock.connect_ex(conn.addr)
        if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
            sock.close()
            self.fail(conn, rest=True)
            return
        conn.sock, conn.fd, conn.epoch = sock, sock.fileno(), self.epoch
        self.by_fd[conn.fd] = conn
        conn.connecting = code != 0
        conn.out = conn.payload
        self.poller.register(conn.fd, _OUT)
        if not conn.connecting:
            self.write(conn)

    def write(self, conn: Conn) -> None:
        """Write what is left of the request (a new connection, or a partial send)."""
        assert conn.sock is not None
        try:
            n = conn.sock.send(conn.out)
        except BlockingIOError:
            n = 0
        except OSError:
            self.lost(conn)
            return
        conn.out = conn.out[n:]
        self.poller.modify(conn.fd, _IN | _OUT if conn.out else _IN)

    def connected(self, conn: Conn) -> None:
        """``conn``'s connect ended: write the request, or rest after a failure."""
        assert conn.sock is not None
        if conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            self.fail(conn, rest=True)
            return
        conn.connecting = False
        self.write(conn)

    def lost(self, conn: Conn) -> None:
        """The connection broke before an answer: resend once if it was a stale keep-alive."""
        if conn.reused and not conn.buf and self.may_retry and not conn.retried:
            self.close(conn)
            conn.retried = True
            self.transmit(conn)
        else:
            self.fail(conn, rest=not conn.reused)

    def readable(self, conn: Conn, now: float) -> None:
        """Read from ``conn``; once its answer is complete, count it and free ``conn``."""
        sock = conn.sock
        assert sock is not None
        try:
            data = sock.recv(RECV_BYTES)
        except BlockingIOError:
            return
        except OSError:
            if conn.busy:
                self.lost(conn)
            else:
                self.close(conn)
            return
        if not conn.busy:  # bytes or a close on an idle connection: drop it
            self.close(conn)
            return
        buf = conn.buf
        if not data:
            if not buf:
                self.lost(conn)
                return
            parsed: bytes | bytearray = buf
        elif buf:
            buf += data
            parsed = buf
        else:
            parsed = data
        try:
            done = parse_response(parsed, self.head_request, not data)
        except ValueError:
            self.fail(conn, rest=False)
            return
        if done is None:
            if parsed is data:
                buf += data
            return
        status, keep, used = done
        if conn.measured:
            self.answered(conn, status, now)
        if keep and data and used == len(parsed):
            buf.clear()
        else:
            self.close(conn)
        self.free(conn, now)

    def answered(self, conn: Conn, status: int, now: float) -> None:
        """Count a measured request's answer: its status and latency; 5xx is an error."""
        self.completed += 1
        self.in_phase += now <= self.t_end
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.latencies.append((now - conn.origin) * 1000.0)
        if status >= 500:
            self.errors += 1

    def loop(self) -> None:
        """Run rounds until sending is over and no measured request is outstanding."""
        while True:
            now = self.clock()
            if self.resting:
                self.wake(now)
            sending = now < self.t_end
            self.dispatch(now, sending)
            if not sending and not any(c.busy and c.measured for c in self.conns):
                break
            if now >= self.next_scan:
                self.scan(now)
            self.poll(self.wait_s(now, sending))

    def wake(self, now: float) -> None:
        """Connections whose pause after a failed connect is over are idle again."""
        for conn in [c for c in self.resting if c.ready_at <= now]:
            self.resting.remove(conn)
            self.idle.append(conn)

    def dispatch(self, now: float, sending: bool) -> None:
        """Start requests on idle connections: those due (fixed rate), or one on each."""
        idle = self.idle
        if self.rate:
            schedule = self.schedule
            while self.next_i < schedule.total_n and schedule.due(self.next_i) <= now:
                self.queue.append((schedule.due(self.next_i), self.next_i >= schedule.warm_n))
                self.next_i += self.stride
            # Past the end, requests due before it still go once, on connections idle now.
            while self.queue and idle and (sending or not self.flushed):
                intended, measured = self.queue.popleft()
                self.begin(idle.popleft(), intended, measured)
            self.flushed = not sending
        elif sending:
            while idle:
                self.begin(idle.popleft(), None, now >= self.t0)

    def scan(self, now: float) -> None:
        """Fail the requests outstanding for longer than ``timeout_s``."""
        self.next_scan = now + TIMEOUT_SCAN_S
        for conn in self.conns:
            if conn.busy and now - conn.sent_at > self.timeout_s:
                self.fail(conn, rest=False)

    def wait_s(self, now: float, sending: bool) -> float:
        """How long the poll may wait: until the next scan, end, due request or wake-up."""
        wait = TIMEOUT_SCAN_S
        if sending:
            if self.t_end - now < wait:
                wait = self.t_end - now
            if self.rate and self.idle and self.next_i < self.schedule.total_n:
                wait = min(wait, self.schedule.due(self.next_i) - now)
            if self.resting:
                wait = min(wait, min(c.ready_at for c in self.resting) - now)
        return wait

    def poll(self, wait: float) -> None:
        """Wait up to ``wait`` seconds for events, then connect, write and read on them."""
        if wait > 0 and self.wait_fd is not None and (self.rate or wait < PRECISE_WAIT_S):
            # epoll counts its timeout in whole milliseconds (rounded up): select() on the
            # epoll descriptor wakes to the microsecond, on the same events.
            select.select([self.wait_fd], [], [], wait)
            wait = 0.0
        events = self.poller.poll(max(wait, 0.0) * self.per_second)
        self.epoch += 1
        epoch = self.epoch
        now = self.clock()
        by_fd = self.by_fd
        for fd, mask in events:
            ready = by_fd.get(fd)
            if ready is None or ready.epoch == epoch:  # closed, or a new socket on an old fd
                continue
            if ready.connecting:
                self.connected(ready)
                continue
            if mask & _OUT and ready.out:
                self.write(ready)
            if mask & (_IN | _BROKEN) and ready.sock is not None:
                self.readable(ready, now)

    def finish(self) -> dict[str, Any]:
        """Close everything; the result's fields but the client's CPU time."""
        end = self.clock()
        backlog = sum(1 for _, measured in self.queue if measured)
        for conn in self.conns:
            self.close(conn)
        if hasattr(self.poller, "close"):  # poll objects have none
            self.poller.close()
        self.latencies.sort()
        return {
            "duration_s": self.schedule.duration_s,
            "drain_s": max(0.0, end - self.t_end),
            "sent": self.sent,
            "completed": self.completed,
            "in_phase": self.in_phase,
            "errors": self.errors,
            "statuses": self.statuses,
            "latencies_ms": array.array("d", self.latencies).tobytes(),
            "rate": self.rate,
            "backlog": backlog,
        }
