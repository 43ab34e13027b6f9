"""Warm-up: every thread of a fresh fleet runs the app once before any client is tested.

A fresh worker thread's first request is slow where the app sets itself up lazily (Django's
per-thread cache connections, first imports, gunicorn's thread pool growing): tens to hundreds
of milliseconds in which a thread runs no throttle check. In a fleet's first burst those slow
first requests spread the client's first checks apart, so a race at the window's start (a
counter initialised with a plain ``set``) could not show there.

The warm-up sends the run's own request (method, path, headers, body) from a loopback address
that no client ever gets, with a made-up ``{identity}`` value (``warm-up-TAG``), one request per
thread of the fleet, all released together through the burst engine: each worker's mapped
connections are held one per thread until the release, so every thread takes one. The answers
are not judged (an app may refuse the made-up identity, which still runs it up to its check).
A throttle keyed on the client counts them for the warm-up address only; a global limit counts
them against its one budget.
"""

from __future__ import annotations

import secrets
import time

from harness.http.records import Client, Record, Target
from harness.traffic.burst import burst

WARM_UP_TIMEOUT_S = 15.0  # a lazy app's first requests may take seconds
WARM_UP_TAG = "w"  # request ids w-0, w-1, ...: stamped by the probe like any other


def warm_up_client(address: str) -> Client:
    """The warm-up's client: ``address`` (one no client gets) and a made-up value."""
    return Client(address, f"warm-up-{secrets.token_hex(3)}")


def warm_up(target: Target, client: Client, deadline: float) -> list[Record]:
    """One request per thread of ``target``'s fleet from ``client``, released together; not
    past ``deadline`` (``time.monotonic()``) nor ``WARM_UP_TIMEOUT_S`` from now."""
    return burst(
        target,
        target.capacity,
        clients=[client],
        limit=target.capacity + 1,  # one step: every request goes at once
        tag=WARM_UP_TAG,
        deadline=min(deadline, time.monotonic() + WARM_UP_TIMEOUT_S),
    )
