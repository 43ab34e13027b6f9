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

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.redaction import client_name
from harness.verdict.claims import (
    Basis,
    Burst,
    BurstFinding,
    Claim,
    Tally,
    Verdict,
    VerdictKind,
    combine,
    recovery_wait_s,
    strongest,
)
from harness.verdict.edges import EDGE_ALPHA, edge_chance
from harness.verdict.evidence import needed_overlap
from harness.verdict.findings import (
    BYPASS_PROOF,
    FROM_TRUSTED_PEER,
    find,
    overlapped,
    started_together,
    under_admitted,
)
from harness.verdict.global_budget import pooled
from harness.verdict.hints import (
    bypass_hint,
    error_hint,
    over_admission_hint,
    periods,
    secs,
    summaries,
    together,
    which,
)

SHARED_BUDGET = (
    "budget (does the throttle's key leave the client out, as a constant key or an ignored "
    "header would?)"
)


def judge(bursts: Sequence[Burst], claim: Claim) -> Verdict:
    """The verdict the bursts of one run support for ``claim``: each client's on its own, or,
    for a global limit, each burst's clients pooled into one history. The rules are tried in
    order (:data:`RULES`); the first that decides gives the verdict, else it is a pass."""
    if claim.scope == "global":
        bursts = pooled(bursts)
    run = _Run.of(tuple(find(b, claim) for b in bursts), claim)
    for rule in RULES:
        decided = rule(run)
        if decided is not None:
            return decided
    return _held(run)


@dataclass(frozen=True)
class _Run:
    """One run's findings under its claim, with what several rules read."""

    claim: Claim
    findings: tuple[BurstFinding, ...]
    tally: Tally
    expected: int
    edges: tuple[BurstFinding, ...]  # over the limit, as a window edge could explain
    chance: float  # that window edges explain them

    @classmethod
    def of(cls, findings: tuple[BurstFinding, ...], claim: Claim) -> _Run:
        edges = tuple(f for f in findings if f.fit.kind == "edge")
        return cls(
            claim,
            findings,
            combine([f.tally for f in findings]),
            sum(min(f.tally.sent, claim.limit) for f in findings),
            edges,
            edge_chance(findings, claim.period_s),
        )

    @property
    def beyond(self) -> list[BurstFinding]:
        """The bursts admitted past the limit (within their window's bound)."""
        limit = self.claim.limit
        return [f for f in self.findings if f.tally.accepted > min(f.tally.sent, limit)]

    @property
    def held(self) -> str:
        return "within bounds" if self.beyond else "exact"

    def verdict(
        self,
        kind: VerdictKind,
        basis: Basis,
        reason: str,
        hint: str = "",
        chance: float | None = None,
    ) -> Verdict:
        reason += f"; {self.claim.note}" if self.claim.note else ""
        factor = self.tally.accepted / self.expected if self.expected else None
        return Verdict(
            kind, self.expected, self.tally, reason, factor, hint, self.findings, chance, basis
        )


def _over(run: _Run) -> Verdict | None:
    """A burst admitted more than any correct throttle of the claimed window could."""
    over = [f for f in run.findings if f.fit.kind == "over"]
    if not over:
        return None
    worst = max(over, key=lambda f: f.tally.accepted)
    limit = run.claim.limit
    return run.verdict(
        "fail",
        "over",
        f"over-admission: {which(worst, run.findings)} admitted {worst.tally.accepted} of "
        f"{worst.tally.sent}, limit {limit} (x{worst.tally.accepted / limit:.2f})"
        f"; {worst.fit.reason}",
        over_admission_hint(worst, run.claim, run.findings),
    )


def _edges(run: _Run) -> Verdict | None:
    """More bursts over the limit than window edges plausibly explain."""
    if not run.edges or run.chance >= EDGE_ALPHA:
        return None
    counts = ", ".join(str(f.tally.accepted) for f in run.edges)
    worst = max(run.edges, key=lambda f: f.tally.accepted)
    return run.verdict(
        "fail",
        "edges",
        f"over-admission: {len(run.edges)} of {len(run.findings)} bursts admitted more than "
        f"{run.claim.limit} ({counts}); {run.edges[0].fit.reason}; window edges inside that "
        f"many bursts have a chance of {run.chance:.1e}",
        over_admission_hint(worst, run.claim, run.findings),
        chance=run.chance,
    )


def _bypass(run: _Run) -> Verdict | None:
    """Past the limit, spoofed client-address headers admitted between refused controls."""
    leaks = [(f, h, a, n) for f in run.findings for h, a, n in f.bypassed if a >= BYPASS_PROOF]
    if not leaks:
        return None
    f, header, admitted, sent = leaks[0]
    others = sorted({h for _, h, _, _ in leaks} - {header})
    trusted = header.endswith(FROM_TRUSTED_PEER)
    controls = "naming the exhausted client" if trusted else "without it"
    return run.verdict(
        "fail",
        "bypass",
        f"bypass: past the limit, {admitted} of {sent} requests of client {f.identity} "
        f"carrying {header} with another address were admitted, each between two "
        f"refused requests {controls}" + (f"; also {', '.join(others)}" if others else ""),
        bypass_hint(header, f.rewritten),
    )


def _errors(run: _Run) -> Verdict | None:
    """Statuses neither admitted nor refused, or transport errors."""
    t = run.tally
    if not t.errors:
        return None
    return run.verdict(
        "error",
        "errors",
        f"{t.errors} of {t.sent} requests failed: {'; '.join(t.error_samples)}",
        error_hint(t, run.claim.threads),
    )


def _under(run: _Run) -> Verdict | None:
    """A fresh client admitted fewer than the limit (with a hint when clients share one)."""
    claim, findings = run.claim, run.findings
    under = [f for f in findings if under_admitted(f, claim)]
    if not under:
        return None
    worst = min(under, key=lambda f: f.tally.accepted)
    hint = (
        "the throttle rejected requests it should admit (stale state from an earlier "
        "run, or a limit lower than claimed?)"
    )
    burst_mates = together(worst, findings)
    admitted = sum(f.tally.accepted for f in burst_mates)
    short = sum(under_admitted(g, claim) for g in burst_mates)
    if (
        len(burst_mates) > 1
        and short >= len(burst_mates) - 1
        and (admitted <= claim.limit + claim.workers * claim.threads)
    ):
        hint = (
            f"the {len(burst_mates)} clients of burst {worst.round} were admitted {admitted} "
            f"together, about the limit of one: they share one {SHARED_BUDGET}"
        )
    elif not under_admitted(findings[0], claim):
        hint = (
            f"a fresh client was refused after burst 1's client ({findings[0].identity}, "
            f"{client_name(findings[0].value)}) had used the limit: the clients share one "
            + SHARED_BUDGET
        )
    return run.verdict(
        "fail",
        "under",
        f"under-admission: {which(worst, findings)} admitted {worst.tally.accepted} of "
        f"{worst.tally.sent}, limit {claim.limit}",
        hint,
    )


def _shut_out(run: _Run) -> Verdict | None:
    """Sustained traffic refused with fewer than the limit admitted just before."""
    shut_out = [f for f in run.findings if f.unjustified]
    if not shut_out:
        return None
    f, claim = shut_out[0], run.claim
    return run.verdict(
        "fail",
        "shut-out",
        f"not let back in: client {f.identity} was refused {f.unjustified} time(s) with "
        f"fewer than {claim.limit} admitted in the {2 * claim.period_s:g}s before, sending "
        f"steadily (admitted per {claim.period_s:g}s: {periods(f.per_period)})",
        "a correct limiter admits a client again as its window moves on: one that counts "
        "refused hits (a log that records every hit), refreshes a key's TTL on every hit, or "
        "leaks its count never does while the client keeps sending",
    )


def _no_recovery(run: _Run) -> Verdict | None:
    """A client still refused once the claimed window has forgotten it."""
    stuck = [f for f in run.findings if f.recovered and f.recovered[1]]
    if not stuck:
        return None
    admitted, refused = stuck[0].recovered or (0, 0)
    return run.verdict(
        "fail",
        "no-recovery",
        f"no recovery: {recovery_wait_s(run.claim):g}s after its burst, client "
        f"{stuck[0].identity} was still refused ({refused} refused, {admitted} admitted)",
        "the throttle does not forget: a counter or key without an expiry (no TTL), or a "
        "window longer than claimed",
    )


def _never_limited(run: _Run) -> Verdict | None:
    """No burst sent more than the limit: nothing could be refused."""
    limit = run.claim.limit
    if not all(f.tally.sent <= limit for f in run.findings):
        return None
    sent = run.findings[0].tally.sent if run.findings else 0
    return run.verdict(
        "inconclusive",
        "never-limited",
        f"every burst was admitted whole, but {sent} requests never reach the limit of "
        f"{limit}: send more than {limit}",
    )


def _edges_unclean(run: _Run) -> Verdict | None:
    """Every burst over the limit could be a window edge, and none was clean."""
    if not run.edges or any(f.fit.kind == "within" for f in run.findings):
        return None
    return run.verdict(
        "inconclusive",
        "edges-unclean",
        f"{len(run.edges)} burst(s) admitted more than {run.claim.limit}, which a window edge "
        f"could explain ({run.edges[0].fit.reason}), and no burst was clean",
        chance=run.chance,
    )


def _few_workers(run: _Run) -> Verdict | None:
    """Too few workers served to show the state is shared."""
    claim, t = run.claim, run.tally
    if t.workers_seen >= claim.workers_needed:
        return None
    return run.verdict(
        "inconclusive",
        "few-workers",
        f"{run.held}, but only {t.workers_seen} of {claim.workers} workers served the traffic; "
        f"{claim.workers_needed} needed to show the state is shared",
    )


def _sustained_held(run: _Run) -> Verdict | None:
    """Sustained traffic that held: what it showed, and what it cannot (a race)."""
    if not run.claim.sustained:
        return None
    span = max((f.tally.span_s for f in run.findings), default=0.0)
    return run.verdict(
        "pass",
        "held",
        f"held: {len(run.findings)} client(s) sending steadily for {secs(span)}s were "
        f"admitted what a correct limiter admits and let back in as the window moved on "
        f"(admitted per {run.claim.period_s:g}s: {periods(run.findings[0].per_period)}) across "
        f"{run.tally.workers_seen} workers; one request at a time per client shows no race: "
        "bursts test that",
    )


def _no_overlap(run: _Run) -> Verdict | None:
    """No burst had requests inside the app together at the crossing, or at a window start."""
    claim = run.claim
    strong = sum(overlapped(f, claim) for f in run.findings)
    started = sum(started_together(f, claim) for f in run.findings)
    if strong and started:
        return None
    need_requests, need_workers = needed_overlap(claim.workers, claim.threads)
    where = "when the limit was crossed" if not strong else "when a window started"
    return run.verdict(
        "inconclusive",
        "no-overlap",
        f"{run.held}, but the requests never overlapped inside the app {where} "
        f"({strongest(run.findings).describe()}; {need_requests} requests on {need_workers} "
        "worker(s) needed where the limit is crossed and where a window starts): a race there "
        "would not have shown",
        "one global budget is started and crossed once per window: run again, or test "
        "the app with a shorter period (its rate setting) so that each burst crosses it anew"
        if claim.scope == "global"
        else "",
    )


RULES: tuple[Callable[[_Run], Verdict | None], ...] = (
    _over,
    _edges,
    _bypass,
    _errors,
    _under,
    _shut_out,
    _no_recovery,
    _never_limited,
    _edges_unclean,
    _few_workers,
    _sustained_held,
    _no_overlap,
)


def _held(run: _Run) -> Verdict:
    """A pass: every rule above found nothing; the reason says what held and how hard."""
    claim, findings, t = run.claim, run.findings, run.tally
    best = strongest(findings)
    strong = sum(overlapped(f, claim) for f in findings)
    started = sum(started_together(f, claim) for f in findings)
    pooled_clients = " (each pooling its clients: one budget)" if claim.scope == "global" else ""
    reason = (
        f"{run.held}: {len(findings)} burst(s){pooled_clients} admitted what a correct "
        f"throttle would ({summaries(findings)}) across {t.workers_seen} workers; at the "
        f"limit {best.at_crossing} requests on {best.crossing_workers} worker(s) were inside "
        f"the app together, at the window's start {best.at_start} on {best.start_workers} (at "
        f"the limit in {strong} of {len(findings)} bursts, at the start in {started})"
    )
    if run.beyond:  # the model and bound that held for the burst furthest past the limit
        most = max(run.beyond, key=lambda f: f.tally.accepted - min(f.tally.sent, claim.limit))
        reason += f"; {which(most, findings)} admitted {most.tally.accepted}: {most.fit.reason}"
    if t.indeterminate:
        reason += (
            f"; {t.indeterminate} request(s) died with their worker, counted or not: "
            "every burst's admissions fit with them either way"
        )
    recovered = [f.recovered for f in findings if f.recovered]
    if recovered:
        reason += (
            f"; recovered {recovery_wait_s(claim):g}s later ({recovered[0][0]} admitted, "
            "none refused)"
        )
    tried = [h for f in findings for h, _, _ in f.bypassed]
    if tried:
        direct = [h for h in tried if not h.endswith(FROM_TRUSTED_PEER)]
        reason += f"; no bypass through {len(direct)} client-address headers"
        reason += ", nor X-Forwarded-For from a same-host proxy" if len(direct) < len(tried) else ""
    if run.edges:
        reason += (
            f"; {len(run.edges)} burst(s) over {claim.limit} are explained by a window edge "
            f"(chance {run.chance:.2g})"
        )
    return run.verdict("pass", "held", reason, chance=run.chance if run.edges else None)
