"""The window models, one class per algorithm a correct throttle may use, each bounding what it
could admit of a burst; :class:`AnyWindow` allows what any of them could."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from fractions import Fraction

from harness.verdict.windows.base import (
    ROUND_GUARD,
    Fit,
    Interval,
    WindowModel,
    chance_text,
    fit_of,
    secs,
)
from harness.verdict.windows.densest import (
    check,
    densest,
    densest_counter,
    densest_window,
    one_edge_bound,
)
from harness.verdict.windows.grid import (
    Split,
    assign,
    edge_region,
    grid_bound,
    near_refusals,
    ranges_in,
    window_of,
)


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
        n, first, last = check(accepted, limit, period_s)
        rule = f"{limit} in any {period_s:g}s"
        if n == 0 or last - first < period_s:
            bound = min(n, limit)
            return fit_of(
                self.name, n, bound, bound, 0.0, f"a sliding window admits at most {rule}"
            )
        phases = (0.0, first, math.nextafter(last, math.inf))
        bound = min([n] + [grid_bound(accepted, limit, period_s, p) for p in phases])
        dense = densest_window(accepted, limit, period_s)
        if n - dense.excess < bound:
            bound = n - dense.excess
            return fit_of(
                self.name,
                n,
                bound,
                bound,
                0.0,
                f"a sliding window ({rule}) admits at most {dense.allowed} in "
                f"{secs(dense.seconds)}s, and {dense.count} of these were admitted within "
                f"{secs(dense.seconds)}s",
            )
        return fit_of(
            self.name,
            n,
            bound,
            bound,
            0.0,
            f"a sliding window ({rule}) admits at most {bound} of these over {secs(last - first)}s",
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
        n, first, last = check(accepted, limit, period_s)
        ranges = ranges_in(accepted, period_s, 0.0)
        bound = assign(ranges, limit)
        windows = max(hi for _, hi in ranges) - min(lo for lo, _ in ranges) + 1 if n else 1
        if limit < n <= bound and windows == 2 and last - first < period_s:
            edge = (window_of(last, period_s, 0.0)) * period_s
            near = near_refusals(refused, edge - period_s, edge + period_s)
            if not Split(accepted, near, limit).fits(edge):
                return fit_of(
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
        return fit_of(
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
        n, first, last = check(accepted, limit, period_s)
        span = last - first
        if n == 0 or span < period_s:
            strict, loose = min(n, limit), one_edge_bound(accepted, limit)
            chance = min(1.0, span / period_s)
            near = near_refusals(refused, last - period_s, first + period_s)
            edges = edge_region(accepted, near, limit) if strict < n <= loose else ()
            if strict < n <= loose and not edges:
                return fit_of(
                    self.name,
                    n,
                    n - 1,
                    n - 1,
                    0.0,
                    f"a fixed window of unknown phase fills the window before an edge or the "
                    f"one after before it refuses, and wherever the edge, no split of these "
                    f"{n} admitted and {len(refused)} refused does",
                )
            found = fit_of(
                self.name,
                n,
                strict,
                loose,
                chance,
                f"a fixed window of unknown phase admits at most {strict} unless an edge falls "
                f"inside the {secs(span)}s burst (chance <= {chance_text(chance)}), {loose} "
                "across one edge",
            )
            return replace(found, edges=edges) if found.kind == "edge" else found
        windows = math.ceil((Fraction(last) - Fraction(first)) / Fraction(period_s)) + 1
        phases = (first, math.nextafter(last, math.inf))
        loose = min(
            [n, limit * windows] + [grid_bound(accepted, 2 * limit, period_s, p) for p in phases]
        )
        return fit_of(
            self.name,
            n,
            loose,
            loose,
            0.0,
            f"a fixed window of unknown phase ({limit} per {period_s:g}s) admits at most "
            f"{loose} of these over {secs(span)}s",
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
        n, first, last = check(accepted, limit, period_s)
        rate = limit / period_s

        def allowance(seconds: float) -> int:
            refill = rate * seconds
            return limit + math.floor(refill + ROUND_GUARD * max(1.0, refill))

        rule = f"a token bucket of {limit} refilling {limit} per {period_s:g}s"
        dense = densest(accepted, limit, rate)
        if dense.excess > 0:
            return fit_of(
                self.name,
                n,
                n - dense.excess,
                n - dense.excess,
                0.0,
                f"{rule} admits at most {dense.allowed} in {secs(dense.seconds)}s, and "
                f"{dense.count} of these were admitted within {secs(dense.seconds)}s",
            )
        span = last - first if n else 0.0
        bound = min(n, allowance(span))
        return fit_of(
            self.name, n, bound, bound, 0.0, f"{rule} admits at most {bound} in {secs(span)}s"
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
        n, first, last = check(accepted, limit, period_s)
        windows = FixedWindow().fit(accepted, limit, period_s)  # refusals left out
        rule = f"a sliding-window counter ({limit} per {period_s:g}s window"
        dense = densest_counter(accepted, limit, period_s)
        if dense.excess > 0 and n - dense.excess < windows.loose_bound:
            bound = n - dense.excess
            found = fit_of(
                self.name,
                n,
                min(windows.bound, bound),
                bound,
                windows.edge_chance,
                f"{rule}, the previous one weighted) admits at most {dense.allowed} in "
                f"{secs(dense.seconds)}s, and {dense.count} of these were admitted within "
                f"{secs(dense.seconds)}s",
            )
            return replace(found, edges=windows.edges) if found.kind == "edge" else found
        if windows.kind == "edge":
            reason = (
                f"{rule}) admits at most {windows.bound} unless an edge falls inside the "
                f"{secs(last - first)}s burst (chance <= {chance_text(windows.edge_chance)}), "
                f"{windows.loose_bound} across one edge"
            )
        else:
            reason = (
                f"{rule}) admits at most {windows.bound} of these over "
                f"{secs(last - first if n else 0.0)}s"
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
        self.recovery_periods = max(int(getattr(m, "recovery_periods", 1)) for m in self.models)

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
