"""Sustained traffic: each client sends at a steady pace for several periods, one request at a
time, in turn over every worker.

A burst shows what happens where a client crosses its limit; sustained traffic shows what
happens after: whether a client sending faster than the rate is let back in as its window
moves on (a limiter that counts refused hits, or refreshes its TTL on every hit, never does),
and whether one sending slower is never refused. Clients' requests are interleaved, each
client's evenly spaced at ``interval_s``; a request whose slot has passed (an earlier answer was
slow) goes at once.

Each client keeps one connection per worker (mapped through the probe, as the burst engine's
are) and sends its requests on them in turn, so that every worker serves it even when it sends
a few requests only (fresh connections can all land on one worker: a below-rate control then
proved nothing about shared state). Where workers do not keep connections alive (gunicorn's
sync worker), or a connection would sit idle for longer than ``IDLE_LIMIT_S`` (the fleet keeps
one open for 10 s), each request goes on a fresh connection instead; a kept connection that
fails is dropped.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

from harness.fleet.exchange import Collector, Exchange
from harness.http import clock
from harness.http.records import Client, Record, Target
from harness.traffic.burst import fresh_requests
from harness.traffic.lanes import mapped

MAP_PER_WORKER = 4  # connections opened per worker to find each worker one (the rest closed)
MAP_TRIES = 5
IDLE_LIMIT_S = 4.0  # a kept connection unused this long is not reused (gunicorn keeps 10 s)


def sustained(
    target: Target,
    clients: Sequence[Client],
    *,
    interval_s: float,
    duration_s: float,
    tag: str,
    deadline: float,
) -> list[list[Record]]:
    """Each client's records: one request every ``interval_s`` for ``duration_s`` (clients
    offset from each other by a share of the interval), not past ``deadline``
    (``time.monotonic()``)."""
    count = max(1, int(duration_s / interval_s))
    slots = sorted(
        (k * interval_s + c * interval_s / len(clients), c, k)
        for c in range(len(clients))
        for k in range(count)
    )
    kept = [_kept(target, c, client, interval_s, deadline) for c, client in enumerate(clients)]
    records: list[list[Record]] = [[] for _ in clients]
    start = time.monotonic()
    try:
        for at, c, k in slots:
            wait = start + at - time.monotonic()
            if time.monotonic() + max(0.0, wait) >= deadline:
                break
            if wait > 0:
                time.sleep(wait)
            record = _send(target, clients[c], kept[c], f"{tag}-{c}-{k}", deadline)
            records[c].append(replace(record, index=k))
    finally:
        for ex in (ex for exchanges in kept for ex in exchanges):
            ex.close()
    return records


def _kept(
    target: Target, c: int, client: Client, interval_s: float, deadline: float
) -> list[Exchange]:
    """One kept-alive connection per worker for ``client``, or none where they would not
    stay open between its requests."""
    if target.threads == 1 or interval_s * target.workers > IDLE_LIMIT_S:
        return []
    kept: dict[str, Exchange] = {}
    for _ in range(MAP_TRIES):  # a worker can win every accept for a while: try again
        count = MAP_PER_WORKER * target.workers
        for worker, queue in mapped(target, c, client.address, count, deadline).items():
            for ex in queue:
                if worker in kept:
                    ex.close()
                else:
                    kept[worker] = ex
        if len(kept) >= target.workers:
            break
    return list(kept.values())


def _send(
    target: Target, client: Client, kept: list[Exchange], request_id: str, deadline: float
) -> Record:
    """One request from ``client``: on the next of its kept connections (rotated), or on a
    fresh one when it has none left; a kept connection that fails is dropped."""
    if not kept:
        (record,) = fresh_requests(
            target, [request_id], identity=client.address, value=client.value, deadline=deadline
        )
        return record
    ex = kept.pop(0)
    ex.status = ex.error = ex.received_at = None
    ex.got_bytes = False
    collector = Collector(answered="keep")
    try:
        data = ex.request(target.request.render(client.value), True, request_id)
        ex.sent_at = clock.now()
        ex.send(data, deadline)
        collector.add(ex)
        collector.run(deadline)
    finally:
        collector.finish("no response before the run's deadline")
    if ex.error is None and ex.keeps_alive:
        ex.http.start_next_cycle()
        kept.append(ex)
    else:
        ex.close()  # the client's next requests go on its other connections, or fresh ones
    return ex.record(0, client.address)
