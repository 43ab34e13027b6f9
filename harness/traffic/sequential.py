"""Sequential traffic: one keep-alive connection, one request after another.

It cannot reveal a race, and it usually stays on a single worker; the checker then says the run
is inconclusive rather than exact. Useful to reproduce what a polite client sees.
"""

from __future__ import annotations

import http.client
import time

from harness.probe_protocol import WORKER_HEADER
from harness.traffic.records import Record


def sequential(
    host: str,
    port: int,
    path: str,
    count: int,
    *,
    identity: str = "127.0.0.1",
    threads: int = 1,
    timeout_s: float = 60.0,
) -> list[Record]:
    """Send ``count`` GET requests, one at a time, over one persistent connection.

    ``threads`` is accepted for the engines' common signature and not used."""
    source = None if identity == "127.0.0.1" else (identity, 0)
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s, source_address=source)
    records = []
    try:
        for i in range(count):
            sent_at = time.time()
            try:
                conn.request("GET", path, headers={"User-Agent": "throttle-harness"})
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()  # the next request reconnects
                records.append(Record(i, identity, sent_at, None, None, None, f"{exc!r}"))
                continue
            records.append(
                Record(
                    i, identity, sent_at, time.time(), response.status,
                    response.getheader(WORKER_HEADER),
                )
            )
    finally:
        conn.close()
    return records
