"""Fixed windows on a grid: where an edge could have fallen given what a burst's client was
refused before and after it (:class:`Split`, :func:`edge_region`), and the most a window grid of
known phase admits of a burst (:func:`grid_bound`)."""

from __future__ import annotations

import heapq
import itertools
import math
from bisect import bisect_left
from collections.abc import Sequence
from fractions import Fraction

from harness.verdict.windows.base import Interval


class Split:
    """Whether a correct fixed window with one edge at ``e`` (and no other edge among these
    requests) could have admitted ``accepted`` and refused ``refused`` of a fresh client.

    Necessary conditions only, so true wherever such a window could: a request answered
    before the edge counts in the window before it, one sent at or after it in the window
    after, the rest in either; a refusal means its window had ``limit`` admitted, so with any
    refusal one window holds exactly ``limit`` of the admissions, and a refusal that must fall
    in the other needs that one full too.
    """

    def __init__(
        self, accepted: Sequence[Interval], refused: Sequence[Interval], limit: int
    ) -> None:
        self.n, self.limit = len(accepted), limit
        self.sent = sorted(s for s, _ in accepted)
        self.answered = sorted(r for _, r in accepted)
        self.any_refused = bool(refused)
        self.refused_last = max((s for s, _ in refused), default=-math.inf)
        self.refused_answered = min((r for _, r in refused), default=math.inf)

    def fits(self, e: float) -> bool:
        n, limit = self.n, self.limit
        if n > 2 * limit:
            return False
        before = bisect_left(self.answered, e)  # answered before the edge
        after = n - bisect_left(self.sent, e)  # sent at or after it
        if not self.any_refused:
            return max(before, n - limit) <= min(limit, n - after)
        refused_before = self.refused_answered < e
        refused_after = self.refused_last >= e
        for left in {limit, n - limit}:  # admissions before the edge: one window is full
            right = n - left
            if left < 0 or before > left or after > right:
                continue
            if (refused_before and left < limit) or (refused_after and right < limit):
                continue
            return True
        return False


def edge_region(
    accepted: Sequence[Interval], refused: Sequence[Interval], limit: int
) -> tuple[Interval, ...]:
    """Where one edge of a correct fixed window could have fallen, given what it admitted and
    refused: closed ranges (a point where only one instant fits). The conditions change only
    at the requests' ends, so each end and each gap between two ends is tried once."""
    split = Split(accepted, refused, limit)
    ends = sorted({t for iv in (*accepted, *refused) for t in iv})
    tries = [(t, t) for t in ends] + list(itertools.pairwise(ends))
    merged: list[Interval] = []
    for a, b in sorted(tries):
        if not split.fits(a if a == b else (a + b) / 2):
            continue
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return tuple(merged)


def near_refusals(refused: Sequence[Interval], lo: float, hi: float) -> list[Interval]:
    """The refusals that can only count in the windows meeting ``[lo, hi)``: sent before
    ``hi`` and answered at or after ``lo``."""
    return [(s, r) for s, r in refused if s < hi and r >= lo]


def grid_bound(accepted: Sequence[Interval], capacity: int, length: float, phase: float) -> int:
    """Most intervals placeable with ``capacity`` per window ``[phase + k*length, ...)``."""
    return assign(ranges_in(accepted, length, phase), capacity)


def ranges_in(accepted: Sequence[Interval], length: float, phase: float) -> list[tuple[int, int]]:
    """Each interval's first and last window index on the grid."""
    return [(window_of(s, length, phase), window_of(r, length, phase)) for s, r in accepted]


def window_of(t: float, length: float, phase: float) -> int:
    """``floor((t - phase) / length)`` over the reals: exact arithmetic near a window edge."""
    q = (t - phase) / length
    k = math.floor(q)
    margin = 1e-12 * max(1.0, abs(q))  # float error here is below 1e-15 * |q|
    if margin < q - k < 1 - margin:
        return k
    return math.floor((Fraction(t) - Fraction(phase)) / Fraction(length))


def assign(ranges: list[tuple[int, int]], capacity: int) -> int:
    """Most ranges ``[lo, hi]`` of windows that can each take one, ``capacity`` per window.

    Windows in order, each filled with the waiting ranges that end soonest: optimal for
    intervals of bins (an exchange argument), and O(n log n).
    """
    ranges = sorted(ranges)
    waiting: list[int] = []  # the last windows of ranges already open, as a heap
    placed = i = 0
    window = 0
    while i < len(ranges) or waiting:
        if not waiting:
            window = ranges[i][0]
        while i < len(ranges) and ranges[i][0] <= window:
            heapq.heappush(waiting, ranges[i][1])
            i += 1
        room = capacity
        while waiting and room:
            if heapq.heappop(waiting) >= window:
                placed += 1
                room -= 1
        window += 1
    return placed
