"""Lanes: a burst's connections in the order a worker's threads will take them.

Where workers keep connections alive, each client's connections are mapped to workers in rounds
until each worker has an even share (:func:`harness.fleet.workers.probe_connections`); each
worker's mapped connections form a lane served by its threads. Workers without keep-alive
(gunicorn's sync worker) cannot be mapped: fresh connections form one lane that all workers take
from, in the order they were opened.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from harness.fleet.exchange import Exchange, open_exchange
from harness.fleet.workers import even_share, probe_connections
from harness.http.records import Target

MAP_SPARE = 0.5  # open up to 50% more connections than requests, for an even share per worker

MAP_ROUNDS = 3


@dataclass
class Lane:
    """Connections served by the same threads, in the order those threads take them: one
    worker's mapped connections (``slots`` = its threads), or, for workers without keep-alive,
    fresh connections every worker accepts from (``slots`` = the workers)."""

    slots: int
    queue: list[Exchange] = field(default_factory=list)
    released: int = 0
    bounded: bool = False  # an async worker's lane: never more than ``slots`` released at once
    mapped: bool = True  # one worker's connections (False: fresh ones, any worker takes them)

    def room(self, lanes: list[Lane], first: bool) -> int:
        """How many of this lane's requests a step may release: every one left (the lane's
        threads work through them), ``slots`` on a burst's first step or for an async worker
        (which takes them all at once), and none from fresh connections for async workers while
        a mapped lane has any left: they would land beside a mapped lane's, past the bound."""
        if self.bounded and not self.mapped and any(lane.mapped and lane.left for lane in lanes):
            return 0
        return min(self.left, self.slots) if first or self.bounded else self.left

    def take(self, n: int) -> list[Exchange]:
        taken = self.queue[self.released : self.released + n]
        self.released += len(taken)
        return taken

    @property
    def left(self) -> int:
        return len(self.queue) - self.released


def build_lanes(
    target: Target, wanted: Sequence[tuple[int, str, int]], deadline: float
) -> list[Lane]:
    """For each (client, address, count) in ``wanted``, ``count`` connections from ``address``,
    in lanes: mapped per worker where workers keep connections alive (one client's evenly
    over the workers; several clients' client after client in each worker's lane), the rest
    (or all, for sync workers) fresh in one more lane."""
    lanes: list[Lane] = []
    if target.threads > 1 or target.bounded:
        by_worker: dict[str, list[Exchange]] = defaultdict(list)
        for mapped in mapped_clients(target, wanted, deadline):
            for worker, queue in mapped.items():  # client after client in each worker's lane
                by_worker[worker] += queue
        lanes = [
            Lane(target.threads, queue, bounded=target.bounded)
            for queue in by_worker.values()
            if queue
        ]
    have: dict[int, int] = defaultdict(int)
    for ex in (ex for lane in lanes for ex in lane.queue):
        have[ex.client] += 1
    fresh: list[list[Exchange]] = []
    for client, address, count in wanted:
        fresh.append(fresh_connections(target, address, count - have[client], deadline))
        for ex in fresh[-1]:
            ex.client = client
    if any(fresh):
        # Unmapped connections land on any worker: as many at once as one worker's threads.
        slots = target.workers if target.threads == 1 else target.threads
        unmapped = [ex for queue in fresh for ex in queue]
        lanes.append(Lane(slots, unmapped, bounded=target.bounded, mapped=False))
    return lanes


def fresh_connections(target: Target, identity: str, count: int, deadline: float) -> list[Exchange]:
    """``count`` fresh connections, to each of the target's ports in turn; after the first that
    cannot be opened, no more are tried."""
    opened: list[Exchange] = []
    failure = ""
    ports = target.ports
    for i in range(count):
        if not failure:
            try:
                opened.append(open_exchange(target.host, ports[i % len(ports)], identity, deadline))
                continue
            except OSError as exc:
                failure = f"connect: {exc}"
        ex = Exchange(None, target.host, target.port)
        ex.error = failure
        opened.append(ex)
    return opened


def mapped_clients(
    target: Target, wanted: Sequence[tuple[int, str, int]], deadline: float
) -> list[dict[str, list[Exchange]]]:
    """Each client's connections by worker: one client mapped in rounds for an even share
    (:func:`mapped`); several in a single round, each client then taking an even share of what
    it got."""
    if len(wanted) == 1:
        return [mapped(target, *wanted[0], deadline)]
    sources = [(client, address) for client, address, count in wanted for _ in range(count)]
    pools = probe_connections(target.host, target.ports, sources, deadline, keep_alive=True)
    per_client: dict[int, dict[str, list[Exchange]]] = defaultdict(lambda: defaultdict(list))
    for worker, pool in pools.items():
        for ex in pool:
            per_client[ex.client][worker].append(ex)
    return [even_share(per_client[client], count) for client, _, count in wanted]


def mapped(
    target: Target, client: int, address: str, count: int, deadline: float
) -> dict[str, list[Exchange]]:
    """One client's connections by worker, opened in rounds until each worker has its share
    (or the spare is spent); an even share per worker is kept, the rest closed."""
    share = math.ceil(count / target.workers)
    budget = int(count * (1 + MAP_SPARE))
    pools: dict[str, list[Exchange]] = defaultdict(list)
    to_open = count
    try:
        for _ in range(MAP_ROUNDS):
            for worker, pool in probe_connections(
                target.host,
                target.ports,
                [(client, address)] * to_open,
                deadline,
                keep_alive=True,
            ).items():
                pools[worker] += pool
            budget -= to_open
            seen = [*pools, *(f"?{i}" for i in range(max(0, target.workers - len(pools))))]
            short = sum(max(0, share - len(pools.get(w, []))) for w in seen)
            to_open = min(budget, 2 * short)
            if not short or to_open <= 0:
                break
    except BaseException:
        for pool in pools.values():
            for ex in pool:
                ex.close()
        raise
    return even_share(pools, count)
