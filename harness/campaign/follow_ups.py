"""What a run sends after its bursts: a bypass check (client-address headers a misconfigured app
may trust, from the last burst's exhausted client) and a recovery check (the first client again,
once the claimed window has forgotten it). Both go into the run's ledger.
"""

from __future__ import annotations

import time
from dataclasses import replace

from harness.http import clock
from harness.http.records import Record, Target
from harness.traffic import fresh_requests
from harness.traffic.ledger import Ledger
from harness.verdict import Burst, Claim, Verdict, recovery_wait_s
from harness.verdict.findings import FROM_TRUSTED_PEER, TRUSTED_PEER

RECOVERY_PERIOD_S = 10.0  # periods this short: the first client is tried again once forgiven

RECOVERY_MARGIN_S = 0.05

RECOVERY_REQUESTS = 4

BYPASS_HEADERS = ("X-Forwarded-For", "X-Real-IP", "Forwarded", "True-Client-IP", "CF-Connecting-IP")

BYPASS_TRIES = 3  # requests per header, each with an address of its own
TRUSTED = "X-Forwarded-For" + FROM_TRUSTED_PEER  # the bypass attempts from a trusted peer


def with_bypass(burst: Burst, target: Target, deadline: float) -> Burst:
    """``burst`` with, right after it, requests from its exhausted client that carry a client
    address in a header a misconfigured app may trust (each its own address, from a range kept
    for documentation: in headers only, every packet still goes to loopback), one at a time,
    each between two controls without such a header: a slot that reopens meanwhile (a token
    refilled, an entry expired) goes as readily to a control as to a spoofed request, so only a
    spoofed request admitted between two refused controls tells (see ``checker._bypassed``)."""
    attempts: list[tuple[str, Record]] = []

    def send(header: str, extra: tuple[tuple[str, str], ...]) -> None:
        (record,) = fresh_requests(
            target,
            [f"{burst.tag}x-{len(attempts)}"],
            identity=burst.identity,
            value=burst.value,
            deadline=deadline,
            extra_headers=[extra],
        )
        attempts.append((header, record))

    send("", ())
    tries = 0
    for header in BYPASS_HEADERS:
        for _ in range(BYPASS_TRIES):
            tries += 1
            spoofed = f"203.0.113.{tries}"
            send(header, ((header, f"for={spoofed}" if header == "Forwarded" else spoofed),))
            send("", ())
    return replace(burst, bypass=tuple(attempts + _from_a_trusted_peer(burst, target, deadline)))


def _from_a_trusted_peer(burst: Burst, target: Target, deadline: float) -> list[tuple[str, Record]]:
    """The same from 127.0.0.1, where a proxy on the same host connects from and which servers
    trust by default (gunicorn's ``forwarded_allow_ips``, which it hands to uvicorn): each
    control names the exhausted client in X-Forwarded-For, each attempt another address. A
    server that takes the client address from the header for this peer refuses the controls
    (the app sees the exhausted client) and admits the attempts; one that does not hands the
    app 127.0.0.1 for all of them, a client of its own: no control is refused, nothing tells."""
    attempts: list[tuple[str, Record]] = []

    def send(label: str, forwarded: str) -> None:
        (record,) = fresh_requests(
            target,
            [f"{burst.tag}t-{len(attempts)}"],
            identity=TRUSTED_PEER,
            value=burst.value,
            deadline=deadline,
            extra_headers=[(("X-Forwarded-For", forwarded),)],
        )
        attempts.append((label, record))

    send("", burst.identity)
    for n in range(1, BYPASS_TRIES + 1):
        send(TRUSTED, f"198.51.100.{n}")
        send("", burst.identity)
    return attempts


def wants_recovery(verdict: Verdict) -> bool:
    """Whether a recovery check could still matter: nothing proven yet, the limit reached."""
    return (
        verdict.kind != "error"
        and verdict.basis not in ("over", "edges", "under")
        and bool(verdict.bursts)
        and verdict.bursts[0].tally.rejected > 0
    )


def with_recovery(
    burst: Burst, target: Target, claim: Claim, deadline: float, ledger: Ledger
) -> Burst:
    """``burst`` with a few requests from its client sent once the claimed window has forgotten
    the last request of that client (of any client, for a global limit) a throttle may have
    counted (the ledger's, from any part of the run: the burst, confirmations, bypass controls,
    fault probes): a period later, two
    under ``any`` or ``sliding-counter`` (:func:`~harness.verdict.judge.recovery_wait_s`). A correct
    throttle of the claimed window admits them all again."""
    last = ledger.last_counted(burst.identity if claim.scope == "client" else None, claim.statuses)
    if last is None:
        return burst
    wait = last + recovery_wait_s(claim) + RECOVERY_MARGIN_S - clock.now()
    if wait + 1.0 > deadline - time.monotonic():
        return burst
    time.sleep(max(0.0, wait))
    records = fresh_requests(
        target,
        [f"{burst.tag}r-{i}" for i in range(min(claim.limit, RECOVERY_REQUESTS))],
        identity=burst.identity,
        value=burst.value,
        deadline=deadline,
    )
    ledger.add(records)
    return replace(burst, recovery=records)
