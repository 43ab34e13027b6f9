"""How likely window edges are to explain a run's bursts over the limit (:func:`edge_chance`): a
correct fixed window of unknown phase admits up to twice the limit to a burst an edge falls
inside, so bursts over the limit prove a race only when edges inside that many of them are
improbable.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from harness.verdict.claims import BurstFinding
from harness.verdict.windows import Interval

EDGE_ALPHA = 1e-3  # window edges explaining over-admissions must have at least this chance


def edge_chance(findings: Sequence[BurstFinding], period_s: float) -> float:
    """The chance that a correct fixed window of unknown phase shows as many over-admissions
    as window edges must explain here (the ``edge`` bursts): that at least that many of all the
    bursts had an edge inside (a p-value; small means edges do not explain them).

    Two ways a correct window's phase is unknown, and the larger chance of the two:

    - one phase for every client (a global grid at some offset): the share of phases that
      fall inside at least that many of the bursts' spans at once (a sweep over the spans'
      ends modulo the period; staggered clients of one burst share one edge);
    - a phase per client on whole seconds (django-ratelimit's ``crc32(key) % period``
      offsets): each burst independently, with the share of the period's whole seconds
      inside its span (a Poisson-binomial tail).

    Either way the edge must fall where each burst's admissions and refusals allow one
    (``Fit.edges``): where no phase, or no whole second, does for every such burst, that way
    is ruled out. Windows anchored at a client's first request have no edge inside its first
    period, and every burst is a fresh client's first. A window with a fractional phase of its
    own per client is a model we have not met in the wild; such a throttle could fail here.
    """
    edges = [f.fit.edges for f in findings if f.fit.kind == "edge"]
    if not edges:
        return 1.0
    spans = [
        (f.tally.first_sent, f.tally.last_received)
        for f in findings
        if f.tally.first_sent is not None and f.tally.last_received is not None
    ]
    shared = _shared_phase(spans, len(edges), period_s) if _one_phase_fits(edges, period_s) else 0
    whole = _whole_seconds(spans, len(edges), period_s) if all(map(_holds_whole, edges)) else 0
    return min(1.0, max(shared, whole))


def _one_phase_fits(edges: Sequence[Sequence[Interval]], period_s: float) -> bool:
    """Whether one window phase puts an edge where each of these bursts could have had it
    (each burst's ranges, from its admissions and refusals): a phase in all of them."""
    common: list[Interval] = [(0.0, period_s)]
    for ranges in edges:
        arcs: list[Interval] = []
        for a, b in ranges:
            if b - a >= period_s:
                arcs.append((0.0, period_s))
                continue
            start = a % period_s
            end = start + (b - a)
            arcs.append((start, min(end, period_s)))
            if end > period_s:
                arcs.append((0.0, end - period_s))
        common = [
            (max(a, c), min(b, d)) for a, b in common for c, d in arcs if max(a, c) <= min(b, d)
        ]
        if not common:
            return False
    return True


def _holds_whole(ranges: Sequence[Interval]) -> bool:
    """Whether an edge on a whole second could have fallen in one of these ranges."""
    return any(math.floor(b) >= math.ceil(a) for a, b in ranges)


def _shared_phase(spans: Sequence[tuple[float, float]], needed: int, period_s: float) -> float:
    """The share of window phases that put an edge inside at least ``needed`` of the spans."""
    always = 0  # spans of a period or more: an edge falls inside whatever the phase
    changes: list[tuple[float, int]] = [(0.0, 0), (period_s, 0)]
    for first, last in spans:
        if last - first >= period_s:
            always += 1
            continue
        start = first % period_s
        end = start + (last - first)
        arcs = [(start, min(end, period_s))] + ([(0.0, end - period_s)] if end > period_s else [])
        for a, b in arcs:
            changes += [(a, 1), (b, -1)]
    changes.sort()
    inside = always
    covered = 0.0
    for (at, step), (nxt, _) in itertools.pairwise(changes):
        inside += step
        if inside >= needed:
            covered += nxt - at
    return covered / period_s


def _whole_seconds(spans: Sequence[tuple[float, float]], needed: int, period_s: float) -> float:
    """The chance that at least ``needed`` spans hold an edge when each client's edges sit on
    whole seconds at an offset of its own: each span's whole seconds over the period's."""
    dist = [1.0]  # dist[k]: chance that exactly k of the spans so far had an edge inside
    for first, last in spans:
        p = min(1.0, (math.floor(last) - math.floor(first)) / max(1.0, period_s))
        dist = [
            (dist[k] if k < len(dist) else 0.0) * (1 - p) + (dist[k - 1] * p if k else 0.0)
            for k in range(len(dist) + 1)
        ]
    return sum(dist[needed:])
