"""Verdicts: pure functions from a run's bursts to what they prove. No I/O.

A run is one fleet and several bursts, each from a fresh client identity (a fresh budget; for a
claimed global limit, each burst's clients pooled into one history:
:mod:`harness.verdict.global_budget`). Each burst is judged on its own against the most a correct
throttle of the claimed window algorithm could admit of its requests
(:mod:`harness.verdict.windows`), and against the server-side overlap its stamps show
(:mod:`harness.verdict.evidence`):

- ``fail``: a burst admitted more than any correct throttle could (the bound is in the reason);
  or, past the limit, a request carrying a spoofed client-address header was admitted while one
  without it was refused (a bypass);
  or more bursts admitted more than the limit than window edges can plausibly explain (the
  chance is in the reason); or a burst admitted fewer than the limit (under-admission), or its
  client was still refused once a correct throttle has forgotten it (no recovery: a period
  after its last counted request, two for a sliding-window counter or ``any``).
- ``error``: a status neither admitted nor refused (by default 2xx and 429), or a transport
  error that retries could not settle
  (unless a failure is proven anyway).
- ``inconclusive``: nothing proven: the limit was never reached, too few workers served, the
  requests never overlapped inside the app when the limit was crossed, or every over-admission
  could be a window edge and no burst was clean.
- ``pass``: every burst admitted what a correct throttle of the claimed window could (bursts
  over the limit only where a window edge plausibly explains them, and at least one clean),
  enough workers served, and the crossing of the limit had several requests inside the app
  together (on two workers when the fleet has two).

Accounting always closes: sent == accepted + rejected + errors + indeterminate, per burst and in
total. A request is indeterminate when the traffic says so (a fault killed the worker it was
inside): it may or may not have been counted, so an exact throttle shows accepted <= limit <=
accepted + indeterminate, and neither bound counts it as an error.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from harness.fleet.stamps import Stamp
from harness.http.records import Record
from harness.http.request_template import Statuses
from harness.redaction import client_name
from harness.verdict.evidence import Overlap, needed_overlap, overlap
from harness.verdict.global_budget import Scope, pooled
from harness.verdict.windows import Fit, Interval, model_for, recovery_periods

SUMMED_UP = 6  # more bursts than this are summed up as a range in reasons and reports
EDGE_ALPHA = 1e-3  # window edges explaining over-admissions must have at least this chance
BYPASS_PROOF = 2  # spoofed requests admitted between refused controls that prove a bypass
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
        return _strongest(self.bursts)

    def accepted_per_burst(self) -> str:
        """Each burst's admitted count, or their range when there are many clients."""
        counts = [b.tally.accepted for b in self.bursts]
        if len(counts) <= SUMMED_UP:
            return ",".join(map(str, counts))
        return f"{min(counts)}-{max(counts)} ({len(counts)} {_unit(self.bursts)})"


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


def find(burst: Burst, claim: Claim) -> BurstFinding:
    """Judge one burst's counts against the claimed window, and measure its overlap."""
    t = tally(burst.records, claim.statuses, burst.indeterminate)
    accepted = [
        r for r in burst.records if claim.statuses.admitted(r.status) and r.received_at is not None
    ]
    # Refusals narrow where a window's edge could have been, unless some request may or may not
    # have counted (a worker died with it inside): a window could have been full without it.
    refused = [
        (r.sent_at, r.received_at)
        for r in burst.records
        if claim.statuses.refused(r.status)
        and r.received_at is not None
        and not (burst.indeterminate or t.errors)
    ]
    fit = model_for(claim.window).fit(
        [(r.sent_at, r.received_at or r.sent_at) for r in accepted],
        claim.limit,
        claim.period_s,
        refused,
    )
    ids = {r.request_id for r in accepted}
    ov = overlap(list(burst.stamps.values()), ids, claim.limit)
    confirmed = _answered(burst.confirmation, claim.statuses)
    later = _answered(_forgiven(burst, claim), claim.statuses)
    recovered = (later[0], later[1]) if later else None
    return BurstFinding(
        burst.identity,
        burst.value,
        burst.round,
        t,
        fit,
        ov,
        confirmed[1] if confirmed else None,
        recovered,
        _bypassed(burst.bypass, claim.statuses),
        _per_period(accepted, claim.period_s) if claim.sustained else (),
        len(unjustified_refusals(burst.records, claim)) if claim.sustained else 0,
    )


def _per_period(accepted: Sequence[Record], period_s: float) -> tuple[int, ...]:
    """Admitted requests in each period since the first was sent (by their receipt)."""
    if not accepted:
        return ()
    first = min(r.sent_at for r in accepted)
    counts = Counter(int(((r.received_at or r.sent_at) - first) // period_s) for r in accepted)
    return tuple(counts.get(k, 0) for k in range(max(counts) + 1))


def unjustified_refusals(records: Sequence[Record], claim: Claim) -> list[Record]:
    """The refusals no correct limiter of any window makes: with fewer than ``limit`` of the
    client's requests admitted in the two periods before. A fixed window, a sliding log or a
    token bucket refuses only with ``limit`` admitted in the last period, a sliding-window
    counter with ``limit`` (weighted) in the last two; a limiter that counts refused hits, or
    refreshes a TTL on every hit, goes on refusing a client that keeps sending. Counted
    generously: every admission whose interval meets the two periods before the refusal's."""
    admitted = [r for r in records if claim.statuses.admitted(r.status) and r.received_at]
    sent = sorted(r.sent_at for r in admitted)
    answered = sorted(r.received_at or r.sent_at for r in admitted)
    out = []
    for r in records:
        if not claim.statuses.refused(r.status) or r.received_at is None:
            continue
        before = bisect_right(sent, r.received_at) - bisect_right(
            answered, r.sent_at - 2 * claim.period_s
        )
        if before < claim.limit:
            out.append(r)
    return out


def _bypassed(
    attempts: Sequence[tuple[str, Record]], statuses: Statuses
) -> tuple[tuple[str, int, int], ...]:
    """(header, admitted, telling) for each spoofed header: of its requests sent between two
    refused controls (requests without it, one before and one after: ``telling``), how many
    were admitted. A throttle that ignores the header treats a control and a spoofed request
    alike, so a slot that reopens between two refused controls goes to at most the one
    request it admitted there; a header it trusts admits every such request."""
    found: dict[str, list[int]] = {}
    for i, (header, record) in enumerate(attempts):
        if not header:
            continue
        counts = found.setdefault(header, [0, 0])
        before = attempts[i - 1] if i else None
        after = attempts[i + 1] if i + 1 < len(attempts) else None
        if all(
            c is not None and not c[0] and statuses.refused(c[1].status) for c in (before, after)
        ):
            counts[1] += 1
            counts[0] += statuses.admitted(record.status)
    return tuple((h, admitted, telling) for h, (admitted, telling) in found.items())


def recovery_wait_s(claim: Claim) -> float:
    """How long after a client's last counted request a correct throttle of the claimed window
    has forgotten it whole: a period, or two where a sliding-window counter is claimed (or
    ``any``, which includes it: its previous window still weighs in the period after)."""
    return recovery_periods(claim.window) * claim.period_s


def _forgiven(burst: Burst, claim: Claim) -> list[Record]:
    """The recovery requests sent :func:`recovery_wait_s` after the last request of the client
    that a correct throttle may have counted (admitted, or never answered), wherever in its
    ledger: the claimed window has forgotten it by then. Ones sent sooner prove nothing and are
    left out."""
    counted = [
        r.received_at if r.received_at is not None else r.sent_at
        for r in burst.ledger()
        if r not in burst.recovery and (r.status is None or claim.statuses.admitted(r.status))
    ]
    last = max(counted, default=None)
    if last is None:
        return list(burst.recovery)
    return [r for r in burst.recovery if r.sent_at >= last + recovery_wait_s(claim)]


def _answered(records: Sequence[Record], statuses: Statuses) -> tuple[int, int] | None:
    """(admitted, refused) among ``records``; None when none of them was either."""
    admitted = sum(statuses.admitted(r.status) for r in records)
    refused = sum(statuses.refused(r.status) for r in records)
    return (admitted, refused) if admitted + refused else None


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


def edge_chance(findings: Sequence[BurstFinding], period_s: float) -> float:
    """The chance that a correct fixed window of unknown phase shows as many over-admissions
    as window edges must explain here (the ``edge`` bursts): that at least that many of all the
    bursts had an edge inside (a p-value; small means edges do not explain them).

    Two ways a correct window's phase is unknown, and the larger chance of the two:

    - one phase for every client (a global grid at some offset): the share of phases that
      fall inside at least that many of the bursts' spans at once (a sweep over the spans'
      ends modulo the period; staggered clients of one burst share one edge);
    - a phase per client on whole seconds (django-ratelimit's ``crc32(key) % period``
      offsets): each burst independently, with the share of the period's whole seconds
      inside its span (a Poisson-binomial tail).

    Either way the edge must fall where each burst's admissions and refusals allow one
    (``Fit.edges``): where no phase, or no whole second, does for every such burst, that way
    is ruled out. Windows anchored at a client's first request have no edge inside its first
    period, and every burst is a fresh client's first. A window with a fractional phase of its
    own per client is a model we have not met in the wild; such a throttle could fail here.
    """
    edges = [f.fit.edges for f in findings if f.fit.kind == "edge"]
    if not edges:
        return 1.0
    spans = [
        (f.tally.first_sent, f.tally.last_received)
        for f in findings
        if f.tally.first_sent is not None and f.tally.last_received is not None
    ]
    shared = _shared_phase(spans, len(edges), period_s) if _one_phase_fits(edges, period_s) else 0
    whole = _whole_seconds(spans, len(edges), period_s) if all(map(_holds_whole, edges)) else 0
    return min(1.0, max(shared, whole))


def _one_phase_fits(edges: Sequence[Sequence[Interval]], period_s: float) -> bool:
    """Whether one window phase puts an edge where each of these bursts could have had it
    (each burst's ranges, from its admissions and refusals): a phase in all of them."""
    common: list[Interval] = [(0.0, period_s)]
    for ranges in edges:
        arcs: list[Interval] = []
        for a, b in ranges:
            if b - a >= period_s:
                arcs.append((0.0, period_s))
                continue
            start = a % period_s
            end = start + (b - a)
            arcs.append((start, min(end, period_s)))
            if end > period_s:
                arcs.append((0.0, end - period_s))
        common = [
            (max(a, c), min(b, d)) for a, b in common for c, d in arcs if max(a, c) <= min(b, d)
        ]
        if not common:
            return False
    return True


def _holds_whole(ranges: Sequence[Interval]) -> bool:
    """Whether an edge on a whole second could have fallen in one of these ranges."""
    return any(math.floor(b) >= math.ceil(a) for a, b in ranges)


def _shared_phase(spans: Sequence[tuple[float, float]], needed: int, period_s: float) -> float:
    """The share of window phases that put an edge inside at least ``needed`` of the spans."""
    always = 0  # spans of a period or more: an edge falls inside whatever the phase
    changes: list[tuple[float, int]] = [(0.0, 0), (period_s, 0)]
    for first, last in spans:
        if last - first >= period_s:
            always += 1
            continue
        start = first % period_s
        end = start + (last - first)
        arcs = [(start, min(end, period_s))] + ([(0.0, end - period_s)] if end > period_s else [])
        for a, b in arcs:
            changes += [(a, 1), (b, -1)]
    changes.sort()
    inside = always
    covered = 0.0
    for (at, step), (nxt, _) in itertools.pairwise(changes):
        inside += step
        if inside >= needed:
            covered += nxt - at
    return covered / period_s


def _whole_seconds(spans: Sequence[tuple[float, float]], needed: int, period_s: float) -> float:
    """The chance that at least ``needed`` spans hold an edge when each client's edges sit on
    whole seconds at an offset of its own: each span's whole seconds over the period's."""
    dist = [1.0]  # dist[k]: chance that exactly k of the spans so far had an edge inside
    for first, last in spans:
        p = min(1.0, (math.floor(last) - math.floor(first)) / max(1.0, period_s))
        dist = [
            (dist[k] if k < len(dist) else 0.0) * (1 - p) + (dist[k - 1] * p if k else 0.0)
            for k in range(len(dist) + 1)
        ]
    return sum(dist[needed:])


def more_bursts_could_settle(verdict: Verdict, claim: Claim, overlap_possible: bool) -> bool:
    """Whether another burst could change or firm up ``verdict`` beyond the bursts planned: it
    is not proven (a failure, an error) and rests on too little. Over-admissions that a window
    edge explains (a race over-admits again and again, and where each burst could have had its
    edge soon rules one edge out, while a correct window's next bursts come clean), or no
    crossing with requests inside the app together (where overlap is possible). Too few workers
    is left to the bursts planned: traffic that stays on one worker stays there.
    """
    if verdict.basis == "edges-unclean":
        return True
    if verdict.basis == "no-overlap":
        return overlap_possible
    return verdict.basis == "held" and verdict.edge_chance is not None


def strong_starts(verdict: Verdict, claim: Claim) -> int:
    """How many of the verdict's bursts started a window with a race's overlap."""
    return sum(started_together(f, claim) for f in verdict.bursts)


def strong_crossings(verdict: Verdict, claim: Claim) -> int:
    """How many of the verdict's bursts crossed the limit with a race's overlap."""
    return sum(overlapped(f, claim) for f in verdict.bursts)


def judge(bursts: Sequence[Burst], claim: Claim) -> Verdict:
    """The verdict the bursts of one run support for ``claim``: each client's on its own, or,
    for a global limit, each burst's clients pooled into one history."""
    if claim.scope == "global":
        bursts = pooled(bursts)
    findings = tuple(find(b, claim) for b in bursts)
    t = combine([f.tally for f in findings])
    expected = sum(min(f.tally.sent, claim.limit) for f in findings)
    factor = t.accepted / expected if expected else None

    def verdict(
        kind: VerdictKind, basis: Basis, reason: str, hint: str = "", chance: float | None = None
    ) -> Verdict:
        reason += f"; {claim.note}" if claim.note else ""
        return Verdict(kind, expected, t, reason, factor, hint, findings, chance, basis)

    over = [f for f in findings if f.fit.kind == "over"]
    if over:
        worst = max(over, key=lambda f: f.tally.accepted)
        return verdict(
            "fail",
            "over",
            f"over-admission: {_which(worst, findings)} admitted {worst.tally.accepted} of "
            f"{worst.tally.sent}, limit {claim.limit} (x{worst.tally.accepted / claim.limit:.2f})"
            f"; {worst.fit.reason}",
            _over_admission_hint(worst, claim, findings),
        )
    edges = [f for f in findings if f.fit.kind == "edge"]
    chance = edge_chance(findings, claim.period_s)
    if edges and chance < EDGE_ALPHA:
        counts = ", ".join(str(f.tally.accepted) for f in edges)
        return verdict(
            "fail",
            "edges",
            f"over-admission: {len(edges)} of {len(findings)} bursts admitted more than "
            f"{claim.limit} ({counts}); {edges[0].fit.reason}; window edges inside that many "
            f"bursts have a chance of {chance:.1e}",
            _over_admission_hint(max(edges, key=lambda f: f.tally.accepted), claim, findings),
            chance=chance,
        )
    leaks = [(f, h, a, n) for f in findings for h, a, n in f.bypassed if a >= BYPASS_PROOF]
    if leaks:
        f, header, admitted, sent = leaks[0]
        others = sorted({h for _, h, _, _ in leaks} - {header})
        return verdict(
            "fail",
            "bypass",
            f"bypass: past the limit, {admitted} of {sent} requests of client {f.identity} "
            f"carrying {header} with another address were admitted, each between two "
            "refused requests without it" + (f"; also {', '.join(others)}" if others else ""),
            f"the throttle takes the client address from {header}, which any client can set: "
            "trust it only from your own proxy (DRF: set NUM_PROXIES)",
        )
    if t.errors:
        return verdict(
            "error",
            "errors",
            f"{t.errors} of {t.sent} requests failed: {'; '.join(t.error_samples)}",
            _error_hint(t),
        )
    under = [f for f in findings if under_admitted(f, claim)]
    if under:
        worst = min(under, key=lambda f: f.tally.accepted)
        hint = (
            "the throttle rejected requests it should admit (stale state from an earlier "
            "run, or a limit lower than claimed?)"
        )
        together = _together(worst, findings)
        admitted = sum(f.tally.accepted for f in together)
        short = sum(under_admitted(g, claim) for g in together)
        if (
            len(together) > 1
            and short >= len(together) - 1
            and (admitted <= claim.limit + claim.workers * claim.threads)
        ):
            hint = (
                f"the {len(together)} clients of burst {worst.round} were admitted {admitted} "
                f"together, about the limit of one: they share one budget (does the "
                "throttle's key leave the client out, as a constant key or an ignored header "
                "would?)"
            )
        elif not under_admitted(findings[0], claim):
            hint = (
                f"a fresh client was refused after burst 1's client ({findings[0].identity}, "
                f"{client_name(findings[0].value)}) had used the limit: the clients share one "
                "budget (does the throttle's key leave the client out, as a constant key or an "
                "ignored header would?)"
            )
        return verdict(
            "fail",
            "under",
            f"under-admission: {_which(worst, findings)} admitted {worst.tally.accepted} of "
            f"{worst.tally.sent}, limit {claim.limit}",
            hint,
        )
    shut_out = [f for f in findings if f.unjustified]
    if shut_out:
        f = shut_out[0]
        return verdict(
            "fail",
            "shut-out",
            f"not let back in: client {f.identity} was refused {f.unjustified} time(s) with "
            f"fewer than {claim.limit} admitted in the {2 * claim.period_s:g}s before, sending "
            f"steadily (admitted per {claim.period_s:g}s: {_periods(f.per_period)})",
            "a correct limiter admits a client again as its window moves on: one that counts "
            "refused hits (a log that records every hit), refreshes a key's TTL on every hit, or "
            "leaks its count never does while the client keeps sending",
        )
    stuck = [f for f in findings if f.recovered and f.recovered[1]]
    if stuck:
        admitted, refused = stuck[0].recovered or (0, 0)
        return verdict(
            "fail",
            "no-recovery",
            f"no recovery: {recovery_wait_s(claim):g}s after its burst, client "
            f"{stuck[0].identity} was "
            f"still refused ({refused} refused, {admitted} admitted)",
            "the throttle does not forget: a counter or key without an expiry (no TTL), or a "
            "window longer than claimed",
        )
    if all(f.tally.sent <= claim.limit for f in findings):
        return verdict(
            "inconclusive",
            "never-limited",
            f"every burst was admitted whole, but {findings[0].tally.sent if findings else 0} "
            f"requests never reach the limit of {claim.limit}: send more than {claim.limit}",
        )
    if edges and not any(f.fit.kind == "within" for f in findings):
        return verdict(
            "inconclusive",
            "edges-unclean",
            f"{len(edges)} burst(s) admitted more than {claim.limit}, which a window edge "
            f"could explain ({edges[0].fit.reason}), and no burst was clean",
            chance=chance,
        )
    beyond = [f for f in findings if f.tally.accepted > min(f.tally.sent, claim.limit)]
    held = "within bounds" if beyond else "exact"
    if t.workers_seen < claim.workers_needed:
        return verdict(
            "inconclusive",
            "few-workers",
            f"{held}, but only {t.workers_seen} of {claim.workers} workers served the traffic; "
            f"{claim.workers_needed} needed to show the state is shared",
        )
    if claim.sustained:
        return verdict(
            "pass",
            "held",
            f"held: {len(findings)} client(s) sending steadily for "
            f"{_secs(max((f.tally.span_s for f in findings), default=0.0))}s were admitted what "
            f"a correct limiter admits and let back in as the window moved on (admitted per "
            f"{claim.period_s:g}s: {_periods(findings[0].per_period)}) across "
            f"{t.workers_seen} workers; one request at a time per client shows no race: "
            "bursts test that",
        )
    need_requests, need_workers = needed_overlap(claim.workers, claim.threads)
    strongest = _strongest(findings)
    strong = sum(overlapped(f, claim) for f in findings)
    started = sum(started_together(f, claim) for f in findings)
    if not strong or not started:
        where = "when the limit was crossed" if not strong else "when a window started"
        return verdict(
            "inconclusive",
            "no-overlap",
            f"{held}, but the requests never overlapped inside the app {where} "
            f"({strongest.describe()}; {need_requests} requests on {need_workers} worker(s) "
            "needed where the limit is crossed and where a window starts): a race there "
            "would not have shown",
            "one global budget is started and crossed once per window: run again, or test "
            "the app with a shorter period (its rate setting) so that each burst crosses it anew"
            if claim.scope == "global"
            else "",
        )
    recovered = [f.recovered for f in findings if f.recovered]
    pooled_clients = " (each pooling its clients: one budget)" if claim.scope == "global" else ""
    reason = (
        f"{held}: {len(findings)} burst(s){pooled_clients} admitted what a correct throttle "
        "would ("
        + _summaries(findings)
        + f") across {t.workers_seen} workers; at the limit {strongest.at_crossing} requests "
        f"on {strongest.crossing_workers} worker(s) were inside the app together, at the "
        f"window's start {strongest.at_start} on {strongest.start_workers} (at the limit in "
        f"{strong} of {len(findings)} bursts, at the start in {started})"
    )
    if beyond:  # the model and bound that held for the burst furthest past the limit
        most = max(beyond, key=lambda f: f.tally.accepted - min(f.tally.sent, claim.limit))
        reason += f"; {_which(most, findings)} admitted {most.tally.accepted}: {most.fit.reason}"
    if t.indeterminate:
        reason += (
            f"; {t.indeterminate} request(s) died with their worker, counted or not: "
            "every burst's admissions fit with them either way"
        )
    if recovered:
        reason += (
            f"; recovered {recovery_wait_s(claim):g}s later ({recovered[0][0]} admitted, "
            "none refused)"
        )
    tried = [h for f in findings for h, _, _ in f.bypassed]
    if tried:
        reason += f"; no bypass through {len(tried)} client-address headers"
    if edges:
        reason += (
            f"; {len(edges)} burst(s) over {claim.limit} are explained by a window edge "
            f"(chance {chance:.2g})"
        )
    return verdict("pass", "held", reason, chance=chance if edges else None)


def _periods(counts: Sequence[int]) -> str:
    return ",".join(map(str, counts)) if counts else "none"


def _secs(seconds: float) -> str:
    return f"{round(seconds, 1):g}"


def under_admitted(finding: BurstFinding, claim: Claim) -> bool:
    """Whether the burst's fresh client got fewer than a correct throttle admits, even if every
    indeterminate request was admitted."""
    t = finding.tally
    return t.accepted + t.indeterminate < min(t.sent, claim.limit)


def overlapped(finding: BurstFinding, claim: Claim) -> bool:
    """Whether the burst crossed the limit with enough requests inside the app together to
    show a race there: two on two workers where the fleet has them."""
    requests, workers = needed_overlap(claim.workers, claim.threads)
    ov = finding.overlap
    return (ov.at_crossing or 0) >= requests and ov.crossing_workers >= workers


def started_together(finding: BurstFinding, claim: Claim) -> bool:
    """Whether the burst started its client's window with enough requests inside the app
    together to show a race there (a counter initialised by ``set``, not ``add``)."""
    requests, workers = needed_overlap(claim.workers, claim.threads)
    ov = finding.overlap
    return (ov.at_start or 0) >= requests and ov.start_workers >= workers


def _strongest(findings: Sequence[BurstFinding]) -> Overlap:
    """The strongest crossing of the limit any burst had."""
    return max(
        (f.overlap for f in findings),
        key=lambda ov: (_weaker_point(ov), ov.at_crossing or 0, ov.crossing_workers),
        default=Overlap(),
    )


def _weaker_point(ov: Overlap) -> tuple[int, int]:
    """(requests, workers) together at the weaker of a burst's two critical points."""
    return min(ov.at_crossing or 0, ov.at_start or 0), min(ov.crossing_workers, ov.start_workers)


def _summaries(findings: Sequence[BurstFinding]) -> str:
    """Admitted of sent, per burst: all of them, or their range when there are many."""
    if len(findings) <= SUMMED_UP:
        return ", ".join(f.summary() for f in findings)
    admitted = [f.tally.accepted for f in findings]
    sent = [f.tally.sent for f in findings]
    return (
        f"{min(admitted)}-{max(admitted)} admitted of {min(sent)}-{max(sent)} sent, "
        f"{len(findings)} {_unit(findings)}"
    )


def _unit(findings: Sequence[BurstFinding]) -> str:
    """What each finding is: a client (of a burst with several), or a burst (one client's, or
    a global budget's pooled clients)."""
    rounds = [f.round for f in findings]
    return "bursts" if all(rounds) and len(set(rounds)) == len(rounds) else "clients"


def _which(f: BurstFinding, findings: Sequence[BurstFinding]) -> str:
    if len(findings) == 1:
        return "the burst"
    if not f.round:
        return f"burst {findings.index(f) + 1}"
    if len(_together(f, findings)) > 1:
        return f"client {client_name(f.value)} of burst {f.round}"
    return f"burst {f.round}"


def _together(f: BurstFinding, findings: Sequence[BurstFinding]) -> list[BurstFinding]:
    """The findings of the clients that were in ``f``'s burst with it (``f`` included)."""
    return [g for g in findings if g.round == f.round] if f.round else [f]


def _over_admission_hint(
    f: BurstFinding, claim: Claim, findings: Sequence[BurstFinding] = ()
) -> str:
    """A diagnosis only where the evidence supports one."""
    t = f.tally
    confirmed = next(
        (
            g.confirmed_rejected
            for g in _together(f, findings or [f])
            if g.confirmed_rejected is not None
        ),
        None,
    )
    if t.rejected == 0:
        if confirmed == 0:
            return (
                "nothing was rejected, not even the requests sent after the burst: no "
                "throttle is active on this path (or its limit is far above the claim)"
            )
        if confirmed:
            return (
                "nothing in the burst was rejected, but the requests sent after it were: "
                "every request raced past a throttle that is active; send more requests than "
                "limit x workers to tell a non-atomic count from per-process state"
            )
        return "nothing was rejected: is a throttle active on this path?"
    over_one = [w for w, n in t.accepted_by.items() if n > claim.limit]
    if over_one:
        return (
            f"worker {over_one[0]} alone admitted {t.accepted_by[over_one[0]]} (> "
            f"{claim.limit}), so the state is shared, but concurrent requests overwrote each "
            "other's count: the throttle's read-check-write is not atomic"
        )
    per_worker = all(t.accepted_by.get(w, 0) == min(n, claim.limit) for w, n in t.served_by.items())
    if t.workers_seen > 1 and per_worker:
        return (
            f"each of the {t.workers_seen} workers admitted exactly min(its requests, "
            f"{claim.limit}) and rejected only past that: the throttle state is per process "
            "(a per-process cache such as LocMemCache?)"
        )
    return (
        "a worker rejected requests before it had admitted the limit itself, so the state is "
        "shared, but concurrent requests overwrote each other's count: the throttle's "
        "read-check-write is not atomic"
    )


def _error_hint(t: Tally) -> str:
    if "HTTP 400" in t.error_samples:
        return "a 400 from Django often means ALLOWED_HOSTS does not include 127.0.0.1"
    if "HTTP 404" in t.error_samples:
        return "check --path: the throttled endpoint was not found"
    if "HTTP 405" in t.error_samples:
        return "check --method: the endpoint does not take it"
    if any(s in t.error_samples for s in ("HTTP 401", "HTTP 403", "HTTP 503")):
        return (
            "a throttle that refuses with 403 or 503 needs --reject-status; an endpoint "
            "whose admitted requests answer 401 (a failed login) needs --accept-status"
        )
    return ""
