"""Faults production brings, injected into a run: each a small class with hooks on the traffic's
phases, reporting what it did as a :class:`FaultOutcome` (the run's JSON ``fault`` entries).

    worker-kill         SIGKILL one worker in the middle of the first burst
    redis-restart       restart the Redis the harness started, after the first burst
    redis-outage        make Redis unreachable for a while, then bring it back, after the
                        first burst; classify what the app did meanwhile
    redis-latency=MS    add MS of round-trip latency between the app and Redis, for the run

The checker never learns which fault ran: only that some requests are indeterminate (they were
inside a worker that died, see :meth:`Fault.lost_workers`). Faults that touch Redis need a Redis
the harness started (:data:`REDIS_FAULTS`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.fleet import Fleet
from harness.http.records import Client, Target
from harness.redis.providers import RedisServer
from harness.redis.proxy import RedisProxy
from harness.traffic.ledger import Ledger
from harness.verdict import Burst, Claim

KINDS = ("worker-kill", "redis-restart", "redis-outage", "redis-latency")
REDIS_FAULTS = frozenset({"redis-restart", "redis-outage", "redis-latency"})
PROXIED = frozenset({"redis-outage", "redis-latency"})  # they need the proxy in front of Redis
OUTAGE_EXPECTATIONS = ("open", "closed")
MAX_LATENCY_MS = 10_000.0


@dataclass(frozen=True)
class FaultSpec:
    """A fault as the user names it: ``worker-kill``, ``redis-latency=5``, …"""

    kind: str
    latency_ms: float = 0.0

    @property
    def text(self) -> str:
        return f"{self.kind}={self.latency_ms:g}" if self.kind == "redis-latency" else self.kind


def parse_fault(text: str) -> FaultSpec:
    """A fault from ``KIND`` or ``redis-latency=MS`` (also ``redis-latency:MS`` or
    ``redis-latency MS``); ValueError with the reason otherwise."""
    kind, _, arg = text.strip().replace(":", "=").replace(" ", "=", 1).partition("=")
    if kind not in KINDS:
        raise ValueError(f"unknown fault {text!r} (known: {', '.join(KINDS)}=MS)")
    if kind != "redis-latency":
        if arg:
            raise ValueError(f"fault {kind} takes no value, not {arg!r}")
        return FaultSpec(kind)
    try:
        ms = float(arg.strip().removesuffix("ms"))
    except ValueError:
        raise ValueError(
            f"fault {text!r}: redis-latency needs milliseconds, such as redis-latency=5"
        ) from None
    if not 0 < ms <= MAX_LATENCY_MS:
        raise ValueError(
            f"fault {text!r}: latency must be above 0 and at most {MAX_LATENCY_MS:g} ms"
        )
    return FaultSpec(kind, ms)


@dataclass(frozen=True)
class FaultOutcome:
    """What a fault did: ``at_s`` is when, in seconds since the run's traffic started (None:
    from the start); ``outcome`` is one word (``killed``, ``reset``, ``fail-open``, …);
    ``details`` holds its counts; ``as_expected`` is False when the user's expectation of it
    (``--expect-outage``, recovery) failed."""

    kind: str
    at_s: float | None
    outcome: str
    summary: str
    details: Mapping[str, Any] = field(default_factory=dict)
    as_expected: bool = True

    def as_dict(self) -> dict[str, Any]:
        at = round(self.at_s, 3) if self.at_s is not None else None
        return {
            "kind": self.kind,
            "at_s": at,
            "outcome": self.outcome,
            "as_expected": self.as_expected,
            "summary": self.summary,
            **self.details,
        }


@dataclass
class FaultContext:
    """What a fault may act on and send through during a run."""

    fleet: Fleet
    redis: RedisServer | None  # None: no fault of REDIS_FAULTS may run
    target: Target
    claim: Claim
    deadline: float  # time.monotonic(): the run's traffic ends by then
    started: float  # time.monotonic() when the run's traffic started
    fresh_client: Callable[[], Client | None]  # a client no burst has used
    proxy: RedisProxy | None = None  # in front of Redis, for the faults of PROXIED
    ledger: Ledger = field(default_factory=Ledger)  # every request sent, faults' probes too

    def at_s(self, now: float) -> float:
        return now - self.started


class Fault(Protocol):
    """Hooks on a run's traffic; each is called on every fault, which acts in the ones it needs.
    ``acts_after_first_burst``: the traffic then sends at least one burst after it."""

    kind: str
    acts_after_first_burst: bool

    def mid_first_burst(self, ctx: FaultContext, released: int) -> None:
        """After each step of the first burst is sent (``released`` so far)."""

    def lost_workers(self) -> frozenset[str]:
        """Workers that died with requests inside: those requests are indeterminate."""

    def after_first_burst(self, ctx: FaultContext, first: Sequence[Burst]) -> None:
        """Once the first burst (one Burst per client) is judged-ready."""

    def outcome(self) -> FaultOutcome:
        """What the fault did, once the run's traffic is over."""
