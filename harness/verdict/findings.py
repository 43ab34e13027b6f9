"""One burst judged on its own (:func:`find`): its counts, how its admissions fit the claimed
window (:mod:`harness.verdict.windows`), the overlap its stamps show at the two critical points
(:mod:`harness.verdict.evidence`), and what was sent on its client after it: confirmations, a
recovery check, bypass attempts, and, for sustained traffic, its admissions per period and the
refusals no correct limiter makes.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Sequence

from harness.http.records import Record
from harness.http.request_template import Statuses
from harness.verdict.claims import Burst, BurstFinding, Claim, recovery_wait_s, tally
from harness.verdict.evidence import needed_overlap, overlap
from harness.verdict.windows import model_for

BYPASS_PROOF = 2  # spoofed requests admitted between refused controls that prove a bypass
TRUSTED_PEER = "127.0.0.1"  # a same-host proxy's address, which servers trust by default
FROM_TRUSTED_PEER = f" from {TRUSTED_PEER}"  # ends the label of bypass attempts sent from it


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
        rewritten=any(  # the server handed the app another address than the connection's
            r.peer not in (None, "", r.identity) and claim.statuses.admitted(r.status)
            for header, r in burst.bypass
            if header
        ),
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
