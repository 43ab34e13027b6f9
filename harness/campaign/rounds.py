"""One round of a run: a burst from one or more fresh clients, as one :class:`Burst` per client,
with its requests that provably never reached the app sent again, the probe's stamps settled,
and, where a client was over-admitted with nothing refused, a few confirmation requests.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from harness.faults import Fault
from harness.fleet import Fleet
from harness.fleet.stamps import Stamp
from harness.fleet.worker_classes import ASYNC_CLASSES
from harness.http.records import Client, Record, Target
from harness.scenario import Scenario
from harness.traffic import Engine, fresh_requests
from harness.verdict import Burst, Claim

RESEND_ROUNDS = 3

CONFIRMATIONS = 4  # requests sent after an over-admission with nothing rejected

STAMP_WAIT_S = 0.5


def target_for(fleet: Fleet, scenario: Scenario, claim: Claim) -> Target:
    """Where and what a run's traffic sends: ``scenario``'s request to every instance of
    ``fleet``, on the claim's fleet shape and statuses."""
    return Target(
        fleet.host,
        fleet.port,
        claim.workers,
        claim.threads,
        scenario.request,
        claim.statuses,
        fleet.ports[1:],
        bounded=scenario.worker_class in ASYNC_CLASSES,
    )


def one_round(
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
    stamps = _resend_lost(fleet, target, records, clients, deadline)
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
        confirmation: list[Record] = []
        if not confirmed and _unrefused_over(mine, claim) and time.monotonic() < deadline:
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


def _unrefused_over(records: Sequence[Record], claim: Claim) -> bool:
    """Whether a client was admitted past the limit with nothing refused."""
    accepted = sum(claim.statuses.admitted(r.status) for r in records)
    return accepted > claim.limit and not any(claim.statuses.refused(r.status) for r in records)


def _resend_lost(
    fleet: Fleet,
    target: Target,
    records: list[Record],
    clients: Sequence[Client],
    deadline: float,
) -> dict[str, Stamp]:
    """Send again (in place in ``records``) the requests that provably never reached the app:
    no response, and the probe never saw them; then the probe's stamps, settled."""
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
    return settled_stamps(fleet, records, stamps, deadline)


def settled_stamps(
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
