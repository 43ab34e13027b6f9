"""What a run claims and what it produced, as the judge reads them: the :class:`Claim` (limit,
period, window, fleet shape, scope), each client's :class:`Burst` of records and stamps, the
counts of a history (:class:`Tally`), a burst judged (:class:`BurstFinding`) and the run's
:class:`Verdict` with the rule that decided it (``Basis``).

Accounting always closes: sent == accepted + rejected + errors + indeterminate, per burst and in
total. A request is indeterminate when the traffic says so (a fault killed the worker it was
inside): it may or may not have been counted, so an exact throttle shows accepted <= limit <=
accepted + indeterminate, and neither bound counts it as an error.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from harness.fleet.stamps import Stamp
from harness.http.records import Record
from harness.http.request_template import Statuses
from harness.verdict.evidence import Overlap
from harness.verdict.global_budget import Scope
from harness.verdict.windows import Fit, recovery_periods

SUMMED_UP = 6  # more bursts than this are summed up as a range in reasons and reports

VerdictKind = Literal["pass", "fail", "inconclusive", "error"]

Basis = Literal[
    "over",  # fail: a burst admitted more than any correct throttle could
    "edges",  # fail: more bursts over the limit than window edges plausibly explain
    "bypass",  # fail: a spoofed client-address header was admitted past the limit
    "errors",  # error
    "under",  # fail: a fresh client admitted less than the limit
    "no-recovery",  # fail: still refused once the window forgot its last counted request
    "shut-out",  # fail: sustained traffic refused with fewer than the limit admitted before
    "never-limited",  # inconclusive: no burst reached the limit
    "edges-unclean",  # inconclusive: over-admissions a window edge explains, no clean burst
    "few-workers",  # inconclusive
    "no-overlap",  # inconclusive
    "held",  # pass
]


@dataclass(frozen=True)
class Claim:
    """What a run must show: ``limit`` requests per ``period_s`` under ``window``, on a fleet
    of ``workers`` × ``threads``."""

    limit: int
    period_s: float
    workers: int
    threads: int = 1
    window: str = "any"
    min_workers_seen: int | None = None  # default: every configured worker
    statuses: Statuses = field(default_factory=Statuses)
    sustained: bool = False  # each client sent at a steady pace for several periods
    note: str = ""  # what the run tested instead of what was asked, for the reason
    scope: Scope = "client"  # "global": one budget for every client (harness.verdict.global_budget)

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
    retried: int = 0
    indeterminate: int = 0  # no answer, from inside a worker that died: counted or not
    served_by: dict[str, int] = field(default_factory=dict)
    accepted_by: dict[str, int] = field(default_factory=dict)
    error_samples: tuple[str, ...] = ()
    first_sent: float | None = None
    last_received: float | None = None

    @property
    def workers_seen(self) -> int:
        return len(self.served_by)

    def per_instance(self) -> dict[str, dict[str, int]]:
        """Accepted and served by instance: the part of each worker id before ``/`` ("1" for
        a single instance, whose ids have none)."""
        out: dict[str, dict[str, int]] = {}
        for counts, key in ((self.served_by, "served"), (self.accepted_by, "accepted")):
            for worker, n in counts.items():
                instance = worker.partition("/")[0] if "/" in worker else "1"
                out.setdefault(instance, {"accepted": 0, "served": 0})[key] += n
        return dict(sorted(out.items()))

    @property
    def span_s(self) -> float:
        if self.first_sent is None or self.last_received is None:
            return 0.0
        return max(0.0, self.last_received - self.first_sent)


@dataclass(frozen=True)
class Burst:
    """What one burst produced: its records and the probe's stamps of its requests."""

    identity: str
    records: Sequence[Record]
    stamps: Mapping[str, Stamp] = field(default_factory=dict)
    tag: str = "b"  # the prefix of its request ids
    confirmation: Sequence[Record] = ()  # sent after an over-admission with nothing rejected
    recovery: Sequence[Record] = ()  # sent again once the window has forgotten the client
    value: str = "client-1"  # the client's {identity} in its requests
    round: int = 0  # which of the run's bursts (one Burst per client); 0: its place in the run
    bypass: Sequence[tuple[str, Record]] = ()  # (spoofed header, or "" for the control)
    indeterminate: frozenset[str] = frozenset()  # request ids that may or may not have counted
    probes: Sequence[Record] = ()  # sent on this client by a fault, after the burst

    def ledger(self) -> list[Record]:
        """Every request sent on this client, in the order of sending."""
        sent = [*self.records, *self.confirmation, *(r for _, r in self.bypass), *self.probes]
        return sorted([*sent, *self.recovery], key=lambda r: r.sent_at)


@dataclass(frozen=True)
class BurstFinding:
    """One burst judged: its counts, how they fit the window, and the overlap behind them."""

    identity: str
    value: str
    round: int
    tally: Tally
    fit: Fit
    overlap: Overlap
    confirmed_rejected: int | None = None  # of the confirmation requests; None: none answered
    recovered: tuple[int, int] | None = None  # (admitted, refused) once forgiven; None: none
    bypassed: tuple[tuple[str, int, int], ...] = ()  # (header, admitted, sent) past the limit
    per_period: tuple[int, ...] = ()  # sustained: admitted in each period since the first send
    unjustified: int = 0  # sustained: refused with fewer than the limit admitted just before
    rewritten: bool = False  # an admitted bypass attempt reached the app as another address

    def summary(self) -> str:
        return f"{self.tally.accepted}/{self.tally.sent}"


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    expected_accepted: int
    tally: Tally
    reason: str
    factor: float | None = None
    hint: str = ""
    bursts: tuple[BurstFinding, ...] = ()
    edge_chance: float | None = None  # chance that window edges explain the over-admissions
    basis: Basis = "held"  # which rule decided it: what more traffic could still change

    @property
    def overlap(self) -> Overlap:
        """The strongest crossing any burst had."""
        return strongest(self.bursts)

    def accepted_per_burst(self) -> str:
        """Each burst's admitted count, or their range when there are many clients."""
        counts = [b.tally.accepted for b in self.bursts]
        if len(counts) <= SUMMED_UP:
            return ",".join(map(str, counts))
        return f"{min(counts)}-{max(counts)} ({len(counts)} {unit_of(self.bursts)})"


def tally(
    records: Sequence[Record],
    statuses: Statuses | None = None,
    indeterminate: frozenset[str] = frozenset(),
) -> Tally:
    """Count a history: admitted, refused (by default 2xx and 429, see :class:`Statuses`),
    unanswered requests listed in ``indeterminate`` as such, anything else (or no response) an
    error."""
    statuses = statuses or Statuses()
    served: Counter[str] = Counter()
    accepted_by: Counter[str] = Counter()
    accepted = rejected = errors = unknown = 0
    samples: list[str] = []
    for r in records:
        if r.status is None and r.request_id in indeterminate:
            unknown += 1
        elif statuses.admitted(r.status):
            accepted += 1
            accepted_by[r.worker or "?"] += 1
        elif statuses.refused(r.status):
            rejected += 1
        else:
            errors += 1
            if len(samples) < 3:
                samples.append(r.error or f"HTTP {r.status}")
        if r.status is not None:
            served[r.worker or "?"] += 1
    # The burst's span runs over answered requests only: one that never connected has no
    # send time worth the name, and must not stretch the burst across a window edge.
    answered = [r for r in records if r.received_at is not None]
    return Tally(
        sent=len(records),
        accepted=accepted,
        rejected=rejected,
        errors=errors,
        retried=sum(r.attempts > 1 for r in records),
        indeterminate=unknown,
        served_by=dict(served),
        accepted_by=dict(accepted_by),
        error_samples=tuple(samples),
        first_sent=min((r.sent_at for r in answered), default=None),
        last_received=max((r.received_at or 0.0 for r in answered), default=None),
    )


def combine(tallies: Sequence[Tally]) -> Tally:
    """The tallies of several bursts as one."""
    served: Counter[str] = Counter()
    accepted_by: Counter[str] = Counter()
    for t in tallies:
        served.update(t.served_by)
        accepted_by.update(t.accepted_by)
    firsts = [t.first_sent for t in tallies if t.first_sent is not None]
    lasts = [t.last_received for t in tallies if t.last_received is not None]
    return Tally(
        sent=sum(t.sent for t in tallies),
        accepted=sum(t.accepted for t in tallies),
        rejected=sum(t.rejected for t in tallies),
        errors=sum(t.errors for t in tallies),
        retried=sum(t.retried for t in tallies),
        indeterminate=sum(t.indeterminate for t in tallies),
        served_by=dict(served),
        accepted_by=dict(accepted_by),
        error_samples=tuple(s for t in tallies for s in t.error_samples)[:3],
        first_sent=min(firsts, default=None),
        last_received=max(lasts, default=None),
    )


def recovery_wait_s(claim: Claim) -> float:
    """How long after a client's last counted request a correct throttle of the claimed window
    has forgotten it whole: a period, or two where a sliding-window counter is claimed (or
    ``any``, which includes it: its previous window still weighs in the period after)."""
    return recovery_periods(claim.window) * claim.period_s


def strongest(findings: Sequence[BurstFinding]) -> Overlap:
    """The strongest crossing of the limit any burst had."""
    return max(
        (f.overlap for f in findings),
        key=lambda ov: (_weaker_point(ov), ov.at_crossing or 0, ov.crossing_workers),
        default=Overlap(),
    )


def _weaker_point(ov: Overlap) -> tuple[int, int]:
    """(requests, workers) together at the weaker of a burst's two critical points."""
    return min(ov.at_crossing or 0, ov.at_start or 0), min(ov.crossing_workers, ov.start_workers)


def unit_of(findings: Sequence[BurstFinding]) -> str:
    """What each finding is: a client (of a burst with several), or a burst (one client's, or
    a global budget's pooled clients)."""
    rounds = [f.round for f in findings]
    return "bursts" if all(rounds) and len(set(rounds)) == len(rounds) else "clients"
