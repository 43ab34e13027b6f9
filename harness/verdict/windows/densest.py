"""The densest intervals of a burst: how many admissions any interval holds beyond what a model
allows, searched over every interval in O(n log n) (a max-tree over receipts for a token
bucket; sweeps for sliding windows and sliding-window counters)."""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Sequence
from dataclasses import dataclass

from harness.verdict.windows.base import COUNTER_CLOCK_S, ROUND_GUARD, Interval


def check(accepted: Sequence[Interval], limit: int, period_s: float) -> tuple[int, float, float]:
    """Validate the inputs; return the count, the first send and the last receipt."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    if not (math.isfinite(period_s) and period_s > 0):
        raise ValueError(f"period must be a positive number of seconds, not {period_s}")
    for sent, received in accepted:
        if not (math.isfinite(sent) and math.isfinite(received) and sent <= received):
            raise ValueError(f"bad interval ({sent}, {received}): need sent <= received")
    if not accepted:
        return 0, 0.0, 0.0
    return len(accepted), min(s for s, _ in accepted), max(r for _, r in accepted)


def one_edge_bound(accepted: Sequence[Interval], limit: int) -> int:
    """Most of the (shorter than a period) intervals that fit ``limit`` either side of one edge.

    An edge ``e`` splits ``[e - d, e)`` from ``[e, e + d)``: an interval may go left if it was
    sent before ``e`` and right if it was received at or after ``e``. The counts change only at
    the intervals' ends, so trying each end inside the burst finds the best edge exactly.
    """
    n = len(accepted)
    if n == 0:
        return 0
    starts = sorted(s for s, _ in accepted)
    ends = sorted(r for _, r in accepted)
    best = min(n, limit)
    for edge in set(starts) | set(ends):
        if starts[0] < edge <= ends[-1]:
            left_only = bisect_left(ends, edge)  # received before the edge
            right_only = n - bisect_left(starts, edge)  # sent at or after it
            either = n - left_only - right_only
            best = max(best, min(left_only, limit) + min(right_only, limit) + either)
    return min(best, 2 * limit)


@dataclass(frozen=True)
class Dense:
    """The interval that holds the most requests beyond what a model allows in it."""

    excess: int  # requests wholly inside, less the allowance; <= 0 when every interval fits
    count: int
    allowed: int
    seconds: float


def densest(accepted: Sequence[Interval], limit: int, rate: float) -> Dense:
    """Over every interval ``[t1, t2]`` from one request's send to another's receipt, the one
    whose requests (sent and answered inside it, so admitted inside it whenever admitted) most
    exceed a token bucket's ``limit + floor(rate * (t2 - t1))`` (with the rounding headroom).

    From the latest send back to the earliest, each request joins a max-tree over the receipts
    (every receipt at or after its own counts it once more); the tree's top is the best
    ``t2`` for this ``t1`` up to the floor, which the pair found is then charged exactly. The
    floor never hides an excess: with whole counts, ``count - limit > rate * span`` exactly when
    ``count - limit > floor(rate * span)``. O(n log n).
    """
    n = len(accepted)
    if n <= limit:
        return Dense(n - limit, n, limit, 0.0)
    origin = min(s for s, _ in accepted)
    receipts = sorted(r - origin for _, r in accepted)
    tree = _MaxTree([-rate * r for r in receipts])
    by_send = sorted(((s - origin, r - origin) for s, r in accepted), reverse=True)
    best = Dense(-n - 1, 0, 0, 0.0)
    slot: dict[float, int] = {}  # the next free leaf among equal receipts
    i = 0
    while i < n:
        t1 = by_send[i][0]
        while i < n and by_send[i][0] == t1:
            r = by_send[i][1]
            first = bisect_left(receipts, r)
            leaf = slot.get(r, first)
            slot[r] = leaf + 1
            tree.add(first, n, 1.0)  # every receipt at or after r now counts this request
            tree.activate(leaf)
            i += 1
        value, leaf = tree.top()
        t2 = receipts[leaf]
        count = round(value + rate * t2)  # the requests inside [t1, t2], a whole number
        refill = rate * (t2 - t1)
        allowed = limit + math.floor(refill + ROUND_GUARD * max(1.0, refill))
        if count - allowed > best.excess:
            best = Dense(count - allowed, count, allowed, t2 - t1)
    return best


class _MaxTree:
    """Leaves in a row, each inactive (minus infinity) until activated: add to a range, and
    the largest active leaf with its position."""

    def __init__(self, base: Sequence[float]) -> None:
        self.size = 1
        while self.size < len(base):
            self.size *= 2
        self.base = list(base)
        self.pending = [0.0] * (2 * self.size)  # added to a whole node's range
        self.best: list[tuple[float, int]] = [(-math.inf, -1)] * (2 * self.size)

    def add(
        self, lo: int, hi: int, delta: float, node: int = 1, nlo: int = 0, nhi: int = -1
    ) -> None:
        nhi = self.size if nhi < 0 else nhi
        if hi <= nlo or nhi <= lo:
            return
        if lo <= nlo and nhi <= hi:
            self.pending[node] += delta
            value, at = self.best[node]
            self.best[node] = (value + delta, at)
            return
        mid = (nlo + nhi) // 2
        self.add(lo, hi, delta, 2 * node, nlo, mid)
        self.add(lo, hi, delta, 2 * node + 1, mid, nhi)
        self._pull(node)

    def activate(self, leaf: int) -> None:
        node = self.size + leaf
        self.best[node] = (self.base[leaf] + self.pending[node], leaf)
        node //= 2
        while node:
            self._pull(node)
            node //= 2

    def top(self) -> tuple[float, int]:
        return self.best[1]

    def query(
        self, lo: int, hi: int, node: int = 1, nlo: int = 0, nhi: int = -1
    ) -> tuple[float, int]:
        """The largest active leaf in ``[lo, hi)`` with its position; ``(-inf, -1)``: none."""
        nhi = self.size if nhi < 0 else nhi
        if hi <= nlo or nhi <= lo:
            return (-math.inf, -1)
        if lo <= nlo and nhi <= hi:
            return self.best[node]
        mid = (nlo + nhi) // 2
        value, at = max(
            self.query(lo, hi, 2 * node, nlo, mid), self.query(lo, hi, 2 * node + 1, mid, nhi)
        )
        return (value + self.pending[node], at)

    def _pull(self, node: int) -> None:
        value, at = max(self.best[2 * node], self.best[2 * node + 1])
        self.best[node] = (value + self.pending[node], at)


def densest_counter(accepted: Sequence[Interval], limit: int, period_s: float) -> Dense:
    """Over every interval ``[t1, t2]`` from one request's send to another's receipt, shorter
    than ``period_s``, the one whose requests (sent and answered inside it) most exceed a
    sliding-window counter's ``limit + ceil(rate * (t2 - t1 + COUNTER_CLOCK_S))``: as
    :func:`densest`, each ``t1`` taking the receipts less than a period later. The best pair
    is found up to the rounding of ``ceil`` and then charged exactly, so an excess reported is
    always real (it may miss one by less than a request: a safe overestimate). O(n log n)."""
    n = len(accepted)
    if n <= limit:
        return Dense(n - limit, n, limit, 0.0)
    rate = limit / period_s
    origin = min(s for s, _ in accepted)
    receipts = sorted(r - origin for _, r in accepted)
    tree = _MaxTree([-rate * r for r in receipts])
    by_send = sorted(((s - origin, r - origin) for s, r in accepted), reverse=True)
    best = Dense(-n - 1, 0, 0, 0.0)
    slot: dict[float, int] = {}
    i = 0
    while i < n:
        t1 = by_send[i][0]
        while i < n and by_send[i][0] == t1:
            r = by_send[i][1]
            first = bisect_left(receipts, r)
            leaf = slot.get(r, first)
            slot[r] = leaf + 1
            tree.add(first, n, 1.0)
            tree.activate(leaf)
            i += 1
        value, leaf = tree.query(0, bisect_left(receipts, t1 + period_s))
        if leaf < 0:
            continue
        t2 = receipts[leaf]
        count = round(value + rate * t2)
        allowed = limit + math.ceil(rate * (t2 - t1 + COUNTER_CLOCK_S))
        if count - allowed > best.excess:
            best = Dense(count - allowed, count, allowed, t2 - t1)
    return best


def densest_window(accepted: Sequence[Interval], limit: int, period_s: float) -> Dense:
    """Over every interval from one request's send to another's receipt shorter than
    ``period_s``, the one whose requests (sent and answered inside it) most exceed ``limit``:
    from each send, those sent at or after it and answered less than a period later."""
    n = len(accepted)
    best = Dense(-n - 1, 0, 0, 0.0)
    by_send = sorted(accepted)
    receipts: list[float] = []  # of the requests sent at or after the current send, sorted
    for k in range(n - 1, -1, -1):
        t1, r = by_send[k]
        insort(receipts, r)
        if k and by_send[k - 1][0] == t1:
            continue
        end = bisect_left(receipts, t1 + period_s)  # answered less than a period after t1
        if end and end - limit > best.excess:
            best = Dense(end - limit, end, limit, receipts[end - 1] - t1)
    return best
