"""Sustained traffic: each client sends at a steady pace for several periods, one request at a
time, each on a fresh connection (so the fleet's workers share them).

A burst shows what happens where a client crosses its limit; sustained traffic shows what
happens after: whether a client sending faster than the rate is let back in as its window
moves on (a limiter that counts refused hits, or refreshes its TTL on every hit, never does),
and whether one sending slower is never refused. Clients' requests are interleaved, each
client's evenly spaced at ``interval_s``; a request whose slot has passed (an earlier answer was
slow) goes at once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

from harness.http.records import Client, Record, Target
from harness.traffic.burst import fresh_requests


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
    records: list[list[Record]] = [[] for _ in clients]
    start = time.monotonic()
    for at, c, k in slots:
        wait = start + at - time.monotonic()
        if time.monotonic() + max(0.0, wait) >= deadline:
            break
        if wait > 0:
            time.sleep(wait)
        client = clients[c]
        (record,) = fresh_requests(
            target,
            [f"{tag}-{c}-{k}"],
            identity=client.address,
            value=client.value,
            deadline=deadline,
        )
        records[c].append(replace(record, index=k))
    return records
