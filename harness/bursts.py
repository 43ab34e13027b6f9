"""One run's bursts on one fleet: how many, from which client, at which clock phase, and what is
sent after them.

Before the first, the fleet is warmed up (:mod:`harness.traffic.warm`): every worker thread runs
the app once, from an address no client gets, so that the first burst's window start is raced
as hard as any later one's.

A run sends several bursts, each from a fresh client address (a fresh budget for throttles
keyed on it), so that a race that shows only now and then is caught: the run fails if any burst
proves over-admission. The first burst sends the scenario's requests; later ones retest the
crossing of the limit (the limit plus ``RETEST_WAVES`` requests per thread). After each burst
the judge (:func:`harness.checker.judge`) rules on everything sent so far, and the run asks it
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

Every request sent on a client goes into the run's :class:`~harness.ledger.Ledger`, whoever
sent it (faults' probes too); follow-up checks are timed from it. Requests that provably never
reached the app (no response, and the probe never saw them) are sent again; an over-admission
with nothing rejected is followed by a few confirmation requests, which tell "no throttle at
all" from "a throttle every request raced past". With a bypass check, the last burst's exhausted
client then tries client-address headers a misconfigured app may trust (``BYPASS_HEADERS``),
one request at a time, each between two controls without one.

For a global limit (``scope = "global"``, :mod:`harness.global_budget`) the burst steps
towards the one budget of all its clients, each next burst waits until that budget is
forgotten, and the recovery check waits for the last request of any client.

Faults (:mod:`harness.faults`) act during the first burst and right after it (and then at least
one burst follows); the requests left without an answer inside a worker that died are
indeterminate.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

from harness import clock
from harness.checker import (
    Burst,
    Claim,
    Verdict,
    judge,
    more_bursts_could_settle,
    recovery_wait_s,
    strong_crossings,
    strong_starts,
)
from harness.evidence import Stamp
from harness.faults import Fault, FaultContext
from harness.fleet import Fleet
from harness.identities import identity_values
from harness.ledger import Ledger
from harness.providers import RedisServer
from harness.redis_proxy import RedisProxy
from harness.scenario import Scenario
from harness.sustained_run import send_sustained
from harness.traffic import ENGINES, Client, Engine, Record, Target, fresh_requests
from harness.traffic.warm import warm_up, warm_up_client

RETEST_WAVES = 4  # bursts after the first send the limit plus this many requests per thread
EXTRA_BURSTS = 6  # more bursts, at most, for a window edge to explain or a weak overlap
EXTRA_BURSTS_NO_OVERLAP = 18  # more bursts, at most, while no crossing has overlapped at all
ALIGN_PERIOD_S = 10.0  # bursts against periods this short start at chosen clock phases
RESEND_ROUNDS = 3
CONFIRMATIONS = 4  # requests sent after an over-admission with nothing rejected
STAMP_WAIT_S = 0.5
RECOVERY_PERIOD_S = 10.0  # periods this short: the first client is tried again once forgiven
RECOVERY_MARGIN_S = 0.05
RECOVERY_REQUESTS = 4
GOLDEN = 0.6180339887498949  # the fractional part of the golden ratio: phases spread evenly
PHASE_HEADROOM = 1.5  # a burst is given this many times the widest span so far
BYPASS_HEADERS = ("X-Forwarded-For", "X-Real-IP", "Forwarded", "True-Client-IP", "CF-Connecting-IP")
BYPASS_TRIES = 3  # requests per header, each with an address of its own


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
    sustained histories instead (:mod:`harness.sustained_run`)."""
    if claim.sustained:
        values = values if values is not None else identity_values(scenario)
        return send_sustained(fleet, scenario, claim, addresses, values)
    engine = ENGINES["burst" if scenario.traffic == "sustained" else scenario.traffic]
    target = Target(
        fleet.host,
        fleet.port,
        claim.workers,
        claim.threads,
        scenario.request,
        claim.statuses,
        fleet.ports[1:],
    )
    deadline = time.monotonic() + scenario.timeout_s
    values = values if values is not None else identity_values(scenario)

    def fresh_client() -> Client | None:
        batch = next(values, [])
        return Client(next(addresses), batch[0]) if batch else None

    ledger = Ledger()
    if scenario.warm_up:  # see traffic.warm
        ledger.add(warm_up(target, warm_up_client(next(addresses)), deadline))
    ctx = FaultContext(
        fleet, redis, target, claim, deadline, time.monotonic(), fresh_client, proxy, ledger
    )

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
        rounds.append(
            _one_round(
                engine,
                fleet,
                target,
                count,
                claim,
                clients,
                f"b{len(rounds) + 1}",
                deadline,
                align,
                mid_first_burst if faults and not rounds else None,
                faults,
            )
        )
        longest = max(longest, time.monotonic() - started)
        widest = max(widest, _span(rounds[-1]))
        for b in rounds[-1]:
            ledger.add([*b.records, *b.confirmation])
        if len(rounds) == 1:
            for fault in faults:
                fault.after_first_burst(ctx, rounds[0])
        verdict = judge(_numbered(rounds), claim)
    if scenario.bypass_check and verdict and verdict.bursts[-1].tally.rejected:
        rounds[-1][-1] = _with_bypass(rounds[-1][-1], target, deadline)  # the latest exhausted
        ledger.add(r for _, r in rounds[-1][-1].bypass)
    first = rounds[0][0] if rounds else None
    if first is not None:  # what faults sent on the first client, from the ledger
        known = {r.request_id for r in first.ledger()}
        probes = [r for r in ledger.of(first.identity) if r.request_id not in known]
        rounds[0][0] = replace(first, probes=probes)
    if claim.period_s <= RECOVERY_PERIOD_S and verdict and _wants_recovery(verdict):
        rounds[0][0] = _with_recovery(rounds[0][0], target, claim, deadline, ledger)
    return _numbered(rounds)


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


def _with_bypass(burst: Burst, target: Target, deadline: float) -> Burst:
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
    return replace(burst, bypass=tuple(attempts))


def _wants_recovery(verdict: Verdict) -> bool:
    """Whether a recovery check could still matter: nothing proven yet, the limit reached."""
    return (
        verdict.kind != "error"
        and verdict.basis not in ("over", "edges", "under")
        and bool(verdict.bursts)
        and verdict.bursts[0].tally.rejected > 0
    )


def _with_recovery(
    burst: Burst, target: Target, claim: Claim, deadline: float, ledger: Ledger
) -> Burst:
    """``burst`` with a few requests from its client sent once the claimed window has forgotten
    the last request of that client (of any client, for a global limit) a throttle may have
    counted (the ledger's, from any part of the run: the burst, confirmations, bypass controls,
    fault probes): a period later, two
    under ``any`` or ``sliding-counter`` (:func:`~harness.checker.recovery_wait_s`). A correct
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


def _one_round(
    engine: Engine,
    fleet: Fleet,
    target: Target,
    count: int,
    claim: Claim,
    clients: Sequence[Client],
    tag: str,
    deadline: float,
    align: tuple[float, float] | None,
    on_release: Callable[[int], None] | None = None,
    faults: Sequence[Fault] = (),
) -> list[Burst]:
    """One burst from ``clients``, as one :class:`Burst` per client. Requests that provably
    never reached the app (no response, and the probe never saw them) are sent again, and a
    client over-admitted with nothing refused is followed by a few confirmation requests.
    Unanswered requests that were inside a worker a fault killed are indeterminate."""
    records = engine(
        target,
        count,
        clients=clients,
        limit=claim.limit,
        tag=tag,
        deadline=deadline,
        align=align,
        on_release=on_release,
        shared=claim.scope == "global",
    )
    client_of = {c.address: c for c in clients}
    stamps = fleet.read_stamps()
    for _ in range(RESEND_ROUNDS):
        lost = [
            r
            for r in records
            if r.status is None
            and r.request_id not in stamps
            and not (r.error or "").startswith("not sent")
        ]
        if not lost or time.monotonic() >= deadline:
            break
        for address in dict.fromkeys(r.identity for r in lost):
            theirs = [r for r in lost if r.identity == address]
            again = fresh_requests(
                target,
                [f"{r.request_id.split('.')[0]}.{r.attempts + 1}" for r in theirs],
                identity=address,
                value=client_of[address].value,
                deadline=deadline,
            )
            for old, new in zip(theirs, again, strict=True):
                records[old.index] = replace(new, index=old.index, attempts=old.attempts + 1)
        stamps = fleet.read_stamps()
    stamps = _settled_stamps(fleet, records, stamps, deadline)
    dead = frozenset().union(*(f.lost_workers() for f in faults))
    indeterminate = frozenset(
        r.request_id
        for r in records
        if r.status is None and r.request_id in stamps and stamps[r.request_id].worker in dead
    )
    bursts = []
    confirmed = False
    for c, client in enumerate(clients):
        mine = records[c * count : (c + 1) * count]
        accepted = sum(claim.statuses.admitted(r.status) for r in mine)
        nothing_refused = not any(claim.statuses.refused(r.status) for r in mine)
        confirmation: list[Record] = []
        if (
            accepted > claim.limit
            and nothing_refused
            and not confirmed
            and (time.monotonic() < deadline)
        ):
            confirmed = True  # one client's confirmation tells it for every client
            confirmation = fresh_requests(
                target,
                [f"{tag}c-{i}" for i in range(CONFIRMATIONS)],
                identity=client.address,
                value=client.value,
                deadline=deadline,
            )
        ours = {r.request_id: stamps[r.request_id] for r in mine if r.request_id in stamps}
        bursts.append(
            Burst(
                client.address,
                mine,
                ours,
                tag,
                confirmation,
                value=client.value,
                indeterminate=indeterminate & {r.request_id for r in mine},
            )
        )
    return bursts


def _settled_stamps(
    fleet: Fleet, records: Sequence[Record], stamps: dict[str, Stamp], deadline: float
) -> dict[str, Stamp]:
    """``stamps``, once every answered request's exit is in: a worker may write it a moment
    after its answer reached the client."""
    answered = [r.request_id for r in records if r.status is not None]
    until = min(deadline, time.monotonic() + STAMP_WAIT_S)
    while not all(i in stamps and stamps[i].left_ns is not None for i in answered):
        if time.monotonic() >= until:
            break
        time.sleep(0.005)
        stamps = fleet.read_stamps()
    return stamps
