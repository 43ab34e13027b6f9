"""Which worker owns a connection: each connection asks the probe path (answered by the probe,
never by the app, and not counted towards gunicorn's ``--max-requests``), whose answer names the
worker and its parent process. The fleet knows its workers this way when it starts; the burst
engine maps its connections to workers the same way, keeping an even share per worker.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence

from harness.fleet.exchange import (
    CONNECT_TIMEOUT_S,
    PROBE_REQUEST,
    Collector,
    Exchange,
    open_exchange,
)
from harness.host.ports import LOOPBACK


def probe_workers(host: str, port: int, count: int, timeout_s: float = 5.0) -> dict[str, str]:
    """The workers that answered ``count`` concurrent probe requests (no app involved), each
    with the pid of its parent process."""
    pools = probe_connections(
        host, (port,), [(0, LOOPBACK)] * count, time.monotonic() + timeout_s, keep_alive=False
    )
    found = {}
    for worker, pool in pools.items():
        found[worker] = pool[0].parent or "?"
        for ex in pool:
            ex.close()
    return found


def address_seen(host: str, port: int, source: str, timeout_s: float = 5.0) -> str | None:
    """The client address the app sees for a connection from ``source`` (None: no answer)."""
    pools = probe_connections(
        host, (port,), [(0, source)], time.monotonic() + timeout_s, keep_alive=False
    )
    for pool in pools.values():
        for ex in pool:
            ex.close()
        return pool[0].peer
    return None


def probe_connections(
    host: str,
    ports: Sequence[int],
    sources: Sequence[tuple[int, str]],
    deadline: float,
    keep_alive: bool,
) -> dict[str, list[Exchange]]:
    """Open one connection per (client, address) of ``sources`` (to each of ``ports`` in turn),
    each asking the probe path at once; group them by the worker that answered. With
    ``keep_alive`` only connections the server keeps open are returned, ready for their next
    request; the others are closed."""
    opened: list[Exchange] = []
    collector = Collector(answered="keep" if keep_alive else "close")
    pools: dict[str, list[Exchange]] = defaultdict(list)
    try:
        for i, (client, address) in enumerate(sources):
            try:
                ex = open_exchange(host, ports[i % len(ports)], address, deadline)
            except OSError:
                break  # not listening yet, or out of ports: use what opened
            ex.client = client
            opened.append(ex)
            ex.send(ex.request(PROBE_REQUEST, keep_alive), deadline)
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


def even_share(pools: dict[str, list[Exchange]], count: int) -> dict[str, list[Exchange]]:
    """Pick up to ``count`` connections, as evenly over the workers as they allow; the ones
    not picked are closed."""
    picked: dict[str, list[Exchange]] = {worker: [] for worker in pools}
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
