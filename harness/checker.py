"""Verdicts: pure functions from a run's history to what it proves. No I/O.

- ``pass``: accepted == min(sent, limit), and enough distinct workers served the burst to
  show the state is shared.
- ``fail``: over- or under-admission. A violation is proof whoever served it, so it needs no
  minimum of workers. Over-admission by a burst that may have crossed a window edge is not
  proof, and is ``inconclusive`` instead.
- ``inconclusive``: the run cannot prove the limit holds: too few workers served it, or it
  sent no more requests than the limit.
- ``error``: a status other than 200/429, or a transport error (unless over-admission is
  proven anyway).

Accounting always closes: sent == accepted + rejected + errors.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from harness.traffic.records import Record

ACCEPTED, REJECTED = 200, 429
VerdictKind = Literal["pass", "fail", "inconclusive", "error"]
Window = Literal["sliding", "fixed"]


@dataclass(frozen=True)
class Claim:
    """What a run must show: ``limit`` requests per ``period_s`` with ``workers`` workers."""

    limit: int
    period_s: float
    workers: int
    window: Window = "sliding"
    min_workers_seen: int | None = None  # default: every configured worker

    @property
    def workers_needed(self) -> int:
        needed = self.workers if self.min_workers_seen is None else self.min_workers_seen
        return max(1, min(needed, self.workers))


@dataclass(frozen=True)
class Tally:
    """The counts of a history, closed by construction."""

    sent: int
    accepted: int
    rejected: int
    errors: int
    served_by: dict[str, int] = field(default_factory=dict)
    accepted_by: dict[str, int] = field(default_factory=dict)
    error_samples: tuple[str, ...] = ()
    first_sent: float | None = None
    last_received: float | None = None

    @property
    def workers_seen(self) -> int:
        return len(self.served_by)

    @property
    def span_s(self) -> float:
        if self.first_sent is None or self.last_received is None:
            return 0.0
        return max(0.0, self.last_received - self.first_sent)


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    expected_accepted: int
    tally: Tally
    reason: str
    factor: float | None = None
    hint: str = ""


def tally(records: Sequence[Record]) -> Tally:
    """Count a history: 200 accepted, 429 rejected, anything else (or no response) an error."""
    served: Counter[str] = Counter()
    accepted_by: Counter[str] = Counter()
    accepted = rejected = errors = 0
    samples: list[str] = []
    for r in records:
        if r.status == ACCEPTED:
            accepted += 1
            accepted_by[r.worker or "?"] += 1
        elif r.status == REJECTED:
            rejected += 1
        else:
            errors += 1
            if len(samples) < 3:
                samples.append(r.error or f"HTTP {r.status}")
        if r.status is not None:
            served[r.worker or "?"] += 1
    # The burst's span runs over answered requests only: one that never connected has no
    # send time worth the name, and must not stretch the burst across a window edge.
    received = [r.received_at for r in records if r.received_at is not None]
    sent = [r.sent_at for r in records if r.received_at is not None]
    return Tally(
        sent=len(records),
        accepted=accepted,
        rejected=rejected,
        errors=errors,
        served_by=dict(served),
        accepted_by=dict(accepted_by),
        error_samples=tuple(samples),
        first_sent=min(sent, default=None),
        last_received=max(received, default=None),
    )


def judge(records: Sequence[Record], claim: Claim) -> Verdict:
    """The verdict a history supports for ``claim``."""
    t = tally(records)
    expected = min(t.sent, claim.limit)
    factor = t.accepted / expected if expected else None

    if t.accepted > expected:
        if _may_cross_window_edge(t, claim):
            return Verdict(
                "inconclusive", expected, t,
                f"{t.accepted} accepted > {expected}, but the burst may have crossed a "
                f"{claim.window} window edge ({t.span_s:.2f}s for a {claim.period_s:g}s window)",
                factor,
            )
        return Verdict(
            "fail", expected, t,
            f"over-admission: {t.accepted} accepted, limit {expected} (x{factor:.2f})",
            factor, _over_admission_hint(t, claim),
        )
    if t.errors:
        return Verdict(
            "error", expected, t,
            f"{t.errors} of {t.sent} requests failed: {'; '.join(t.error_samples)}", factor,
            _error_hint(t),
        )
    if t.accepted < expected:
        return Verdict(
            "fail", expected, t,
            f"under-admission: {t.accepted} accepted, limit {expected} (x{factor:.2f})",
            factor, "the throttle rejected requests it should admit (stale state from "
            "an earlier run, or a limit lower than claimed?)",
        )
    if t.sent <= claim.limit:
        return Verdict(
            "inconclusive", expected, t,
            f"all {t.sent} requests were admitted, but {t.sent} never reach the limit of "
            f"{claim.limit}: send more than {claim.limit}",
            factor,
        )
    if t.workers_seen < claim.workers_needed:
        return Verdict(
            "inconclusive", expected, t,
            f"exact ({t.accepted}) but only {t.workers_seen} of {claim.workers} workers served "
            f"the traffic; {claim.workers_needed} needed to show the state is shared",
            factor,
        )
    return Verdict(
        "pass", expected, t,
        f"exact: {t.accepted} accepted of {t.sent} across {t.workers_seen} workers", factor,
    )


def _may_cross_window_edge(t: Tally, claim: Claim) -> bool:
    """Whether more than ``limit`` may legitimately pass during this burst.

    A sliding window admits at most ``limit`` in any interval of ``period_s``: only a burst
    that lasted a whole period can see more. A fixed window also resets at its edges; edges
    are taken as multiples of the period on the wall clock (where clock-aligned windows put
    them).
    """
    if t.first_sent is None or t.last_received is None:
        return False
    if t.span_s >= claim.period_s:
        return True
    if claim.window == "fixed":
        return math.floor(t.first_sent / claim.period_s) != math.floor(
            t.last_received / claim.period_s
        )
    return False


def _over_admission_hint(t: Tally, claim: Claim) -> str:
    per_worker = all(
        t.accepted_by.get(w, 0) == min(n, claim.limit) for w, n in t.served_by.items()
    )
    if t.workers_seen > 1 and per_worker:
        return (
            f"each of the {t.workers_seen} workers admitted up to the limit on its own "
            f"(~{claim.limit} x {t.workers_seen}): the throttle state is per process "
            "(a per-process cache such as LocMemCache?)"
        )
    return (
        "concurrent requests overwrote each other's count: the throttle's "
        "read-check-write is not atomic"
    )


def _error_hint(t: Tally) -> str:
    if "HTTP 400" in t.error_samples:
        return "a 400 from Django often means ALLOWED_HOSTS does not include 127.0.0.1"
    if "HTTP 404" in t.error_samples:
        return "check --path: the throttled endpoint was not found"
    return ""
