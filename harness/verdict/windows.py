"""Window algorithms as bounds: the most a correct throttle could admit of a burst's requests.

A throttle claims ``limit`` requests per ``period_s``. Each request a burst saw accepted was
admitted at some unknown instant inside its wall-clock interval ``(sent_at, received_at)``. For
each algorithm, a model computes the most of these requests a *correct* throttle could have
admitted; the checker compares the accepted count with that bound and quotes it in its reason.
A bound may overestimate (the harness is then less sensitive) but never underestimates: a
correct throttle is never failed. Each model's docstring says where it overestimates.
Windows are half-open, ``[t, t + d)``. Adding an algorithm is adding a class to :data:`MODELS`.
"""

from __future__ import annotations

import heapq
import itertools
import math
from bisect import bisect_left, insort
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Literal, Protocol

Interval = tuple[float, float]  # (sent_at, received_at), wall-clock seconds, sent_at <= received_at
FitKind = Literal["within", "edge", "over"]

# Throttles round their clocks and rates (Redis TIME in whole microseconds, emission intervals
# in integer units): the token bucket's continuous bound gets this much relative headroom.
_ROUND_GUARD = 1e-6
# A sliding-window counter may read the previous window's remaining share to the millisecond
# (Redis PTTL): its bound allows each interval this much longer.
COUNTER_CLOCK_S = 1e-3


@dataclass(frozen=True)
class Fit:
    """How a burst's accepted count fits one window algorithm."""

    kind: FitKind
    accepted: int
    bound: int  # the strict bound (no window edge of unknown phase inside); over: loose_bound
    loose_bound: int  # the most a correct throttle could admit of these, whatever its phase
    edge_chance: float  # edge: upper bound on the chance that an edge fell inside the burst
    model: str
    reason: str  # one short clause naming the bound, for a verdict's reason
    edges: tuple[Interval, ...] = ()  # edge: where one window edge could have fallen, closed


class WindowModel(Protocol):
    name: str

    def fit(
        self,
        accepted: Sequence[Interval],
        limit: int,
        period_s: float,
        refused: Sequence[Interval] = (),
    ) -> Fit:
        """How ``accepted`` fits; ``refused``, the same client's refused requests, may only
        narrow what a correct throttle could have done (models that do not use them ignore
        them)."""
        ...


def recovery_periods(model: WindowModel | str) -> int:
    """How many periods after a client's last counted request a correct throttle of ``model``
    has forgotten it whole: one for windows, logs and buckets, two for a sliding-window counter
    (its previous window still weighs in during the period after)."""
    found = model_for(model) if isinstance(model, str) else model
    return int(getattr(found, "recovery_periods", 1))


class SlidingWindow:
    """A sliding log (DRF's ``SimpleRateThrottle``): at most ``limit`` in any ``[t, t + d)``.

    Exact for a burst shorter than the period: ``min(n, limit)``. For longer bursts the exact
    count is throughput maximisation of equal-length jobs with release dates on ``limit``
    machines (P|r_j,p_j=p|sum U_j), solved only by large dynamic programs; a greedy schedule
    would give a *lower* bound, which is unsafe. Instead: back-to-back windows
    ``[phase + k*d, phase + (k+1)*d)`` are sliding windows too, so the exact known-phase
    fixed-window count on such a grid bounds the sliding count from above. The bound is the
    least of three grids (edges on the epoch clock, at the first send, just after the last
    receipt), and of the count less the most that any interval from a send to a receipt holds
    beyond ``limit`` per started period of its length (so a tight cluster is never lost
    between grid lines). Safe overestimate: a grid lets up to ``2*limit`` pass close around its
    edges.
    """

    name = "sliding"
    recovery_periods = 1

    def fit(
        self,
        accepted: Sequence[Interval],
        limit: int,
        period_s: float,
        refused: Sequence[Interval] = (),
    ) -> Fit:
        n, first, last = _check(accepted, limit, period_s)
        rule = f"{limit} in any {period_s:g}s"
        if n == 0 or last - first < period_s:
            bound = min(n, limit)
            return _fit(self.name, n, bound, bound, 0.0, f"a sliding window admits at most {rule}")
        phases = (0.0, first, math.nextafter(last, math.inf))
        bound = min([n] + [_grid_bound(accepted, limit, period_s, p) for p in phases])
        dense = _densest_window(accepted, limit, period_s)
        if n - dense.excess < bound:
            bound = n - dense.excess
            return _fit(
                self.name,
                n,
                bound,
                bound,
                0.0,
                f"a sliding window ({rule}) admits at most {dense.allowed} in "
                f"{_secs(dense.seconds)}s, and {dense.count} of these were admitted within "
                f"{_secs(dense.seconds)}s",
            )
        return _fit(
            self.name,
            n,
            bound,
            bound,
            0.0,
            f"a sliding window ({rule}) admits at most {bound} of these over "
            f"{_secs(last - first)}s",
        )


class FixedClockWindow:
    """A fixed window with edges at multiples of the period on the epoch clock.

    As ``key = f"{ip}:{int(time.time() // d)}"``, or django-ratelimit with a 1-second period.
    Each window ``[k*d, (k+1)*d)`` admits at most ``limit``; a request may count in any window
    its interval meets. Exact: intervals take windows by earliest last window (a greedy that
    is optimal for intervals of bins), window indices computed exactly.
    """

    name = "fixed-clock"
    recovery_periods = 1

    def fit(
        self,
        accepted: Sequence[Interval],
        limit: int,
        period_s: float,
        refused: Sequence[Interval] = (),
    ) -> Fit:
        n, first, last = _check(accepted, limit, period_s)
        ranges = _ranges(accepted, period_s, 0.0)
        bound = _assign(ranges, limit)
        windows = max(hi for _, hi in ranges) - min(lo for lo, _ in ranges) + 1 if n else 1
        if limit < n <= bound and windows == 2 and last - first < period_s:
            edge = (_window(last, period_s, 0.0)) * period_s
            near = _near(refused, edge - period_s, edge + period_s)
            if not _Split(accepted, near, limit).fits(edge):
                return _fit(
                    self.name,
                    n,
                    n - 1,
                    n - 1,
                    0.0,
                    f"a fixed window on the {period_s:g}s clock ({limit} per window) fills "
                    "the window before its edge or the one after before it refuses, and no "
                    f"split of these {n} admitted and {len(refused)} refused at that edge "
                    "does",
                )
        return _fit(
            self.name,
            n,
            bound,
            bound,
            0.0,
            f"a fixed window on the {period_s:g}s clock ({limit} per window) admits at most "
            f"{bound} of these across the {windows} window{'s' * (windows > 1)} they meet",
        )


class FixedWindow:
    """A fixed window of unknown phase: windows of at least ``d`` that never overlap.

    Covers clock grids of any phase, per-key offsets (django-ratelimit's ``crc32(key) % d``)
    and windows anchored at a key's first request (INCR + EXPIRE, as :mod:`harness.throttles`
    does). (A sliding-window counter never admits more than its fixed windows either, but it
    refuses before its window is full: :class:`SlidingCounter` ignores the refusals.)
    Shorter than the period, a burst meets at most two windows: with no edge inside it, at
    most ``limit`` pass (strict); the loose bound is the exact best over every edge position.
    From one period on, an edge always falls inside and ``strict == loose``: the least of
    ``limit * (ceil(span/d) + 1)`` (the most windows the span can meet) and the grid counts
    with ``2*limit`` per ``d`` (no interval of ``d`` meets more than two windows). A safe
    overestimate: it ignores where the windows' edges must fall relative to each other.
    """

    name = "fixed"
    recovery_periods = 1

    def fit(
        self,
        accepted: Sequence[Interval],
        limit: int,
        period_s: float,
        refused: Sequence[Interval] = (),
    ) -> Fit:
        n, first, last = _check(accepted, limit, period_s)
        span = last - first
        if n == 0 or span < period_s:
            strict, loose = min(n, limit), _one_edge_bound(accepted, limit)
            chance = min(1.0, span / period_s)
            near = _near(refused, last - period_s, first + period_s)
            edges = _edge_region(accepted, near, limit) if strict < n <= loose else ()
            if strict < n <= loose and not edges:
                return _fit(
                    self.name,
                    n,
                    n - 1,
                    n - 1,
                    0.0,
                    f"a fixed window of unknown phase fills the window before an edge or the "
                    f"one after before it refuses, and wherever the edge, no split of these "
                    f"{n} admitted and {len(refused)} refused does",
                )
            found = _fit(
                self.name,
                n,
                strict,
                loose,
                chance,
                f"a fixed window of unknown phase admits at most {strict} unless an edge falls "
                f"inside the {_secs(span)}s burst (chance <= {_chance(chance)}), {loose} "
                "across one edge",
            )
            return replace(found, edges=edges) if found.kind == "edge" else found
        windows = math.ceil((Fraction(last) - Fraction(first)) / Fraction(period_s)) + 1
        phases = (first, math.nextafter(last, math.inf))
        loose = min(
            [n, limit * windows] + [_grid_bound(accepted, 2 * limit, period_s, p) for p in phases]
        )
        return _fit(
            self.name,
            n,
            loose,
            loose,
            0.0,
            f"a fixed window of unknown phase ({limit} per {period_s:g}s) admits at most "
            f"{loose} of these over {_secs(span)}s",
        )


class TokenBucket:
    """A token bucket or GCRA holding ``limit`` and refilling ``limit / d`` per second.

    Any interval ``[t1, t2]`` admits at most ``limit + floor(limit * (t2 - t1) / d)`` (with a
    1e-6 relative headroom for the throttle's rounding), and the bound checks *every* interval
    from one request's send to another's receipt against the requests wholly inside it: a
    generous whole span never hides a few extra admissions packed close together. Where some
    interval holds ``k`` more than that, at least ``k`` of these requests were too many; the
    bound is the count less the largest such excess (a safe overestimate of the most a bucket
    could admit).
    """

    name = "token-bucket"
    recovery_periods = 1

    def fit(
        self,
        accepted: Sequence[Interval],
        limit: int,
        period_s: float,
        refused: Sequence[Interval] = (),
    ) -> Fit:
        n, first, last = _check(accepted, limit, period_s)
        rate = limit / period_s

        def allowance(seconds: float) -> int:
            refill = rate * seconds
            return limit + math.floor(refill + _ROUND_GUARD * max(1.0, refill))

        rule = f"a token bucket of {limit} refilling {limit} per {period_s:g}s"
        dense = _densest(accepted, limit, rate)
        if dense.excess > 0:
            return _fit(
                self.name,
                n,
                n - dense.excess,
                n - dense.excess,
                0.0,
                f"{rule} admits at most {dense.allowed} in {_secs(dense.seconds)}s, and "
                f"{dense.count} of these were admitted within {_secs(dense.seconds)}s",
            )
        span = last - first if n else 0.0
        bound = min(n, allowance(span))
        return _fit(
            self.name, n, bound, bound, 0.0, f"{rule} admits at most {bound} in {_secs(span)}s"
        )


class SlidingCounter:
    """A sliding-window counter: the current window's count plus the previous window's,
    weighted by the share of it still inside the sliding period (``limits``'
    "sliding-window-counter", Cloudflare's), windows clock-aligned (any phase) or anchored at a
    client's first hit. An approximation by design: it admits at most ``limit`` per window
    (so never more than its fixed windows), a fresh client at most ``limit`` in a period with
    no edge inside (always, when anchored), and it recovers gradually: full recovery may take
    two periods (:attr:`recovery_periods`).

    The bound is :class:`FixedWindow`'s from the admissions alone (a counter refuses before its
    window is full, so refusals place no edge), less the most any interval shorter than the
    period holds beyond ``limit + ceil(limit * (t2 - t1 + q) / d)``: across an edge at ``e``,
    the window before it admitted ``a <= limit`` and the one after, by ``e + x``, at most
    ``limit - floor(a * (d - x) / d)`` (a weighted count rounded down admits the most), so
    ``a`` plus that is at most ``limit + ceil(limit * x / d)``; ``q``, the limiter's clock
    resolution (:data:`COUNTER_CLOCK_S`), covers a remaining share read to the millisecond. A
    safe overestimate: the pairs searched are the best up to the rounding of ``ceil``.
    """

    name = "sliding-counter"
    recovery_periods = 2

    def fit(
        self,
        accepted: Sequence[Interval],
        limit: int,
        period_s: float,
        refused: Sequence[Interval] = (),
    ) -> Fit:
        n, first, last = _check(accepted, limit, period_s)
        windows = FixedWindow().fit(accepted, limit, period_s)  # refusals left out
        rule = f"a sliding-window counter ({limit} per {period_s:g}s window"
        dense = _densest_counter(accepted, limit, period_s)
        if dense.excess > 0 and n - dense.excess < windows.loose_bound:
            bound = n - dense.excess
            found = _fit(
                self.name,
                n,
                min(windows.bound, bound),
                bound,
                windows.edge_chance,
                f"{rule}, the previous one weighted) admits at most {dense.allowed} in "
                f"{_secs(dense.seconds)}s, and {dense.count} of these were admitted within "
                f"{_secs(dense.seconds)}s",
            )
            return replace(found, edges=windows.edges) if found.kind == "edge" else found
        if windows.kind == "edge":
            reason = (
                f"{rule}) admits at most {windows.bound} unless an edge falls inside the "
                f"{_secs(last - first)}s burst (chance <= {_chance(windows.edge_chance)}), "
                f"{windows.loose_bound} across one edge"
            )
        else:
            reason = (
                f"{rule}) admits at most {windows.bound} of these over "
                f"{_secs(last - first if n else 0.0)}s"
            )
        return replace(windows, model=self.name, reason=reason)


class AnyWindow:
    """The default: what no correct sliding, fixed (any phase), token-bucket or sliding-counter
    throttle exceeds.

    ``within`` if some model is (the smallest such bound), else ``edge`` if some model is (the
    largest edge chance), else ``over`` the largest loose bound of all. Its recovery waits for
    the slowest of them.
    """

    name = "any"

    def __init__(self, models: Sequence[WindowModel]) -> None:
        self.models = tuple(models)
        self.recovery_periods = max(recovery_periods(m) for m in self.models)

    def fit(
        self,
        accepted: Sequence[Interval],
        limit: int,
        period_s: float,
        refused: Sequence[Interval] = (),
    ) -> Fit:
        fits = [m.fit(accepted, limit, period_s, refused) for m in self.models]
        top = max(fits, key=lambda f: f.loose_bound)
        within = [f for f in fits if f.kind == "within"]
        edges = [f for f in fits if f.kind == "edge"]
        if within:
            best = min(within, key=lambda f: f.bound)
        elif edges:
            best = max(edges, key=lambda f: f.edge_chance)
        else:
            return Fit(
                "over",
                top.accepted,
                top.loose_bound,
                top.loose_bound,
                0.0,
                self.name,
                f"no window algorithm admits more than {top.loose_bound} of these: {top.reason}",
            )
        return Fit(
            best.kind,
            best.accepted,
            best.bound,
            top.loose_bound,
            best.edge_chance,
            best.model,
            best.reason,
            best.edges,
        )


_ALGORITHMS: tuple[WindowModel, ...] = (
    SlidingWindow(),
    FixedWindow(),
    FixedClockWindow(),
    TokenBucket(),
    SlidingCounter(),
)
MODELS: dict[str, WindowModel] = {
    "any": AnyWindow(_ALGORITHMS),
    **{m.name: m for m in _ALGORITHMS},
}
WINDOW_NAMES: tuple[str, ...] = tuple(MODELS)  # every accepted --window value, "any" first


def model_for(name: str) -> WindowModel:
    """The model called ``name``; ValueError naming the known ones otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(
            f"unknown window {name!r}: expected one of {', '.join(WINDOW_NAMES)}"
        ) from None


def _fit(model: str, n: int, strict: int, loose: int, chance: float, reason: str) -> Fit:
    """Classify ``n`` accepted against a strict and a loose bound."""
    if n <= strict:
        return Fit("within", n, strict, loose, 0.0, model, reason)
    if n <= loose:
        return Fit("edge", n, strict, loose, chance, model, reason)
    return Fit("over", n, loose, loose, 0.0, model, reason)


def _check(accepted: Sequence[Interval], limit: int, period_s: float) -> tuple[int, float, float]:
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


def _one_edge_bound(accepted: Sequence[Interval], limit: int) -> int:
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


def _densest(accepted: Sequence[Interval], limit: int, rate: float) -> Dense:
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
        allowed = limit + math.floor(refill + _ROUND_GUARD * max(1.0, refill))
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


def _densest_counter(accepted: Sequence[Interval], limit: int, period_s: float) -> Dense:
    """Over every interval ``[t1, t2]`` from one request's send to another's receipt, shorter
    than ``period_s``, the one whose requests (sent and answered inside it) most exceed a
    sliding-window counter's ``limit + ceil(rate * (t2 - t1 + COUNTER_CLOCK_S))``: as
    :func:`_densest`, each ``t1`` taking the receipts less than a period later. The best pair
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


def _densest_window(accepted: Sequence[Interval], limit: int, period_s: float) -> Dense:
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


class _Split:
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


def _edge_region(
    accepted: Sequence[Interval], refused: Sequence[Interval], limit: int
) -> tuple[Interval, ...]:
    """Where one edge of a correct fixed window could have fallen, given what it admitted and
    refused: closed ranges (a point where only one instant fits). The conditions change only
    at the requests' ends, so each end and each gap between two ends is tried once."""
    split = _Split(accepted, refused, limit)
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


def _near(refused: Sequence[Interval], lo: float, hi: float) -> list[Interval]:
    """The refusals that can only count in the windows meeting ``[lo, hi)``: sent before
    ``hi`` and answered at or after ``lo``."""
    return [(s, r) for s, r in refused if s < hi and r >= lo]


def _grid_bound(accepted: Sequence[Interval], capacity: int, length: float, phase: float) -> int:
    """Most intervals placeable with ``capacity`` per window ``[phase + k*length, ...)``."""
    return _assign(_ranges(accepted, length, phase), capacity)


def _ranges(accepted: Sequence[Interval], length: float, phase: float) -> list[tuple[int, int]]:
    """Each interval's first and last window index on the grid."""
    return [(_window(s, length, phase), _window(r, length, phase)) for s, r in accepted]


def _window(t: float, length: float, phase: float) -> int:
    """``floor((t - phase) / length)`` over the reals: exact arithmetic near a window edge."""
    q = (t - phase) / length
    k = math.floor(q)
    margin = 1e-12 * max(1.0, abs(q))  # float error here is below 1e-15 * |q|
    if margin < q - k < 1 - margin:
        return k
    return math.floor((Fraction(t) - Fraction(phase)) / Fraction(length))


def _assign(ranges: list[tuple[int, int]], capacity: int) -> int:
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


def _secs(seconds: float) -> str:
    return f"{round(seconds, 2):g}"


def _chance(p: float) -> str:
    """A probability rounded up to two decimals (give or take 1e-6, below clock resolution)."""
    return f"{min(1.0, math.ceil(p * 100 - 1e-4) / 100):g}"
