"""Verdicts: pure functions from a run's bursts to what they prove. No I/O.

A run is one fleet and several bursts, each from a fresh client identity (a fresh budget). Each
burst is judged on its own against the most a correct throttle of the claimed window algorithm
could admit of its requests (:mod:`harness.windows`), and against the server-side overlap its
stamps show (:mod:`harness.evidence`):

- ``fail``: a burst admitted more than any correct throttle could (the bound is in the reason);
  or, past the limit, a request carrying a spoofed client-address header was admitted while one
  without it was refused (a bypass);
  or more bursts admitted more than the limit than window edges can plausibly explain (the
  chance is in the reason); or a burst admitted fewer than the limit (under-admission), or its
  client was still refused a whole period later (no recovery).
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

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from harness.evidence import Overlap, Stamp, needed_overlap, overlap
from harness.redaction import client_name
from harness.request_template import Statuses
from harness.traffic.records import Record
from harness.windows import Fit, model_for

SUMMED_UP = 6  # more bursts than this are summed up as a range in reasons and reports
EDGE_ALPHA = 1e-3  # window edges explaining over-admissions must have at least this chance
VerdictKind = Literal["pass", "fail", "inconclusive", "error"]


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
    recovery: Sequence[Record] = ()  # sent again once a whole period has passed
    value: str = "client-1"  # the client's {identity} in its requests
    round: int = 0  # which of the run's bursts (one Burst per client); 0: its place in the run
    bypass: Sequence[tuple[str, Record]] = ()  # (spoofed header, or "" for the control)
    indeterminate: frozenset[str] = frozenset()  # request ids that may or may not have counted


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
    recovered: tuple[int, int] | None = None  # (admitted, refused) a period later; None: none
    bypassed: tuple[tuple[str, int, int], ...] = ()  # (header, admitted, sent) past the limit

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

    @property
    def overlap(self) -> Overlap:
        """The strongest crossing any burst had."""
        return _strongest(self.bursts)

    def accepted_per_burst(self) -> str:
        """Each burst's admitted count, or their range when there are many clients."""
        counts = [b.tally.accepted for b in self.bursts]
        if len(counts) <= SUMMED_UP:
            return ",".join(map(str, counts))
        return f"{min(counts)}-{max(counts)} ({len(counts)} clients)"


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
    fit = model_for(claim.window).fit(
        [(r.sent_at, r.received_at or r.sent_at) for r in accepted], claim.limit, claim.period_s
    )
    ids = {r.request_id for r in accepted}
    ov = overlap(list(burst.stamps.values()), ids, claim.limit)
    confirmed = _answered(burst.confirmation, claim.statuses)
    later = _answered(burst.recovery, claim.statuses)
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
    )


def _bypassed(
    attempts: Sequence[tuple[str, Record]], statuses: Statuses
) -> tuple[tuple[str, int, int], ...]:
    """(header, admitted, sent) for each spoofed header, if the control request without one
    was refused: else the window had passed, and an admission proves nothing."""
    if not any(h == "" and statuses.refused(r.status) for h, r in attempts):
        return ()
    headers = dict.fromkeys(h for h, _ in attempts if h)
    return tuple(
        (
            h,
            sum(statuses.admitted(r.status) for x, r in attempts if x == h),
            sum(x == h for x, _ in attempts),
        )
        for h in headers
    )


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
    """The chance that a correct throttle shows the over-admissions that only a window edge of
    unknown phase explains: that an edge fell inside each of those bursts.

    With a phase of its own per client (django-ratelimit's offset per key, a window anchored at
    a client's first request) the bursts are independent: the chance that at least that many of
    all the bursts had an edge inside, each with its own chance. With one
    phase for every client (one global reset) it is the share of phases that fall inside every
    one of those bursts at once. The larger of the two."""
    edges = [f for f in findings if f.fit.kind == "edge"]
    if not edges:
        return 1.0
    # Independent phases: the chance that at least as many of all the bursts had an edge
    # inside (each with its own chance, its span over the period; a Poisson-binomial tail).
    dist = [1.0]  # dist[k]: chance that exactly k of the bursts so far had an edge inside
    for f in findings:
        p = min(1.0, f.tally.span_s / period_s) if f.fit.kind != "edge" else f.fit.edge_chance
        dist = [
            (dist[k] if k < len(dist) else 0.0) * (1 - p) + (dist[k - 1] * p if k else 0.0)
            for k in range(len(dist) + 1)
        ]
    independent = min(1.0, sum(dist[len(edges) :]))
    return max(independent, _shared_phase(edges, period_s))


def _shared_phase(edges: Sequence[BurstFinding], period_s: float) -> float:
    """The share of window phases that put an edge inside every one of these bursts."""
    common = [(0.0, period_s)]
    for f in edges:
        start = (f.tally.first_sent or 0.0) % period_s
        end = start + min(f.tally.span_s, period_s)
        arc = [(start, min(end, period_s)), (0.0, max(0.0, end - period_s))]
        common = [
            (max(a, c), min(b, d)) for a, b in common for c, d in arc if min(b, d) > max(a, c)
        ]
    return sum(b - a for a, b in common) / period_s


def wants_another_burst(findings: Sequence[BurstFinding], period_s: float) -> bool:
    """Whether more bursts could settle the run: an over-admission that only a window edge
    explains, too plausible to call a failure, and no clean burst yet."""
    if any(f.fit.kind == "over" for f in findings):
        return False
    if not any(f.fit.kind == "edge" for f in findings):
        return False
    return edge_chance(findings, period_s) >= EDGE_ALPHA and not any(
        f.fit.kind == "within" for f in findings
    )


def judge(bursts: Sequence[Burst], claim: Claim) -> Verdict:
    """The verdict the bursts of one run support for ``claim``."""
    findings = tuple(find(b, claim) for b in bursts)
    t = combine([f.tally for f in findings])
    expected = sum(min(f.tally.sent, claim.limit) for f in findings)
    factor = t.accepted / expected if expected else None

    def verdict(kind: VerdictKind, reason: str, hint: str = "", **kw: float | None) -> Verdict:
        return Verdict(kind, expected, t, reason, factor, hint, findings, **kw)

    over = [f for f in findings if f.fit.kind == "over"]
    if over:
        worst = max(over, key=lambda f: f.tally.accepted)
        return verdict(
            "fail",
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
            f"over-admission: {len(edges)} of {len(findings)} bursts admitted more than "
            f"{claim.limit} ({counts}); {edges[0].fit.reason}; window edges inside that many "
            f"bursts have a chance of {chance:.1e}",
            _over_admission_hint(max(edges, key=lambda f: f.tally.accepted), claim, findings),
            edge_chance=chance,
        )
    leaks = [(f, h, a, n) for f in findings for h, a, n in f.bypassed if a]
    if leaks:
        f, header, admitted, sent = leaks[0]
        others = sorted({h for _, h, _, _ in leaks} - {header})
        return verdict(
            "fail",
            f"bypass: past the limit, {admitted} of {sent} requests of client {f.identity} "
            f"carrying {header} with another address were admitted (one without it was "
            "refused)" + (f"; also {', '.join(others)}" if others else ""),
            f"the throttle takes the client address from {header}, which any client can set: "
            "trust it only from your own proxy (DRF: set NUM_PROXIES)",
        )
    if t.errors:
        return verdict(
            "error",
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
            f"under-admission: {_which(worst, findings)} admitted {worst.tally.accepted} of "
            f"{worst.tally.sent}, limit {claim.limit}",
            hint,
        )
    stuck = [f for f in findings if f.recovered and f.recovered[1]]
    if stuck:
        admitted, refused = stuck[0].recovered or (0, 0)
        return verdict(
            "fail",
            f"no recovery: {claim.period_s:g}s after its burst, client {stuck[0].identity} was "
            f"still refused ({refused} refused, {admitted} admitted)",
            "the throttle does not forget: a counter or key without an expiry (no TTL), or a "
            "window longer than claimed",
        )
    if all(f.tally.sent <= claim.limit for f in findings):
        return verdict(
            "inconclusive",
            f"every burst was admitted whole, but {findings[0].tally.sent if findings else 0} "
            f"requests never reach the limit of {claim.limit}: send more than {claim.limit}",
        )
    if edges and not any(f.fit.kind == "within" for f in findings):
        return verdict(
            "inconclusive",
            f"{len(edges)} burst(s) admitted more than {claim.limit}, which a window edge "
            f"could explain ({edges[0].fit.reason}), and no burst was clean",
            edge_chance=chance,
        )
    if t.workers_seen < claim.workers_needed:
        return verdict(
            "inconclusive",
            f"exact, but only {t.workers_seen} of {claim.workers} workers served the traffic; "
            f"{claim.workers_needed} needed to show the state is shared",
        )
    need_requests, need_workers = needed_overlap(claim.workers, claim.threads)
    strongest = _strongest(findings)
    strong = sum(overlapped(f, claim) for f in findings)
    if not strong:
        return verdict(
            "inconclusive",
            f"exact, but the requests never overlapped inside the app when the limit was "
            f"crossed ({strongest.describe()}; {need_requests} requests on {need_workers} "
            "worker(s) needed): a race would not have shown",
        )
    recovered = [f.recovered for f in findings if f.recovered]
    reason = (
        f"exact: {len(findings)} burst(s) admitted what a correct throttle would ("
        + _summaries(findings)
        + f") across {t.workers_seen} workers; at the limit {strongest.at_crossing} requests "
        f"on {strongest.crossing_workers} worker(s) were inside the app together "
        f"(in {strong} of {len(findings)} bursts)"
    )
    if t.indeterminate:
        reason += (
            f"; {t.indeterminate} request(s) died with their worker, counted or not: "
            "every burst's admissions fit with them either way"
        )
    if recovered:
        reason += f"; recovered a period later ({recovered[0][0]} admitted, none refused)"
    tried = [h for f in findings for h, _, _ in f.bypassed]
    if tried:
        reason += f"; no bypass through {len(tried)} client-address headers"
    if edges:
        reason += (
            f"; {len(edges)} burst(s) over {claim.limit} are explained by a window edge "
            f"(chance {chance:.2g})"
        )
    return verdict("pass", reason, edge_chance=chance if edges else None)


def under_admitted(finding: BurstFinding, claim: Claim) -> bool:
    """Whether the burst's fresh client got fewer than a correct throttle admits, even if every
    indeterminate request was admitted."""
    t = finding.tally
    return t.accepted + t.indeterminate < min(t.sent, claim.limit)


def overlapped(finding: BurstFinding, claim: Claim) -> bool:
    """Whether the burst crossed the limit with enough requests inside the app together to
    show a race: two on two workers where the fleet has them."""
    requests, workers = needed_overlap(claim.workers, claim.threads)
    ov = finding.overlap
    return (ov.at_crossing or 0) >= requests and ov.crossing_workers >= workers


def _strongest(findings: Sequence[BurstFinding]) -> Overlap:
    """The strongest crossing of the limit any burst had."""
    return max(
        (f.overlap for f in findings),
        key=lambda ov: (ov.at_crossing or 0, ov.crossing_workers),
        default=Overlap(),
    )


def _summaries(findings: Sequence[BurstFinding]) -> str:
    """Admitted of sent, per burst: all of them, or their range when there are many."""
    if len(findings) <= SUMMED_UP:
        return ", ".join(f.summary() for f in findings)
    admitted = [f.tally.accepted for f in findings]
    sent = [f.tally.sent for f in findings]
    return (
        f"{min(admitted)}-{max(admitted)} admitted of {min(sent)}-{max(sent)} sent, "
        f"{len(findings)} clients"
    )


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
