"""What every window model shares: an admitted request's interval, a model's verdict on a
burst (:class:`Fit`), the :class:`WindowModel` protocol, and the words of a fit's reason."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Interval = tuple[float, float]  # (sent_at, received_at), wall-clock seconds, sent_at <= received_at

FitKind = Literal["within", "edge", "over"]

# Throttles round their clocks and rates (Redis TIME in whole microseconds, emission intervals
# in integer units): the token bucket's continuous bound gets this much relative headroom.
ROUND_GUARD = 1e-6

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


def fit_of(model: str, n: int, strict: int, loose: int, chance: float, reason: str) -> Fit:
    """Classify ``n`` accepted against a strict and a loose bound."""
    if n <= strict:
        return Fit("within", n, strict, loose, 0.0, model, reason)
    if n <= loose:
        return Fit("edge", n, strict, loose, chance, model, reason)
    return Fit("over", n, loose, loose, 0.0, model, reason)


def secs(seconds: float) -> str:
    return f"{round(seconds, 2):g}"


def chance_text(p: float) -> str:
    """A probability rounded up to two decimals (give or take 1e-6, below clock resolution)."""
    return f"{min(1.0, math.ceil(p * 100 - 1e-4) / 100):g}"
