"""The burst engine: connections mapped to workers first, then requests released in waves.

Detection power is how many requests run the throttle's check at the same moment, so the
engine works closer to the socket than a pooled HTTP client (measured side by side in
``tests/benchmarks/burst_power.py``):

1. **Map**: open more connections than requests and ask each, over keep-alive, the probe path
   (answered by the probe, never by the app, so it costs no throttle budget). Each answer names
   the worker that owns the connection; an even share per worker is kept. Workers without
   keep-alive (gunicorn's sync worker) cannot be mapped: fresh connections are used instead.
2. **Arm**: send every request but its final byte, in wave order, so that each worker's threads
   sit on the first wave's connections waiting for that byte.
3. **Fire in waves**: release the final bytes of ``threads`` requests per worker together; the
   next wave goes when this one is answered (closed loop). Once a wave is refused whole, or
   waves keep timing out, the rest goes out at once.
4. **Collect** with one ``selectors`` loop, parsing with h11. Answered sockets are held open
   while answers keep coming (measured: more overlap on gunicorn 27, whose main thread then
   waits in its graceful close rather than competing with the request threads); if nothing is
   answered for ``HOLD_VALVE_S`` they are closed and holding stops.

Every request gets a :class:`Record`, errors included, so accounting always closes.
"""

from __future__ import annotations

import resource
import selectors
import socket
import statistics
import time
from collections import defaultdict, deque
from collections.abc import Iterable

import h11

from harness.errors import UsageError
from harness.probe_protocol import PROBE_PATH, WORKER_HEADER
from harness.traffic.records import Record

MAP_SPARE = 0.5  # open 50% more connections than requests, to pick an even share per worker
ARM_PAUSE_S = 0.02  # after arming, per request: 0.1 ms more, for the server to read the heads
FIRST_WAVE_TIMEOUT_S = 2.0
WAVE_TIMEOUT_FACTOR = 8  # a later wave times out after 8x the median wave
MAX_WAVE_TIMEOUTS = 3
HOLD_VALVE_S = 0.25
_WORKER_HEADER = WORKER_HEADER.lower().encode()
_FD_MARGIN = 64


class _Exchange:
    """One connection: its h11 state, the worker that owns it, and what came back."""

    def __init__(self, sock: socket.socket, host: str, port: int) -> None:
        self.sock = sock
        self.http = h11.Connection(our_role=h11.CLIENT)
        self.host = f"{host}:{port}"
        self.worker: str | None = None
        self.status: int | None = None
        self.error: str | None = None
        self.sent_at = 0.0
        self.received_at: float | None = None

    def request(self, path: str, keep_alive: bool) -> bytes:
        headers = [("Host", self.host), ("User-Agent", "throttle-harness"), ("Accept", "*/*")]
        if not keep_alive:
            headers.append(("Connection", "close"))
        head = self.http.send(h11.Request(method="GET", target=path, headers=headers)) or b""
        return head + (self.http.send(h11.EndOfMessage()) or b"")

    def feed(self, data: bytes) -> bool:
        """Take bytes from the socket (b"" at EOF); True once the response is complete."""
        self.http.receive_data(data)
        try:
            while True:
                event = self.http.next_event()
                if isinstance(event, h11.Response):
                    self.status = event.status_code
                    self.worker = next(
                        (v.decode() for k, v in event.headers if k == _WORKER_HEADER), None
                    )
                elif isinstance(event, h11.EndOfMessage):
                    return True
                elif event is h11.NEED_DATA:
                    return False
                elif isinstance(event, h11.ConnectionClosed):
                    self.status, self.error = None, "connection closed before a response"
                    return True
        except h11.RemoteProtocolError as exc:
            self.status, self.error = None, f"malformed response: {exc}"
            return True

    @property
    def keeps_alive(self) -> bool:
        return self.http.their_state is h11.DONE and self.http.our_state is h11.DONE


class _Collector:
    """Reads many exchanges with one selector until each is answered or time runs out.

    An answered connection is closed (``close``), left open for another request (``keep``),
    or held open while answers keep coming (``hold``, with the valve described above).
    """

    def __init__(self, answered: str) -> None:
        self.selector = selectors.DefaultSelector()
        self.pending: set[_Exchange] = set()
        self.answered = answered
        self.held: list[_Exchange] = []

    def add(self, exchange: _Exchange) -> None:
        if exchange.error is None:
            self.pending.add(exchange)
            self.selector.register(exchange.sock, selectors.EVENT_READ, exchange)

    def run(self, deadline: float, until: Iterable[_Exchange] | None = None) -> None:
        """Read until every pending exchange (or every one in ``until``) is answered."""
        watched = self.pending if until is None else set(until)
        last_answer = time.monotonic()
        while watched & self.pending:
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
                if self._read(key.data):
                    last_answer = time.monotonic()

    def _read(self, ex: _Exchange) -> bool:
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
        ex.received_at = time.time()
        self.selector.unregister(ex.sock)
        self.pending.discard(ex)
        if self.answered == "hold":
            self.held.append(ex)
        elif self.answered == "close" or not ex.keeps_alive:
            ex.sock.close()  # a server that closes lingers until we do
        return True

    def release_held(self) -> None:
        for ex in self.held:
            ex.sock.close()
        self.held.clear()

    def finish(self, timeout_s: float) -> None:
        """Mark what was never answered, close held connections and the selector."""
        for ex in self.pending:
            ex.error = ex.error or f"no response within {timeout_s:g}s"
        self.release_held()
        self.selector.close()


def burst(
    host: str,
    port: int,
    path: str,
    count: int,
    *,
    identity: str = "127.0.0.1",
    threads: int = 1,
    timeout_s: float = 60.0,
) -> list[Record]:
    """Send ``count`` GET requests to ``host:port`` as one burst; one :class:`Record` each.

    ``identity`` is the loopback source address the requests come from (the client address a
    throttle sees); ``threads`` is the server's threads per worker, the size of a wave.
    """
    opened = int(count * (1 + MAP_SPARE))
    _ensure_fd_budget(opened)
    deadline = time.monotonic() + timeout_s
    waves: list[list[_Exchange]] = []
    try:
        if threads > 1:  # gthread workers keep connections alive: map them
            pools = _connections_by_worker(host, port, opened, identity, deadline, True)
            waves = _even_waves(pools, count, threads)
        missing = count - sum(len(w) for w in waves)
        if missing:  # no keep-alive (sync workers), or too few mapped: fresh connections
            waves.append([_open_or_error(host, port, identity) for _ in range(missing)])
        return _fire(waves, path, identity, deadline, timeout_s)
    finally:
        for wave in waves:
            for ex in wave:
                ex.sock.close()


def probe_workers(host: str, port: int, count: int, timeout_s: float = 5.0) -> set[str]:
    """The workers that answered ``count`` concurrent probe requests (no app involved)."""
    pools = _connections_by_worker(
        host, port, count, "127.0.0.1", time.monotonic() + timeout_s, keep_alive=False
    )
    for pool in pools.values():
        for ex in pool:
            ex.sock.close()
    return set(pools)


def _connections_by_worker(
    host: str, port: int, count: int, identity: str, deadline: float, keep_alive: bool
) -> dict[str, list[_Exchange]]:
    """Open ``count`` connections and ask each the probe path; group them by answering worker.

    With ``keep_alive`` only connections the server keeps open are returned, ready for their
    next request; the others are closed.
    """
    opened: list[_Exchange] = []
    for _ in range(count):
        try:
            opened.append(_open(host, port, identity))
        except OSError:
            break  # not listening yet, or out of ports: use what opened
    collector = _Collector(answered="keep" if keep_alive else "close")
    for ex in opened:
        try:
            ex.sock.send(ex.request(PROBE_PATH, keep_alive))
        except OSError as exc:
            ex.error = f"send: {exc}"
        collector.add(ex)
    collector.run(deadline)
    collector.finish(0)
    pools: dict[str, list[_Exchange]] = defaultdict(list)
    for ex in opened:
        if ex.status == 200 and ex.worker and (ex.keeps_alive or not keep_alive):
            if keep_alive:
                ex.http.start_next_cycle()
            pools[ex.worker].append(ex)
        else:
            ex.sock.close()
    return dict(pools)


def _even_waves(
    pools: dict[str, list[_Exchange]], count: int, threads: int
) -> list[list[_Exchange]]:
    """Pick up to ``count`` connections, as evenly over the workers as they allow, and cut
    them into waves of ``threads`` per worker. Connections not picked are closed."""
    queues = [deque(pool) for pool in pools.values()]
    picked: list[list[_Exchange]] = [[] for _ in queues]
    left = count
    while left and any(queues):
        for queue, mine in zip(queues, picked, strict=True):
            if queue and left:
                mine.append(queue.popleft())
                left -= 1
    for queue in queues:
        for ex in queue:
            ex.sock.close()
    depth = max((len(mine) for mine in picked), default=0)
    waves = [
        [ex for mine in picked for ex in mine[start:start + threads]]
        for start in range(0, depth, threads)
    ]
    return [wave for wave in waves if wave]


def _fire(
    waves: list[list[_Exchange]], path: str, identity: str, deadline: float, timeout_s: float
) -> list[Record]:
    exchanges = [ex for wave in waves for ex in wave]
    requests = [ex.request(path, keep_alive=False) for ex in exchanges]
    heads = {ex: req[:-1] for ex, req in zip(exchanges, requests, strict=True)}
    tails = {ex: req[-1:] for ex, req in zip(exchanges, requests, strict=True)}
    for ex in exchanges:  # arm: all but the final byte, in wave order
        _send(ex, heads[ex])
    time.sleep(ARM_PAUSE_S + 0.0001 * len(exchanges))
    collector = _Collector(answered="hold")
    for ex in exchanges:
        collector.add(ex)
    try:
        _release_in_waves(waves, tails, collector, deadline)
        collector.run(deadline)
    finally:
        collector.finish(timeout_s)
    return [
        Record(i, identity, ex.sent_at, ex.received_at,
               None if ex.error else ex.status, ex.worker, ex.error)
        for i, ex in enumerate(exchanges)
    ]


def _release_in_waves(
    waves: list[list[_Exchange]], tails: dict[_Exchange, bytes], collector: _Collector,
    deadline: float,
) -> None:
    """Send each wave's final bytes together; the next wave once this one is answered."""
    took: list[float] = []
    timeouts = 0
    for n, wave in enumerate(waves):
        started = time.monotonic()
        for ex in wave:  # the hot loop: nothing in it but the send
            ex.sent_at = time.time()
            _send(ex, tails[ex])
        rest = waves[n + 1:]
        if not rest:
            return
        limit = WAVE_TIMEOUT_FACTOR * statistics.median(took) if took else FIRST_WAVE_TIMEOUT_S
        collector.run(min(deadline, started + max(0.02, limit)), until=wave)
        if any(ex in collector.pending for ex in wave):
            timeouts += 1
        else:
            took.append(time.monotonic() - started)
        refused = all(ex.status == 429 for ex in wave)
        if refused or timeouts >= MAX_WAVE_TIMEOUTS:  # saturated, or out of step: the rest
            for ex in (ex for later in rest for ex in later):
                ex.sent_at = time.time()
                _send(ex, tails[ex])
            return


def _send(ex: _Exchange, data: bytes) -> None:
    if ex.error is None:
        try:
            ex.sock.send(data)
        except OSError as exc:
            ex.error = f"send: {exc}"


def _open(host: str, port: int, identity: str) -> _Exchange:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if identity != "127.0.0.1":
            sock.bind((identity, 0))
        sock.settimeout(10)
        sock.connect((host, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return _Exchange(sock, host, port)


def _open_or_error(host: str, port: int, identity: str) -> _Exchange:
    try:
        return _open(host, port, identity)
    except OSError as exc:
        ex = _Exchange(socket.socket(), host, port)
        ex.error = f"connect: {exc}"
        return ex


def _ensure_fd_budget(count: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = count + _FD_MARGIN
    if needed <= soft:
        return
    if hard != resource.RLIM_INFINITY and needed > hard:
        raise UsageError(
            f"a burst of {count} connections needs {needed} open files, but the limit is "
            f"{hard} (ulimit -n)"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
