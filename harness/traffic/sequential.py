"""Sequential traffic: one keep-alive connection (one per instance, taken in turn), one request
after another.

It cannot reveal a race, and it usually stays on a single worker; the checker then says the run
is inconclusive rather than exact. Useful to reproduce what a polite client sees.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable, Sequence

from harness.fleet.probe_protocol import REQUEST_HEADER, WORKER_HEADER
from harness.host.ports import LOOPBACK
from harness.http import clock
from harness.http.records import Client, Record, Target
from harness.traffic.steps import wait_for_phase


def sequential(
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
    """Send ``count`` of ``target``'s requests from each client, one at a time, over one
    persistent connection per client, client after client; requests not answered by
    ``deadline`` (``time.monotonic()``) are recorded as such, unsent.

    With ``align`` (period, offset), the first request goes at that phase of the epoch clock (see
    :func:`~harness.traffic.burst.wait_for_phase`); ``limit`` is accepted for the engines'
    common signature and not used; ``on_release`` is called after each answer with how many
    requests have been sent."""
    wait_for_phase(align, deadline)
    records = []
    for c, client in enumerate(clients):
        records += _one_client(target, client, count, c * count, tag, deadline, on_release)
    return records


def _one_client(
    target: Target,
    client: Client,
    count: int,
    first: int,
    tag: str,
    deadline: float,
    on_release: Callable[[int], None] | None = None,
) -> list[Record]:
    source = None if client.address == LOOPBACK else (client.address, 0)
    conns = [
        http.client.HTTPConnection(target.host, port, source_address=source)
        for port in target.ports
    ]  # one per instance, taken in turn
    records = []
    req = target.request.render(client.value)
    address = client.address
    try:
        for i in range(first, first + count):
            conn = conns[i % len(conns)]
            request_id = f"{tag}-{i}"
            sent_at = clock.now()
            left = deadline - time.monotonic()
            if left <= 0:
                records.append(
                    Record(
                        i,
                        address,
                        0.0,
                        None,
                        None,
                        None,
                        "not sent: the run's deadline passed",
                        request_id,
                    )
                )
                continue
            try:
                if conn.sock is not None:
                    conn.sock.settimeout(left)
                conn.timeout = left
                conn.request(
                    req.method,
                    req.target,
                    body=req.body or None,
                    headers={
                        **dict(req.headers),
                        "User-Agent": "throttle-harness",
                        REQUEST_HEADER: request_id,
                    },
                )
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()  # the next request reconnects
                records.append(
                    Record(i, address, sent_at, None, None, None, f"{exc!r}", request_id)
                )
                continue
            records.append(
                Record(
                    i,
                    address,
                    sent_at,
                    clock.now(),
                    response.status,
                    response.getheader(WORKER_HEADER),
                    None,
                    request_id,
                )
            )
            if on_release is not None:
                on_release(i + 1)
    finally:
        for conn in conns:
            conn.close()
    return records
