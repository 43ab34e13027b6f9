"""Connections to the fleet's workers: one HTTP/1.1 exchange over a socket (parsed with h11,
its request armed and released byte by byte), and a ``selectors`` loop that reads many at once.

The burst engine (:mod:`harness.traffic.burst`) and the fleet's worker probe
(:mod:`harness.fleet.workers`) both speak through them. Answered sockets can be held open while
answers keep coming (measured: more overlap on gunicorn 27, whose main thread then waits in its
graceful close rather than competing with the request threads); if nothing is answered for
``HOLD_VALVE_S`` they are closed and holding stops.
"""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Iterable

import h11

from harness.fleet.probe_protocol import (
    PARENT_HEADER,
    PEER_HEADER,
    PROBE_PATH,
    REQUEST_HEADER,
    WORKER_HEADER,
)
from harness.host.ports import LOOPBACK
from harness.http import clock
from harness.http.records import Record
from harness.http.request_template import Rendered

HOLD_VALVE_S = 0.25

CONNECT_TIMEOUT_S = 5.0

_BODY_METHODS = {"POST", "PUT", "PATCH"}

PROBE_REQUEST = Rendered("GET", PROBE_PATH, (), b"")

_WORKER_HEADER = WORKER_HEADER.lower().encode()

_PARENT_HEADER = PARENT_HEADER.lower().encode()
_PEER_HEADER = PEER_HEADER.lower().encode()


class Exchange:
    """One connection (``sock`` is None when it never opened): its h11 state, the worker that
    owns it, and what came back."""

    def __init__(self, sock: socket.socket | None, host: str, port: int) -> None:
        self.sock = sock
        self.http = h11.Connection(our_role=h11.CLIENT)
        self.host = f"{host}:{port}"
        self.worker: str | None = None
        self.parent: str | None = None
        self.peer: str | None = None  # the client address the probe saw
        self.status: int | None = None
        self.error: str | None = None
        self.got_bytes = False  # any byte of a response yet
        self.request_id = ""
        self.head_length = 0
        self.tail = b""  # held back until the release: the head's final byte, and the body
        self.client = 0  # which of the burst's clients it belongs to
        self.budget = 0  # whose budget its admission spends: its client's, or one shared
        self.rendered = PROBE_REQUEST  # the request it will carry
        self.sent_at = 0.0
        self.received_at: float | None = None

    def request(self, req: Rendered, keep_alive: bool, request_id: str = "") -> bytes:
        """The bytes of ``req`` on this connection (with the harness's id, when given);
        ``head_length`` is where its head ends."""
        headers = [("Host", self.host), ("User-Agent", "throttle-harness"), ("Accept", "*/*")]
        headers += req.headers
        if req.body or req.method in _BODY_METHODS:
            headers.append(("Content-Length", str(len(req.body))))
        if request_id:
            self.request_id = request_id
            headers.append((REQUEST_HEADER, request_id))
        if not keep_alive:
            headers.append(("Connection", "close"))
        out = self.http.send(h11.Request(method=req.method, target=req.target, headers=headers))
        self.head_length = len(out or b"")
        if req.body:
            out = (out or b"") + (self.http.send(h11.Data(data=req.body)) or b"")
        return (out or b"") + (self.http.send(h11.EndOfMessage()) or b"")

    def feed(self, data: bytes) -> bool:
        """Take bytes from the socket (b"" at EOF); True once the response is complete."""
        self.got_bytes = self.got_bytes or bool(data)
        self.http.receive_data(data)
        try:
            while True:
                event = self.http.next_event()
                if isinstance(event, h11.Response):
                    self.status = event.status_code
                    for k, v in event.headers:
                        if k == _WORKER_HEADER:
                            self.worker = v.decode()
                        elif k == _PARENT_HEADER:
                            self.parent = v.decode()
                        elif k == _PEER_HEADER:
                            self.peer = v.decode()
                elif isinstance(event, h11.EndOfMessage):
                    return True
                elif event is h11.NEED_DATA:
                    return False
                elif isinstance(event, h11.ConnectionClosed):
                    return self._cut_short()
        except h11.RemoteProtocolError as exc:
            if not data:  # h11 (0.14 and 0.16 alike) raises at an end of file mid-response
                return self._cut_short()
            self.status, self.error = None, f"malformed response: {exc}"
            return True

    def _cut_short(self) -> bool:
        """The server closed the connection before its response was complete."""
        if not self.got_bytes:
            where = "before a response"
        elif self.status is None:
            where = "inside a response's head"
        else:
            where = "inside a response's body"
        self.status, self.error = None, f"connection closed {where}"
        return True

    @property
    def keeps_alive(self) -> bool:
        return self.http.their_state is h11.DONE and self.http.our_state is h11.DONE

    def send(self, data: bytes, deadline: float) -> None:
        """Send ``data`` whole (waiting for the socket if it is more than its buffer takes at
        once, not past ``deadline``), or mark the exchange as failed."""
        if self.error is not None or self.sock is None:
            return
        try:
            sent = self.sock.send(data)
            if sent < len(data):
                self.sock.settimeout(max(0.05, deadline - time.monotonic()))
                self.sock.sendall(data[sent:])
                self.sock.setblocking(False)
        except OSError as exc:
            self.error = f"send: {exc}"

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()

    def record(self, index: int, identity: str) -> Record:
        return Record(
            index,
            identity,
            self.sent_at,
            self.received_at,
            None if self.error else self.status,
            self.worker,
            self.error,
            self.request_id,
            peer=self.peer,
        )


class Collector:
    """Reads many exchanges with one selector until each is answered or time runs out.

    An answered connection is closed (``close``), left open for another request (``keep``),
    or held open while answers keep coming (``hold``, with the valve described above).
    """

    def __init__(self, answered: str) -> None:
        self.selector = selectors.DefaultSelector()
        self.pending: set[Exchange] = set()
        self.answered = answered
        self.held: list[Exchange] = []

    def add(self, exchange: Exchange) -> None:
        if exchange.error is None and exchange.sock is not None:
            self.pending.add(exchange)
            self.selector.register(exchange.sock, selectors.EVENT_READ, exchange)

    def run(self, deadline: float, until: Iterable[Exchange] | None = None) -> None:
        """Read until every pending exchange (or every one in ``until``) is answered."""
        watched = None if until is None else set(until)
        left = len(self.pending if watched is None else watched & self.pending)
        last_answer = time.monotonic()
        while left:
            now = time.monotonic()
            if now >= deadline:
                return
            if self.held and now - last_answer > HOLD_VALVE_S:
                self.release_held()
                self.answered = "close"  # nothing answered for a while: stop holding for good
            wait = deadline - now
            if self.answered == "hold":
                wait = min(wait, HOLD_VALVE_S / 4)
            for key, _ in self.selector.select(timeout=wait):
                ex: Exchange = key.data
                if self._read(ex):
                    last_answer = time.monotonic()
                    left -= watched is None or ex in watched

    def _read(self, ex: Exchange) -> bool:
        assert ex.sock is not None  # only exchanges with a socket are registered
        try:
            chunk = ex.sock.recv(65536)
        except BlockingIOError:
            return False
        except OSError as exc:
            chunk, ex.error = b"", f"recv: {exc}"
        if chunk and not ex.feed(chunk):
            return False
        if not chunk and ex.error is None:
            ex.feed(b"")
        ex.received_at = clock.now()
        self.selector.unregister(ex.sock)
        self.pending.discard(ex)
        if self.answered == "hold":
            self.held.append(ex)
        elif self.answered == "close" or not ex.keeps_alive:
            ex.close()  # a server that closes lingers until we do
        return True

    def release_held(self) -> None:
        for ex in self.held:
            ex.close()
        self.held.clear()

    def finish(self, why: str) -> None:
        """Mark what was never answered, close held connections and the selector."""
        for ex in self.pending:
            ex.error = ex.error or why
        self.release_held()
        self.selector.close()


def open_exchange(host: str, port: int, identity: str, deadline: float) -> Exchange:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if identity != LOOPBACK:
            sock.bind((identity, 0))
        sock.settimeout(max(0.05, min(CONNECT_TIMEOUT_S, deadline - time.monotonic())))
        sock.connect((host, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return Exchange(sock, host, port)
