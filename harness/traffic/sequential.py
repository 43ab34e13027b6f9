"""Sequential traffic: one keep-alive connection, one request after another.

It cannot reveal a race, and it usually stays on a single worker; the checker then says the run
is inconclusive rather than exact. Useful to reproduce what a polite client sees.
"""

from __future__ import annotations

import http.client
import time

from harness.ports import LOOPBACK
from harness.probe_protocol import REQUEST_HEADER, WORKER_HEADER
from harness.traffic.burst import wait_for_phase
from harness.traffic.records import Record, Target


def sequential(
    target: Target, count: int, *, identity: str, value: str, limit: int, tag: str,
    deadline: float, align: tuple[float, float] | None = None,
) -> list[Record]:
    """Send ``count`` of ``target``'s requests (as the client whose ``{identity}`` is
    ``value``), one at a time, over one persistent connection; requests not answered by
    ``deadline`` (``time.monotonic()``) are recorded as such, unsent.

    With ``align`` (period, offset), the first request goes at that phase of the wall clock (see
    :func:`~harness.traffic.burst.wait_for_phase`); ``limit`` is accepted for the engines'
    common signature and not used."""
    wait_for_phase(align, deadline)
    source = None if identity == LOOPBACK else (identity, 0)
    conn = http.client.HTTPConnection(target.host, target.port, source_address=source)
    records = []
    req = target.request.render(value)
    try:
        for i in range(count):
            request_id = f"{tag}-{i}"
            sent_at = time.time()
            left = deadline - time.monotonic()
            if left <= 0:
                records.append(Record(i, identity, 0.0, None, None, None,
                                      "not sent: the run's deadline passed", request_id))
                continue
            try:
                if conn.sock is not None:
                    conn.sock.settimeout(left)
                conn.timeout = left
                conn.request(req.method, req.target, body=req.body or None, headers={
                    **dict(req.headers), "User-Agent": "throttle-harness",
                    REQUEST_HEADER: request_id})
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()  # the next request reconnects
                records.append(
                    Record(i, identity, sent_at, None, None, None, f"{exc!r}", request_id)
                )
                continue
            records.append(
                Record(
                    i, identity, sent_at, time.time(), response.status,
                    response.getheader(WORKER_HEADER), None, request_id,
                )
            )
    finally:
        conn.close()
    return records
