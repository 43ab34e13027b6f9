"""The clock of request times: epoch seconds that never go backwards.

:func:`now` is ``time.monotonic()`` plus an offset to the wall clock taken once per process. An
interval between two readings is exact whatever the wall clock does meanwhile (an NTP step, a
resumed VM: ``received_at`` is never before ``sent_at``), and readings stay on the epoch clock
that window edges are counted on (``time.time() // period``), up to any step the wall clock
takes during the session. The probe's stamps (:mod:`harness.fleet.probe`) are CLOCK_MONOTONIC
nanoseconds of the same system-wide clock, compared only among themselves.
"""

from __future__ import annotations

import time

_OFFSET = time.time() - time.monotonic()


def now() -> float:
    """Epoch seconds, on this process's monotonic clock."""
    return time.monotonic() + _OFFSET
