"""What traffic engines take and give: the fleet they target, and one record per request."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.http.request_template import RequestTemplate, Statuses


@dataclass(frozen=True)
class Target:
    """Where traffic goes, the shape of the fleet behind it (``threads`` > 1: gthread; ``workers``
    in all instances), what to send and how to read the answers. With several instances,
    ``other_ports`` are theirs: connections go to each port in turn, as a round-robin load
    balancer sends them."""

    host: str
    port: int
    workers: int
    threads: int
    request: RequestTemplate = field(default_factory=RequestTemplate)
    statuses: Statuses = field(default_factory=Statuses)
    other_ports: tuple[int, ...] = ()
    # Async workers (asgi, uvicorn) take every connection at once: ``threads`` is then their
    # concurrency, and no more than that is released into one worker at a time.
    bounded: bool = False

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.port, *self.other_ports)

    @property
    def capacity(self) -> int:
        """How many requests the fleet can have inside the app at once."""
        return self.workers * self.threads


@dataclass(frozen=True)
class Client:
    """One client of a burst: the loopback address it sends from (what a throttle keyed on the
    client address sees) and its ``{identity}`` value (a user name, a token)."""

    address: str
    value: str


@dataclass(frozen=True, slots=True)
class Record:
    """What happened to one request.

    Times are epoch seconds from :func:`harness.http.clock.now` (the epoch clock throttles count
    windows on, read through a monotonic clock: ``received_at`` is never before ``sent_at``).
    ``status`` is None and ``error`` says why when no HTTP response arrived. ``request_id`` is
    the id the probe stamps; ``attempts`` > 1 when the request was sent again because it
    provably never reached the app (no response, and the probe never saw it).
    """

    index: int
    identity: str
    sent_at: float
    received_at: float | None
    status: int | None
    worker: str | None
    error: str | None = None
    request_id: str = ""
    attempts: int = 1
    peer: str | None = None  # the client address the app was handed (the probe's word)
