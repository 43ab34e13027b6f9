"""A claimed global limit (``scope = "global"``): one budget for every client together, as a
downstream quota needs. The harness still sends each burst from fresh clients; the judge pools
every client of a burst into one history (:func:`pooled`) and judges that against the window,
so sharing is the point, not a failure. The bursts of a global run are spaced so that each
finds the budget forgotten (a period after the last request any client may have had counted,
two under ``any`` or ``sliding-counter``); where that outlasts the run's timeout (an hour's
limit), the run is one burst, and its reason says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from harness.verdict.claims import Burst

Scope = Literal["client", "global"]
SCOPES: tuple[Scope, ...] = ("client", "global")


def pooled(bursts: Sequence[Burst]) -> list[Burst]:
    """One :class:`~harness.verdict.judge.Burst` per round holding every client's requests of that
    round (and what was sent on them after it), named after its first client; the recovery
    requests go to the last round, the one a recovery check must wait after. Bursts without a
    round number are rounds of their own."""
    rounds: list[list[Burst]] = []
    for b in bursts:
        if rounds and b.round and rounds[-1][0].round == b.round:
            rounds[-1].append(b)
        else:
            rounds.append([b])
    out = [_pool(clients) for clients in rounds]
    recovery = [r for b in bursts for r in b.recovery]
    return [replace(b, recovery=recovery if i == len(out) - 1 else ()) for i, b in enumerate(out)]


def _pool(clients: Sequence[Burst]) -> Burst:
    return replace(
        clients[0],
        records=[r for b in clients for r in b.records],
        stamps={k: v for b in clients for k, v in b.stamps.items()},
        confirmation=[r for b in clients for r in b.confirmation],
        bypass=tuple(a for b in clients for a in b.bypass),
        indeterminate=frozenset().union(*(b.indeterminate for b in clients)),
        probes=[r for b in clients for r in b.probes],
    )
