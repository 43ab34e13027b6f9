"""One run's bursts on one fleet: how many, from which client, at which clock phase, and what is
sent after them.

With a warm-up (``warm_up``, opt-in), the fleet is warmed up before the first burst
(:mod:`harness.traffic.warm`): every worker thread runs the app once, from an address no client
gets, so that the first burst's window start is raced as hard as any later one's. Each round is
sent by :func:`harness.campaign.rounds.one_round`; what follows the rounds (bypass and recovery
checks) by :mod:`harness.campaign.follow_ups`.

A run sends several bursts, each from a fresh client address (a fresh budget for throttles
keyed on it), so that a race that shows only now and then is caught: the run fails if any burst
proves over-admission. The first burst sends the scenario's requests; later ones retest the
crossing of the limit (the limit plus ``RETEST_WAVES`` requests per thread). After each burst
the judge (:func:`harness.verdict.judge.judge`) rules on everything sent so far, and the run asks it
whether more bursts could change that: none once a failure or error is proven; more (up to
``EXTRA_BURSTS``) while an over-admission could still be a window edge, or while fewer bursts
than planned crossed the limit with requests inside the app together (up to
``EXTRA_BURSTS_NO_OVERLAP`` while none has, or while no window's start has: on a busy machine a
worker can be off the CPU at many crossings in a row, and two sync workers rarely start a window
together). Where the period is short, each burst starts at a chosen phase of the
clock: the first just past a clock-aligned window edge, the next ones spread over the period
(``_phase``), so that a correct clock-aligned window is not crossed and no two bursts share a
phase; once the bursts are done the first client is tried again once the claimed window has
forgotten its last request a throttle may have counted (a period later, two under ``any`` or
``sliding-counter``: a sliding-window counter recovers gradually): a throttle that never
forgets fails there.

Every request sent on a client goes into the run's :class:`~harness.traffic.ledger.Ledger`, whoever
sent it (faults' probes too); follow-up checks are timed from it. Requests that provably never
reached the app (no response, and the probe never saw them) are sent again; an over-admission
with nothing rejected is followed by a few confirmation requests, which tell "no throttle at
all" from "a throttle every request raced past". With a bypass check, the last burst's exhausted
client then tries client-address headers a misconfigured app may trust (``BYPASS_HEADERS``),
one request at a time, each between two controls without one.

For a global limit (``scope = "global"``, :mod:`harness.verdict.global_budget`) the burst steps
towards the one budget of all its clients, each next burst waits until that budget is
forgotten, and the recovery check waits for the last request of any client.

Faults (:mod:`harness.faults`) act during the first burst and right after it (and then at least
one burst follows); the requests left without an answer inside a worker that died are
indeterminate.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace

from harness.campaign.follow_ups import (
    RECOVERY_MARGIN_S,
    RECOVERY_PERIOD_S,
    wants_recovery,
    with_bypass,
    with_recovery,
)
from harness.campaign.identities import identity_values
from harness.campaign.rounds import one_round, target_for
from harness.campaign.sustained import send_sustained
from harness.faults import Fault, FaultContext
from harness.fleet import Fleet
from harness.http import clock
from harness.redis.providers import RedisServer
from harness.redis.proxy import RedisProxy
from harness.scenario import Scenario
from harness.traffic import ENGINES, Client
from harness.traffic.ledger import Ledger
from harness.traffic.warm import warm_up, warm_up_client
from harness.verdict import (
    Burst,
    Claim,
    Verdict,
    judge,
    more_bursts_could_settle,
    recovery_wait_s,
    strong_crossings,
    strong_starts,
)

RETEST_WAVES = 4  # bursts after the first send the limit plus this many requests per thread
EXTRA_BURSTS = 6  # more bursts, at most, for a window edge to explain or a weak overlap
EXTRA_BURSTS_NO_OVERLAP = 18  # more bursts, at most, while no crossing has overlapped at all
ALIGN_PERIOD_S = 10.0  # bursts against periods this short start at chosen clock phases
GOLDEN = 0.6180339887498949  # the fractional part of the golden ratio: phases spread evenly
PHASE_HEADROOM = 1.5  # a burst is given this many times the widest span so far


def client_addresses() -> Iterator[str]:
    """Fresh loopback client addresses (127.X.Y.Z, Z never 0 or 255), never the same twice in
    one stream, which starts at a random place among the 16 million: so that sessions sharing
    a Redis (xdist workers, CI jobs on one server) almost surely share no throttle identity."""
    per_x = 256 * 254
    start = secrets.randbelow(254 * per_x)
    for n in range(start, start + 254 * per_x):
        x, rest = divmod(n % (254 * per_x), per_x)
        y, z = divmod(rest, 254)
        yield f"127.{x + 1}.{y}.{z + 1}"


def send_bursts(
    fleet: Fleet,
    scenario: Scenario,
    claim: Claim,
    addresses: Iterator[str],
    values: Iterator[list[str]] | None = None,
    faults: Sequence[Fault] = (),
    redis: RedisServer | None = None,
    proxy: RedisProxy | None = None,
) -> list[Burst]:
    """The bursts of one run on ``fleet``, each from fresh clients (the next of ``addresses``
    and the next ``{identity}`` values), until the run is settled or its deadline is too near
    for another; one :class:`Burst` per client of each. ``faults`` act on ``fleet``, ``redis``
    and the ``proxy`` in front of it. With sustained traffic (``claim.sustained``), the clients'
    sustained histories instead (:mod:`harness.campaign.sustained`)."""
    values = values if values is not None else identity_values(scenario)
    if claim.sustained:
        return send_sustained(fleet, scenario, claim, addresses, values)
    target = target_for(fleet, scenario, claim)
    deadline = time.monotonic() + scenario.timeout_s
    ledger = Ledger()
    if scenario.warm_up:  # see traffic.warm
        ledger.add(warm_up(target, warm_up_client(next(addresses)), deadline))

    def fresh_client() -> Client | None:
        batch = next(values, [])
        return Client(next(addresses), batch[0]) if batch else None

    ctx = FaultContext(
        fleet, redis, target, claim, deadline, time.monotonic(), fresh_client, proxy, ledger
    )
    rounds, verdict = _rounds(ctx, scenario, addresses, values, faults)
    return _numbered(_follow_ups(ctx, scenario, rounds, verdict))


def _rounds(
    ctx: FaultContext,
    scenario: Scenario,
    addresses: Iterator[str],
    values: Iterator[list[str]],
    faults: Sequence[Fault],
) -> tuple[list[list[Burst]], Verdict | None]:
    """Round after round of fresh clients, judged after each, while the judge says more could
    settle the verdict and the deadline leaves room; the rounds and the last verdict."""
    claim, target, ledger, deadline = ctx.claim, ctx.target, ctx.ledger, ctx.deadline
    engine = ENGINES["burst" if scenario.traffic == "sustained" else scenario.traffic]

    def mid_first_burst(released: int) -> None:
        for fault in faults:
            fault.mid_first_burst(ctx, released)

    rounds: list[list[Burst]] = []
    verdict: Verdict | None = None
    longest = 0.0  # the longest a round took, waits included
    widest = 0.0  # the longest span of a round's requests
    overlap_possible = scenario.traffic != "sequential"  # one request at a time never overlaps
    fault_between = any(f.acts_after_first_burst for f in faults)
    while (
        verdict is None
        or _wants_burst(verdict, len(rounds), scenario.bursts, claim, overlap_possible)
        or (fault_between and len(rounds) == 1)  # a fault after the first: one burst after it
    ):
        wait = _budget_wait(ledger, claim) if rounds else 0.0
        if rounds and deadline - time.monotonic() < wait + 2 * longest + claim.period_s * (
            claim.period_s <= ALIGN_PERIOD_S
        ):
            break  # another burst would likely be cut short: it could only muddle the verdict
        time.sleep(wait)
        clients = [Client(next(addresses), value) for value in next(values, [])]
        if not clients:
            break  # the identity file has no values left for a burst of fresh clients
        count = scenario.request_count
        if rounds:  # a retest of the crossing: the limit, every thread, and some more
            count = min(count, claim.limit + RETEST_WAVES * target.capacity)
        align = None
        if claim.period_s <= ALIGN_PERIOD_S:
            align = (claim.period_s, _phase(len(rounds), claim.period_s, widest))
        started = time.monotonic()
        on_release = mid_first_burst if faults and not rounds else None
        tag = f"b{len(rounds) + 1}"
        rounds.append(
            one_round(
                engine,
                ctx.fleet,
                target,
                count,
                claim,
                clients,
                tag,
                deadline,
                align,
                on_release,
                faults,
            )  # fmt: skip
        )
        longest = max(longest, time.monotonic() - started)
        widest = max(widest, _span(rounds[-1]))
        for b in rounds[-1]:
            ledger.add([*b.records, *b.confirmation])
        if len(rounds) == 1:
            for fault in faults:
                fault.after_first_burst(ctx, rounds[0])
        verdict = judge(_numbered(rounds), claim)
    return rounds, verdict


def _follow_ups(
    ctx: FaultContext, scenario: Scenario, rounds: list[list[Burst]], verdict: Verdict | None
) -> list[list[Burst]]:
    """``rounds`` with what was sent after them: the bypass check on the last burst's exhausted
    client, what faults sent on the first client (from the ledger), and the recovery check."""
    claim, target, ledger, deadline = ctx.claim, ctx.target, ctx.ledger, ctx.deadline
    if scenario.bypass_check and verdict and verdict.bursts[-1].tally.rejected:
        rounds[-1][-1] = with_bypass(rounds[-1][-1], target, deadline)  # the latest exhausted
        ledger.add(r for _, r in rounds[-1][-1].bypass)
    first = rounds[0][0] if rounds else None
    if first is not None:  # what faults sent on the first client, from the ledger
        known = {r.request_id for r in first.ledger()}
        probes = [r for r in ledger.of(first.identity) if r.request_id not in known]
        rounds[0][0] = replace(first, probes=probes)
    if claim.period_s <= RECOVERY_PERIOD_S and verdict and wants_recovery(verdict):
        rounds[0][0] = with_recovery(rounds[0][0], target, claim, deadline, ledger)
    return rounds


def _numbered(rounds: Sequence[Sequence[Burst]]) -> list[Burst]:
    """Every client's burst, each with the number of its round."""
    return [replace(b, round=n) for n, bursts in enumerate(rounds, 1) for b in bursts]


def _span(bursts: Sequence[Burst]) -> float:
    """From a round's first send to its last answer."""
    answered = [r for b in bursts for r in b.records if r.received_at is not None]
    if not answered:
        return 0.0
    return max(r.received_at or 0.0 for r in answered) - min(r.sent_at for r in answered)


def _phase(n: int, period_s: float, widest: float) -> float:
    """Where in the clock's period the ``n``-th burst starts: the first just past a
    clock-aligned edge, the next ones spread over the room the widest burst so far leaves
    before the next one (a golden-ratio sequence), so that a correct clock-aligned window is
    not crossed and no two bursts share a phase."""
    room = period_s - PHASE_HEADROOM * widest
    return (n * GOLDEN) % 1.0 * (room if room > 0 else period_s)


def _budget_wait(ledger: Ledger, claim: Claim) -> float:
    """How long until a global budget (``claim.scope``) has forgotten every request the run
    may have had counted, so that the next burst crosses it afresh (0 for a client's limit:
    each burst has fresh clients)."""
    last = ledger.last_counted(None, claim.statuses) if claim.scope == "global" else None
    if last is None:
        return 0.0
    return max(0.0, last + recovery_wait_s(claim) + RECOVERY_MARGIN_S - clock.now())


def _wants_burst(
    verdict: Verdict, rounds: int, planned: int, claim: Claim, overlap_possible: bool
) -> bool:
    """Another burst, unless the judge's verdict is settled: a failure or error proven, or as
    many bursts as planned crossed the limit, and as many started a window, with requests
    inside the app together (a burst that did not counts for nothing; each client of a burst
    crosses its own limit) and nothing
    is left that more bursts could decide (the judge says what: window edges still to tell
    from a race). Within the run's budget of extra bursts."""
    if verdict.kind in ("fail", "error") or verdict.basis == "never-limited":
        return False
    strong = strong_crossings(verdict, claim) if overlap_possible else len(verdict.bursts)
    starts = strong_starts(verdict, claim) if overlap_possible else len(verdict.bursts)
    if min(strong, starts) >= planned and not more_bursts_could_settle(
        verdict, claim, overlap_possible
    ):
        return False
    raced = min(strong, starts)  # both critical points raced in some burst
    extra = EXTRA_BURSTS if raced or not overlap_possible else EXTRA_BURSTS_NO_OVERLAP
    return rounds < planned + extra
