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

from harness.verdict.windows.base import Fit, FitKind, Interval, WindowModel
from harness.verdict.windows.models import (
    AnyWindow,
    FixedClockWindow,
    FixedWindow,
    SlidingCounter,
    SlidingWindow,
    TokenBucket,
)

__all__ = [
    "MODELS",
    "WINDOW_NAMES",
    "Fit",
    "FitKind",
    "Interval",
    "WindowModel",
    "model_for",
    "recovery_periods",
]

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


def recovery_periods(model: WindowModel | str) -> int:
    """How many periods after a client's last counted request a correct throttle of ``model``
    has forgotten it whole: one for windows, logs and buckets, two for a sliding-window counter
    (its previous window still weighs in during the period after)."""
    found = model_for(model) if isinstance(model, str) else model
    return int(getattr(found, "recovery_periods", 1))
