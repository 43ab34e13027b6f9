"""One record per request: the history every verdict is computed from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Record:
    """What happened to one request.

    Times are wall-clock seconds (``time.time()``), the clock throttles themselves use.
    ``status`` is None and ``error`` says why when no HTTP response arrived.
    """

    index: int
    identity: str
    sent_at: float
    received_at: float | None
    status: int | None
    worker: str | None
    error: str | None = None
