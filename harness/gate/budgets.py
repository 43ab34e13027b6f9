"""Budgets of a release gate: how much worse the ``to`` shape may be than the ``from`` shape.

A budget is ``METRIC=VALUE``. A signed value with ``%`` is a relative change (``p95=+10%``: the
p95 may grow by 10%; ``throughput=-5%``: it may fall by 5%); a signed value without ``%`` is an
absolute change in the metric's unit (``rss=+200MB``, ``p95=+20ms``, ``cpu=+15`` points); an
unsigned value is a cap (a floor for throughput) on the ``to`` shape alone (``errors=0``,
``cpu=80``). Pure functions, no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

# metric: (unit, higher is better, accepted suffixes with their factor to the unit)
METRICS: dict[str, tuple[str, bool, Mapping[str, float]]] = {
    "throughput": ("rps", True, {"": 1.0, "rps": 1.0}),
    "p50": ("ms", False, {"": 1.0, "ms": 1.0, "s": 1000.0}),
    "p95": ("ms", False, {"": 1.0, "ms": 1.0, "s": 1000.0}),
    "p99": ("ms", False, {"": 1.0, "ms": 1.0, "s": 1000.0}),
    "errors": ("%", False, {"": 1.0}),
    "cpu": ("%", False, {"": 1.0}),
    "rss": ("MB", False, {"": 1.0, "mb": 1.0, "gb": 1024.0, "kb": 1 / 1024}),
    "rss_worker": ("MB", False, {"": 1.0, "mb": 1.0, "gb": 1024.0, "kb": 1 / 1024}),
    "redis_clients": ("", False, {"": 1.0}),
    "redis_ops": ("ops/s", False, {"": 1.0}),
}
_VALUE = re.compile(r"^\s*([+-]?)\s*(\d+(?:\.\d+)?)\s*([A-Za-z%/]*)\s*$")


@dataclass(frozen=True)
class Budget:
    text: str
    metric: str
    kind: str  # "relative", "delta" or "cap"
    value: float  # percent for "relative", else in the metric's unit (signed for changes)


@dataclass(frozen=True)
class BudgetCheck:
    budget: Budget
    before: float
    after: float
    allowed: float  # the worst value of ``after`` the budget allows
    ok: bool

    def describe(self) -> str:
        unit = METRICS[self.budget.metric][0]
        bound = "at least" if METRICS[self.budget.metric][1] else "at most"
        state = "ok" if self.ok else "BREACHED"
        return (
            f"{self.budget.text}: {_fmt(self.before)} -> {_fmt(self.after)} {unit} "
            f"({bound} {_fmt(self.allowed)} allowed): {state}"
        ).replace("  ", " ")


def _fmt(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.4g}"


def parse_budget(text: str) -> Budget:
    """A budget from ``METRIC=VALUE``; ValueError with the reason otherwise."""
    metric, sep, value = text.partition("=")
    metric = metric.strip().lower().replace("-", "_")
    if not sep or metric not in METRICS:
        raise ValueError(
            f"budget {text!r}: expected METRIC=VALUE with METRIC one of {', '.join(METRICS)}"
        )
    m = _VALUE.match(value)
    if not m:
        raise ValueError(f"budget {text!r}: {value!r} is not a value such as +10%, +200MB or 0")
    sign, number, suffix = m.groups()
    amount = float(number)
    unit, _, suffixes = METRICS[metric]
    if suffix == "%" and sign:
        return Budget(text, metric, "relative", amount if sign == "+" else -amount)
    if suffix == "%" and unit == "%":
        suffix = ""
    if suffix.lower() not in suffixes:
        units = ", ".join(s for s in suffixes if s) or "no unit"
        raise ValueError(f"budget {text!r}: {metric} takes {units} (or a signed percentage)")
    amount *= suffixes[suffix.lower()]
    if sign:
        return Budget(text, metric, "delta", amount if sign == "+" else -amount)
    return Budget(text, metric, "cap", amount)


def check(budget: Budget, before: float, after: float) -> BudgetCheck:
    """Whether ``after`` (the ``to`` shape's value) keeps ``budget`` given ``before``."""
    higher_better = METRICS[budget.metric][1]
    if budget.kind == "relative":
        allowed = before * (1 + budget.value / 100)
    elif budget.kind == "delta":
        allowed = before + budget.value
    else:
        allowed = budget.value
    if math.isnan(after) or (math.isnan(allowed) and budget.kind != "cap"):
        ok = False  # nothing measured: no evidence the budget holds
    else:
        ok = after >= allowed if higher_better else after <= allowed
    return BudgetCheck(budget, before, after, allowed, ok)
