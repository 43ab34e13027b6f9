"""Server-side evidence: when each request was inside the app, as the probe stamped it.

Pure functions, no I/O. Detection power is not assumed but measured here: a non-atomic throttle
can only over-admit if several requests were inside the app together at one of its two critical
points: where the count crossed the limit (a read-compare-write race), and where the client's
window started (a counter initialised by a plain ``set`` that concurrent first requests reset).
Every burst reports how many were at each (``Overlap``), and a pass needs both.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from harness.fleet.stamps import Stamp


@dataclass(frozen=True)
class Overlap:
    """How many requests were inside the app together.

    ``peak``: the most at any instant (``peak_workers``: over how many workers).
    ``at_crossing``: requests whose throttle check may have run while that of the request that
    took the limit's last place did (itself included; None when the limit was never reached),
    over ``crossing_workers``: a check runs from a request's entry for at most as long as a
    refused request stays in the app.
    ``at_start``: the same around the request that took the window's first place (the first
    admitted; None when none was), over ``start_workers``.
    """

    peak: int = 0
    peak_workers: int = 0
    at_crossing: int | None = None
    crossing_workers: int = 0
    at_start: int | None = None
    start_workers: int = 0

    def describe(self) -> str:
        text = f"peak {self.peak} in the app on {self.peak_workers} worker(s)"
        if self.at_start is not None:
            text += f", {self.at_start} at the window's start on {self.start_workers}"
        if self.at_crossing is not None:
            text += f", {self.at_crossing} at the limit on {self.crossing_workers}"
        return text


def overlap(stamps: Sequence[Stamp], accepted: Collection[str], limit: int) -> Overlap:
    """The overlap of one burst's ``stamps``; ``accepted`` holds the ids answered 200. Admitted
    requests take their places in the order they left the app: the first took the window's
    first place, the ``limit``-th its last."""
    done = [s for s in stamps if s.left_ns is not None]
    if not done:
        return Overlap()
    peak, peak_workers = _peak(done)
    admitted = sorted((s for s in done if s.request in accepted), key=lambda s: s.left_ns or 0)
    if not admitted:
        return Overlap(peak, peak_workers)
    check = _check_ns(done, accepted)

    def checking(s: Stamp) -> tuple[int, int]:
        """When ``s``'s throttle check may have run: from its entry, at most ``check`` long."""
        stay = (s.left_ns or s.entered_ns) - s.entered_ns
        return s.entered_ns, s.entered_ns + (stay if check is None else min(stay, check))

    def beside(request: Stamp) -> tuple[int, int]:
        """Requests whose check may have run with ``request``'s (itself included), and over
        how many workers."""
        start, end = checking(request)
        together = [s for s in done if checking(s)[0] <= end and checking(s)[1] >= start]
        return len(together), len({s.worker for s in together})

    at_start, start_workers = beside(admitted[0])
    if len(admitted) < limit:
        return Overlap(peak, peak_workers, at_start=at_start, start_workers=start_workers)
    at_crossing, crossing_workers = beside(admitted[limit - 1])
    return Overlap(peak, peak_workers, at_crossing, crossing_workers, at_start, start_workers)


def _check_ns(done: Sequence[Stamp], accepted: Collection[str]) -> int | None:
    """The longest a throttle check may take: the median stay in the app of a refused request
    (its answer came from the check, so the check took no longer); None when none was refused.
    An app with a fast check and a slow view is not credited with overlap its checks never
    had."""
    stays = sorted(
        (s.left_ns or 0) - s.entered_ns
        for s in done
        if s.request not in accepted and s.status is not None and s.status >= 400
    )
    return stays[len(stays) // 2] if stays else None


def _peak(done: Sequence[Stamp]) -> tuple[int, int]:
    """The most requests inside at once (an exit sorts before an entry at the same instant)."""
    events = sorted(
        [(s.entered_ns, 1, i) for i, s in enumerate(done)]
        + [(s.left_ns or 0, 0, i) for i, s in enumerate(done)]
    )
    inside: set[int] = set()
    best, best_workers = 0, 0
    for _, kind, i in events:
        if kind:
            inside.add(i)
            if len(inside) > best:
                best = len(inside)
                best_workers = len({done[j].worker for j in inside})
        else:
            inside.discard(i)
    return best, best_workers


def needed_overlap(workers: int, threads: int) -> tuple[int, int]:
    """(requests, workers) that must have been inside the app together at the limit, and at the
    window's start, before an exact count proves anything: two requests on two workers where
    the fleet allows it."""
    return min(2, workers * threads), min(2, workers)
