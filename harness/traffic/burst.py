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
3. **Step**: release final bytes closed-loop (the next step once this one is answered). The
   first step releases no more than one request per thread (all of them where the fleet holds
   more than the limit, which is then crossed amid them), so that the client's window starts
   with every thread inside the app together (the window's start is the second critical
   point: a counter initialised by a plain ``set`` races there). While the admitted
   count is below ``limit - 1``, a step releases as many requests as still fit under the limit
   (the threads work through them and then wait on their lane's next ones);
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
:func:`harness.http.clock.now`. Everything ends by the run's ``deadline``; every request gets a
:class:`Record`, errors included.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from harness.fleet.exchange import Collector, Exchange
from harness.http import clock
from harness.http.records import Client, Record, Target
from harness.traffic.lanes import MAP_SPARE, Lane, build_lanes, fresh_connections
from harness.traffic.steps import fire

CHUNK = 1024  # requests armed at once; a burst is cut into chunks of this size


def connections_for(count: int) -> int:
    """The most connections a burst of ``count`` requests has open at once."""
    return int(min(count, CHUNK) * (1 + MAP_SPARE)) + 1


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
        lanes: list[Lane] = []
        try:
            lanes = build_lanes(target, [(c, clients[c].address, k) for c, _, k in chunk], deadline)
            mine: dict[int, list[Exchange]] = {c: [] for c, _, _ in chunk}
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
            fire(lanes, target.statuses, rooms, deadline, None if n else align, on_release)
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
    order. ``extra_headers``, when given, holds each request's own additional headers.
    For an async target, at most its concurrency go at once (they may all land on one worker),
    the next ones once those are answered."""
    extras = list(extra_headers) or [()] * len(request_ids)
    wave = target.threads if target.bounded else len(request_ids) or 1
    records: list[Record] = []
    for first in range(0, len(request_ids), wave):
        records += _fresh_wave(
            target,
            request_ids[first : first + wave],
            identity=identity,
            value=value,
            deadline=deadline,
            extras=extras[first : first + wave],
        )
    return [replace(r, index=i) for i, r in enumerate(records)]


def _fresh_wave(
    target: Target,
    request_ids: Sequence[str],
    *,
    identity: str,
    value: str,
    deadline: float,
    extras: Sequence[tuple[tuple[str, str], ...]],
) -> list[Record]:
    """:func:`fresh_requests`' requests sent together, each on a fresh connection."""
    exchanges = fresh_connections(target, identity, len(request_ids), deadline)
    collector = Collector(answered="close")
    rendered = target.request.render(value)
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
