"""One run of sustained traffic on one fleet: each of a round's clients sends at ``pace`` times
the rate for ``periods`` periods (:mod:`harness.traffic.sustained`); one :class:`Burst` per
client, which the judge reads as a sustained history (``Claim.sustained``): every interval
within the window's bound, and no refusal without the limit admitted just before it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from harness.campaign.rounds import STAMP_WAIT_S, target_for
from harness.fleet import Fleet
from harness.scenario import Scenario
from harness.traffic import Client
from harness.traffic.sustained import sustained
from harness.verdict import Burst, Claim


def send_sustained(
    fleet: Fleet,
    scenario: Scenario,
    claim: Claim,
    addresses: Iterator[str],
    values: Iterator[list[str]],
) -> list[Burst]:
    """The clients' sustained histories on ``fleet``, one :class:`Burst` each (round 1)."""
    target = target_for(fleet, scenario, claim)
    clients = [Client(next(addresses), value) for value in next(values, [])]
    if not clients:
        return []
    interval = claim.period_s / (scenario.pace * claim.limit)
    deadline = time.monotonic() + scenario.timeout_s
    histories = sustained(
        target,
        clients,
        interval_s=interval,
        duration_s=scenario.sustained_s,
        tag="s1",
        deadline=deadline,
    )
    time.sleep(min(STAMP_WAIT_S, max(0.0, deadline - time.monotonic())))
    stamps = fleet.read_stamps()
    return [
        Burst(
            client.address,
            records,
            {r.request_id: stamps[r.request_id] for r in records if r.request_id in stamps},
            "s1",
            value=client.value,
            round=1,
        )
        for client, records in zip(clients, histories, strict=True)
    ]
