"""The burst engine: connections mapped to workers, armed, then released step by step so that
the request that takes the limit's last place has every thread of the fleet beside it.

Detection power is how many requests run the throttle's check together when the count crosses
the limit (measured from the probe's stamps, see :mod:`harness.verdict.evidence`, and side by
side with other clients in ``tests/benchmarks/``):

1. **Map**: open connections and ask each, over keep-alive, the probe path (answered by the
   probe, never by the app, and not counted towards gunicorn's ``--max-requests``). Each answer
   names the worker that owns the connection; an even share per worker is kept. Workers without
   keep-alive (gunicorn's sync worker) cannot be mapped: fresh connections form one lane that
   all workers take from, in the order they were opened.
2. **Arm**: send every request but the final byte of its head (and its body, if any: an app
   may be called before it reads its body). A worker's threads take its armed connections in
   order and wait there for that byte, so the requests a lane's threads hold are always the
   next ones not yet released.
3. **Step**: release final bytes closed-loop (the next step once this one is answered). While
   the admitted count is below ``limit - 1``, a step releases as many requests as still fit
   under the limit (the threads work through them and then wait on their lane's next ones),
   the first step one per thread only, so that the client's window starts with every thread
   inside the app together (the window's start is the second critical point: a counter
   initialised by a plain ``set`` races there);
   from then on a step releases every thread's request at once. So the crossing
   of the limit happens with the whole fleet inside the app: a read-compare-increment race of a
   fraction of a millisecond has every chance to show, and a long read-check-write (DRF's) keeps
   overlapping after it. Once a whole step past the limit is refused, the rest goes at once.
4. **Collect** with one ``selectors`` loop, parsing with h11. Answered sockets are held open
   while answers keep coming (measured: more overlap on gunicorn 27, whose main thread then
   waits in its graceful close rather than competing with the request threads); if nothing is
   answered for ``HOLD_VALVE_S`` they are closed and holding stops.

Large bursts go in chunks of ``CHUNK`` requests, so that file descriptors, gunicorn's
``worker_connections`` and the listen backlog stay bounded whatever the count. A burst can start
at a chosen phase of the epoch clock (``align``), once it is armed. Record times come from
:func:`harness.traffic.clock.now`. Everything ends by the run's ``deadline``; every request gets a
:class:`Record`, errors included.
"""

from __future__ import annotations

import math
import selectors
import socket
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

import h11

from harness.fleet.ports import LOOPBACK
from harness.fleet.probe_protocol import PARENT_HEADER, PROBE_PATH, REQUEST_HEADER, WORKER_HEADER
from harness.traffic import clock
from harness.traffic.records import Client, Record, Target
from harness.traffic.request_template import Rendered, Statuses

CHUNK = 1024  # requests armed at once; a burst is cut into chunks of this size
MAP_SPARE = 0.5  # open up to 50% more connections than requests, for an even share per worker
MAP_ROUNDS = 3
ARM_PAUSE_S = 0.02  # after arming, per request: 0.1 ms more, for the server to read the heads
ALIGN_MARGIN_S = 0.005  # an aligned burst starts this long after the window edge
FIRST_STEP_TIMEOUT_S = 0.5  # per round (each thread serving one request) of the first step
STEP_TIMEOUT_FACTOR = 8  # a later step times out after 8x the median round, per round
MAX_STEP_TIMEOUTS = 3
HOLD_VALVE_S = 0.25
CONNECT_TIMEOUT_S = 5.0
_BODY_METHODS = {"POST", "PUT", "PATCH"}
_PROBE = Rendered("GET", PROBE_PATH, (), b"")
_WORKER_HEADER = WORKER_HEADER.lower().encode()
_PARENT_HEADER = PARENT_HEADER.lower().encode()


def connections_for(count: int) -> int:
    """The most connections a burst of ``count`` requests has open at once."""
    return int(min(count, CHUNK) * (1 + MAP_SPARE)) + 1


class _Exchange:
    """One connection (``sock`` is None when it never opened): its h11 state, the worker that
    owns it, and what came back."""

    def __init__(self, sock: socket.socket | None, host: str, port: int) -> None:
        self.sock = sock
        self.http = h11.Connection(our_role=h11.CLIENT)
        self.host = f"{host}:{port}"
        self.worker: str | None = None
        self.parent: str | None = None
        self.status: int | None = None
        self.error: str | None = None
        self.got_bytes = False  # any byte of a response yet
        self.request_id = ""
        self.head_length = 0
        self.tail = b""  # held back until the release: the head's final byte, and the body
        self.client = 0  # which of the burst's clients it belongs to
        self.budget = 0  # whose budget its admission spends: its client's, or one shared
        self.rendered = _PROBE  # the request it will carry
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
        )


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
        if exchange.error is None and exchange.sock is not None:
            self.pending.add(exchange)
            self.selector.register(exchange.sock, selectors.EVENT_READ, exchange)

    def run(self, deadline: float, until: Iterable[_Exchange] | None = None) -> None:
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
                ex: _Exchange = key.data
                if self._read(ex):
                    last_answer = time.monotonic()
                    left -= watched is None or ex in watched

    def _read(self, ex: _Exchange) -> bool:
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


@dataclass
class _Lane:
    """Connections served by the same threads, in the order those threads take them: one
    worker's mapped connections (``slots`` = its threads), or, for workers without keep-alive,
    fresh connections every worker accepts from (``slots`` = the workers)."""

    slots: int
    queue: list[_Exchange] = field(default_factory=list)
    released: int = 0

    def take(self, n: int) -> list[_Exchange]:
        taken = self.queue[self.released : self.released + n]
        self.released += len(taken)
        return taken

    @property
    def left(self) -> int:
        return len(self.queue) - self.released


def burst(
    target: Target,
    count: int,
    *,
    clients: Sequence[Client],
    limit: int,
    tag: str,
    deadline: float,
    align: tuple[float, float] | None = None,
    on_release: Callable[[int], None] | None = None,
    shared: bool = False,
) -> list[Record]:
    """Send ``count`` of ``target``'s requests from each of ``clients`` as one burst; one
    :class:`Record` each, client after client.

    A client sends from its loopback address (the client address a throttle sees) with its
    ``{identity}`` value in the request; ``limit`` is the claimed limit per client the steps aim
    at, or, when ``shared``, the one budget of every client together; request ids are
    ``TAG-INDEX``; nothing runs past ``deadline`` (``time.monotonic()``).
    With ``align`` (period, offset), the first request is released just after the next epoch
    time that is ``offset`` past a multiple of ``period``, once everything is armed.
    Clients go in chunks of at most ``CHUNK`` requests, each client's in one chunk where it fits.
    ``on_release`` (a fault's hook) is called after each step is sent, before its answers are
    read, with how many requests of the chunk have been released so far.
    """
    rendered = [target.request.render(c.value) for c in clients]
    admitted = [0] * len(clients)
    records: list[Record] = []
    for n, chunk in enumerate(_chunks(len(clients), count)):
        lanes: list[_Lane] = []
        try:
            lanes = _lanes(target, [(c, clients[c].address, k) for c, _, k in chunk], deadline)
            mine: dict[int, list[_Exchange]] = {c: [] for c, _, _ in chunk}
            for ex in (ex for lane in lanes for ex in lane.queue):
                ex.rendered = rendered[ex.client]
                ex.budget = 0 if shared else ex.client
                mine[ex.client].append(ex)
            for c, first, _ in chunk:
                for k, ex in enumerate(mine[c], c * count + first):
                    ex.request_id = f"{tag}-{k}"
            rooms = (
                {0: limit - sum(admitted)}
                if shared
                else {c: limit - admitted[c] for c, _, _ in chunk}
            )
            _fire(lanes, target.statuses, rooms, deadline, None if n else align, on_release)
            for c, first, _ in chunk:
                for k, ex in enumerate(mine[c], c * count + first):
                    records.append(ex.record(k, clients[c].address))
                    admitted[c] += target.statuses.admitted(ex.status) and ex.error is None
        finally:
            for lane in lanes:
                for ex in lane.queue:
                    ex.close()
    return sorted(records, key=lambda r: r.index)


def _chunks(clients: int, count: int) -> list[list[tuple[int, int, int]]]:
    """(client, first request, requests) groups of at most ``CHUNK`` requests: whole clients
    packed together, a client with more than ``CHUNK`` requests alone in several."""
    chunks: list[list[tuple[int, int, int]]] = []
    current: list[tuple[int, int, int]] = []
    for client in range(clients):
        if count > CHUNK:
            chunks += [
                [(client, first, min(CHUNK, count - first))] for first in range(0, count, CHUNK)
            ]
            continue
        if current and (len(current) + 1) * count > CHUNK:
            chunks.append(current)
            current = []
        current.append((client, 0, count))
    return chunks + ([current] if current else [])


def fresh_requests(
    target: Target,
    request_ids: Sequence[str],
    *,
    identity: str,
    value: str,
    deadline: float,
    extra_headers: Sequence[tuple[tuple[str, str], ...]] = (),
) -> list[Record]:
    """Send one request per id, all at once, each on a fresh connection (for requests re-sent
    because they never reached the app, confirmations, bypass attempts); one record each, in
    order. ``extra_headers``, when given, holds each request's own additional headers."""
    exchanges = _fresh(target, identity, len(request_ids), deadline)
    collector = _Collector(answered="close")
    rendered = target.request.render(value)
    extras = list(extra_headers) or [()] * len(request_ids)
    try:
        for ex, request_id, extra in zip(exchanges, request_ids, extras, strict=True):
            request = ex.request(
                replace(rendered, headers=rendered.headers + extra), False, request_id
            )
            ex.sent_at = clock.now()
            ex.send(request, deadline)
            collector.add(ex)
        collector.run(deadline)
    finally:
        collector.finish("no response before the run's deadline")
        for ex in exchanges:
            ex.close()
    return [ex.record(i, identity) for i, ex in enumerate(exchanges)]


def probe_workers(host: str, port: int, count: int, timeout_s: float = 5.0) -> dict[str, str]:
    """The workers that answered ``count`` concurrent probe requests (no app involved), each
    with the pid of its parent process."""
    pools = _probe_connections(
        host, (port,), [(0, LOOPBACK)] * count, time.monotonic() + timeout_s, keep_alive=False
    )
    found = {}
    for worker, pool in pools.items():
        found[worker] = pool[0].parent or "?"
        for ex in pool:
            ex.close()
    return found


def _lanes(target: Target, wanted: Sequence[tuple[int, str, int]], deadline: float) -> list[_Lane]:
    """For each (client, address, count) in ``wanted``, ``count`` connections from ``address``,
    in lanes: mapped per worker where workers keep connections alive (one client's evenly
    over the workers; several clients' client after client in each worker's lane), the rest
    (or all, for sync workers) fresh in one more lane."""
    lanes: list[_Lane] = []
    if target.threads > 1:
        by_worker: dict[str, list[_Exchange]] = defaultdict(list)
        for mapped in _mapped_clients(target, wanted, deadline):
            for worker, queue in mapped.items():  # client after client in each worker's lane
                by_worker[worker] += queue
        lanes = [_Lane(target.threads, queue) for queue in by_worker.values() if queue]
    have: dict[int, int] = defaultdict(int)
    for ex in (ex for lane in lanes for ex in lane.queue):
        have[ex.client] += 1
    fresh: list[list[_Exchange]] = []
    for client, address, count in wanted:
        fresh.append(_fresh(target, address, count - have[client], deadline))
        for ex in fresh[-1]:
            ex.client = client
    if any(fresh):
        # Unmapped connections land on any worker: as many at once as one worker's threads.
        slots = target.workers if target.threads == 1 else target.threads
        lanes.append(_Lane(slots, [ex for queue in fresh for ex in queue]))
    return lanes


def _fresh(target: Target, identity: str, count: int, deadline: float) -> list[_Exchange]:
    """``count`` fresh connections, to each of the target's ports in turn; after the first that
    cannot be opened, no more are tried."""
    opened: list[_Exchange] = []
    failure = ""
    ports = target.ports
    for i in range(count):
        if not failure:
            try:
                opened.append(_open(target.host, ports[i % len(ports)], identity, deadline))
                continue
            except OSError as exc:
                failure = f"connect: {exc}"
        ex = _Exchange(None, target.host, target.port)
        ex.error = failure
        opened.append(ex)
    return opened


def _mapped_clients(
    target: Target, wanted: Sequence[tuple[int, str, int]], deadline: float
) -> list[dict[str, list[_Exchange]]]:
    """Each client's connections by worker: one client mapped in rounds for an even share
    (:func:`_mapped`); several in a single round, each client then taking an even share of what
    it got."""
    if len(wanted) == 1:
        return [_mapped(target, *wanted[0], deadline)]
    sources = [(client, address) for client, address, count in wanted for _ in range(count)]
    pools = _probe_connections(target.host, target.ports, sources, deadline, keep_alive=True)
    per_client: dict[int, dict[str, list[_Exchange]]] = defaultdict(lambda: defaultdict(list))
    for worker, pool in pools.items():
        for ex in pool:
            per_client[ex.client][worker].append(ex)
    return [_even_share(per_client[client], count) for client, _, count in wanted]


def _mapped(
    target: Target, client: int, address: str, count: int, deadline: float
) -> dict[str, list[_Exchange]]:
    """One client's connections by worker, opened in rounds until each worker has its share
    (or the spare is spent); an even share per worker is kept, the rest closed."""
    share = math.ceil(count / target.workers)
    budget = int(count * (1 + MAP_SPARE))
    pools: dict[str, list[_Exchange]] = defaultdict(list)
    to_open = count
    try:
        for _ in range(MAP_ROUNDS):
            for worker, pool in _probe_connections(
                target.host,
                target.ports,
                [(client, address)] * to_open,
                deadline,
                keep_alive=True,
            ).items():
                pools[worker] += pool
            budget -= to_open
            seen = [*pools, *(f"?{i}" for i in range(max(0, target.workers - len(pools))))]
            short = sum(max(0, share - len(pools.get(w, []))) for w in seen)
            to_open = min(budget, 2 * short)
            if not short or to_open <= 0:
                break
    except BaseException:
        for pool in pools.values():
            for ex in pool:
                ex.close()
        raise
    return _even_share(pools, count)


def _even_share(pools: dict[str, list[_Exchange]], count: int) -> dict[str, list[_Exchange]]:
    """Pick up to ``count`` connections, as evenly over the workers as they allow; the ones
    not picked are closed."""
    picked: dict[str, list[_Exchange]] = {worker: [] for worker in pools}
    left = count
    depth = 0
    while left and any(len(pool) > depth for pool in pools.values()):
        for worker, pool in pools.items():
            if len(pool) > depth and left:
                picked[worker].append(pool[depth])
                left -= 1
        depth += 1
    for worker, pool in pools.items():
        for ex in pool[len(picked[worker]) :]:
            ex.close()
    return picked


def _probe_connections(
    host: str,
    ports: Sequence[int],
    sources: Sequence[tuple[int, str]],
    deadline: float,
    keep_alive: bool,
) -> dict[str, list[_Exchange]]:
    """Open one connection per (client, address) of ``sources`` (to each of ``ports`` in turn),
    each asking the probe path at once; group them by the worker that answered. With
    ``keep_alive`` only connections the server keeps open are returned, ready for their next
    request; the others are closed."""
    opened: list[_Exchange] = []
    collector = _Collector(answered="keep" if keep_alive else "close")
    pools: dict[str, list[_Exchange]] = defaultdict(list)
    try:
        for i, (client, address) in enumerate(sources):
            try:
                ex = _open(host, ports[i % len(ports)], address, deadline)
            except OSError:
                break  # not listening yet, or out of ports: use what opened
            ex.client = client
            opened.append(ex)
            ex.send(ex.request(_PROBE, keep_alive), deadline)
            collector.add(ex)
        collector.run(min(deadline, time.monotonic() + CONNECT_TIMEOUT_S))
    finally:
        collector.finish("no answer to the probe")
        for ex in opened:
            usable = ex.status == 200 and ex.worker and ex.error is None
            if usable and ex.worker and (ex.keeps_alive or not keep_alive):
                if keep_alive:
                    ex.http.start_next_cycle()
                pools[ex.worker].append(ex)
            else:
                ex.close()
    return dict(pools)


def _fire(
    lanes: list[_Lane],
    statuses: Statuses,
    rooms: dict[int, int],
    deadline: float,
    align: tuple[float, float] | None,
    on_release: Callable[[int], None] | None = None,
) -> None:
    """Arm every lane, then release in steps aimed at the limit; ``rooms`` holds how many
    requests the limit still admits for each budget (a client's, or one shared)."""
    exchanges = [ex for lane in lanes for ex in lane.queue]
    for ex in exchanges:  # arm: all but the head's final byte (and the body), in lane order
        request_bytes = ex.request(ex.rendered, False, ex.request_id)
        cut = ex.head_length - 1  # an app may run before its body is in: hold the body too
        ex.tail = request_bytes[cut:]
        ex.send(request_bytes[:cut], deadline)
    time.sleep(ARM_PAUSE_S + 0.0001 * len(exchanges))
    wait_for_phase(align, deadline)
    collector = _Collector(answered="hold")
    for ex in exchanges:
        collector.add(ex)
    try:
        _release_in_steps(lanes, collector, statuses, rooms, deadline, on_release)
        collector.run(deadline)
    finally:
        collector.finish("no response before the run's deadline")


def _release_in_steps(
    lanes: list[_Lane],
    collector: _Collector,
    statuses: Statuses,
    rooms: dict[int, int],
    deadline: float,
    on_release: Callable[[int], None] | None = None,
) -> None:
    """Release final bytes step by step; each step once the previous one is answered."""
    took: list[float] = []  # seconds per round of the steps answered in time
    capacity = max(1, sum(lane.slots for lane in lanes))
    released: list[_Exchange] = []
    timeouts = 0
    saturated = False  # a whole step past the limit was refused: the rest can go at once
    while any(lane.left for lane in lanes):
        admitted = dict.fromkeys(rooms, 0)  # recounted: late answers count too
        refused: set[int] = set()
        for ex in released:
            admitted[ex.budget] += statuses.admitted(ex.status)
            if statuses.refused(ex.status):
                refused.add(ex.budget)
        # Past its limit: admitted it all, or refused once (below it: a shared budget, say).
        crossed = frozenset(c for c in rooms if admitted[c] >= rooms[c] or c in refused)
        step = []
        if not (saturated or time.monotonic() >= deadline or timeouts >= MAX_STEP_TIMEOUTS):
            below = {c: rooms[c] - 1 - admitted[c] for c in rooms}
            step = _next_step(lanes, below, crossed, first=not released)
        if not step:  # the rest, at once
            step = [ex for lane in lanes for ex in lane.take(lane.left)]
        live = [ex for ex in step if ex.error is None and ex.sock is not None]
        now = clock.now()  # before any of them is sent: earlier than every admission
        short: list[tuple[_Exchange, int]] = []
        for ex in live:  # the hot loop: nothing in it but the send
            try:
                sent = ex.sock.send(ex.tail)  # type: ignore[union-attr]
                if sent < len(ex.tail):
                    short.append((ex, sent))
            except OSError as exc:
                ex.error = f"send: {exc}"
        for ex, sent in short:  # a large body that did not fit the socket's buffer at once
            ex.send(ex.tail[sent:], deadline)
        for ex in step:
            ex.sent_at = now
        released += step
        if on_release is not None:
            on_release(len(released))
        if not any(lane.left for lane in lanes):
            return
        if not live:
            continue  # nothing went out (connections that never opened): nothing to wait for
        started = time.monotonic()
        rounds = math.ceil(len(step) / capacity)  # how many times each thread serves this step
        unit = STEP_TIMEOUT_FACTOR * statistics.median(took) if took else FIRST_STEP_TIMEOUT_S
        collector.run(min(deadline, started + max(0.02, unit * rounds)), until=live)
        if any(ex in collector.pending for ex in live):
            timeouts += 1
        else:
            took.append((time.monotonic() - started) / rounds)
        for ex in step:
            admitted[ex.budget] += statuses.admitted(ex.status)
            if statuses.refused(ex.status):
                refused.add(ex.budget)
        saturated = all(admitted[c] >= rooms[c] or c in refused for c in rooms) and all(
            statuses.refused(ex.status) for ex in step
        )


def wait_for_phase(align: tuple[float, float] | None, deadline: float) -> None:
    """Sleep until just after the next epoch time (:func:`harness.traffic.clock.now`, the clock of
    record times) ``offset`` past a multiple of ``period`` (``align`` = (period, offset)); not
    past ``deadline``."""
    if align is None:
        return
    period, offset = align
    now = clock.now()
    start = math.floor((now - offset) / period + 1) * period + offset + ALIGN_MARGIN_S
    time.sleep(max(0.0, min(start - now, deadline - time.monotonic())))


def _next_step(
    lanes: list[_Lane],
    below_limit: dict[int, int],
    crossed: frozenset[int] = frozenset(),
    first: bool = False,
) -> list[_Exchange]:
    """What to release next.

    While some lane's next requests belong to a client with more than one place left under its
    limit (``below_limit``): every such request (spread evenly over the lanes; each lane's
    threads take them in order and then wait on the lane's next ones), and with them the
    leftovers of clients already past their limit (``crossed``), which keep the lanes in step;
    the ``first`` step of a burst no more than one per thread, so that the first requests of
    the clients at the lanes' heads, which start their windows, enter the app together (a
    worker handed many more at once spends a few milliseconds dealing them out to its threads,
    spreading their entries apart: measured on gthread). Once none has: every request the lanes'
    threads hold, which crosses a client's limit with every thread beside it.
    """
    left = dict(below_limit)

    def approaches(lane: _Lane) -> bool:
        rest = lane.queue[lane.released :]
        head = next((ex for ex in rest if ex.budget not in crossed), None)
        return head is not None and left.get(head.budget, 0) > 0

    if not any(approaches(lane) for lane in lanes):
        return [ex for lane in lanes for ex in lane.take(lane.slots)]
    step: list[_Exchange] = []
    room = {id(lane): lane.slots if first else lane.left for lane in lanes}
    progress = True
    while progress:
        progress = False
        for lane in lanes:
            head = lane.queue[lane.released] if lane.left and room[id(lane)] else None
            if head is not None and (head.budget in crossed or left.get(head.budget, 0) > 0):
                room[id(lane)] -= 1
                step += lane.take(1)
                left[head.budget] = left.get(head.budget, 0) - 1
                progress = True
    return step


def _open(host: str, port: int, identity: str, deadline: float) -> _Exchange:
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
    return _Exchange(sock, host, port)
