"""The words of a verdict: which burst a reason names, bursts summed up, and the hints given
only where the evidence supports a diagnosis (a non-atomic count, per-process state, no throttle
at all, a wrong path or status)."""

from __future__ import annotations

from collections.abc import Sequence

from harness.redaction import client_name
from harness.verdict.claims import SUMMED_UP, BurstFinding, Claim, Tally, unit_of


def periods(counts: Sequence[int]) -> str:
    return ",".join(map(str, counts)) if counts else "none"


def secs(seconds: float) -> str:
    return f"{round(seconds, 1):g}"


def summaries(findings: Sequence[BurstFinding]) -> str:
    """Admitted of sent, per burst: all of them, or their range when there are many."""
    if len(findings) <= SUMMED_UP:
        return ", ".join(f.summary() for f in findings)
    admitted = [f.tally.accepted for f in findings]
    sent = [f.tally.sent for f in findings]
    return (
        f"{min(admitted)}-{max(admitted)} admitted of {min(sent)}-{max(sent)} sent, "
        f"{len(findings)} {unit_of(findings)}"
    )


def which(f: BurstFinding, findings: Sequence[BurstFinding]) -> str:
    if len(findings) == 1:
        return "the burst"
    if not f.round:
        return f"burst {findings.index(f) + 1}"
    if len(together(f, findings)) > 1:
        return f"client {client_name(f.value)} of burst {f.round}"
    return f"burst {f.round}"


def together(f: BurstFinding, findings: Sequence[BurstFinding]) -> list[BurstFinding]:
    """The findings of the clients that were in ``f``'s burst with it (``f`` included)."""
    return [g for g in findings if g.round == f.round] if f.round else [f]


def over_admission_hint(
    f: BurstFinding, claim: Claim, findings: Sequence[BurstFinding] = ()
) -> str:
    """A diagnosis only where the evidence supports one."""
    t = f.tally
    confirmed = next(
        (
            g.confirmed_rejected
            for g in together(f, findings or [f])
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


def bypass_hint(header: str, rewritten: bool) -> str:
    """Who trusts the client-address ``header``: the server (it handed the app the header's
    address: ``rewritten``), or the throttle."""
    if rewritten:
        return (
            f"the server, not the limiter, took the client address from {header}: it trusts "
            "that header from the peers in gunicorn's forwarded_allow_ips (default "
            "127.0.0.1,::1, handed to uvicorn's worker), so behind a proxy on the same host "
            "any client picks its own identity; trust only your proxy's address, and have it "
            "overwrite X-Forwarded-For"
        )
    return (
        f"the throttle takes the client address from {header}, which any client can set: "
        "trust it only from your own proxy (DRF: set NUM_PROXIES)"
    )


def error_hint(t: Tally, per_worker: int = 1) -> str:
    """What a status neither admitted nor refused most likely means; ``per_worker``: requests
    in flight in one worker at most (threads, or an async worker's concurrency)."""
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
    if "HTTP 500" in t.error_samples and per_worker > 1:
        return (
            f"up to {per_worker} requests were in flight in one worker: if the app's own pool "
            "(its database's, redis.asyncio's max_connections) is smaller, it answers 500; "
            "lower --threads or --concurrency to the pool, or give the pool room"
        )
    return ""
