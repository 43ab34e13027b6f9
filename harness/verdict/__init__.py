"""The verdict stage: pure functions from a run's bursts to what they prove; no I/O.

Each client's burst is judged on its own (:mod:`~harness.verdict.findings`) against the most a
correct throttle of the claimed window could admit (:mod:`~harness.verdict.windows`) and the
overlap the probe's stamps show (:mod:`~harness.verdict.evidence`); the run's verdict follows
from rules tried in order (:mod:`~harness.verdict.judge`), with window edges weighed by their
chance (:mod:`~harness.verdict.edges`) and hints only where the evidence supports one
(:mod:`~harness.verdict.hints`). What a run claims and produced: :mod:`~harness.verdict.claims`.
"""

from __future__ import annotations

from harness.verdict.claims import (
    Basis,
    Burst,
    BurstFinding,
    Claim,
    Tally,
    Verdict,
    VerdictKind,
    combine,
    recovery_wait_s,
    tally,
)
from harness.verdict.edges import EDGE_ALPHA, edge_chance
from harness.verdict.findings import find
from harness.verdict.judge import judge
from harness.verdict.settle import more_bursts_could_settle, strong_crossings, strong_starts

__all__ = [
    "EDGE_ALPHA",
    "Basis",
    "Burst",
    "BurstFinding",
    "Claim",
    "Tally",
    "Verdict",
    "VerdictKind",
    "combine",
    "edge_chance",
    "find",
    "judge",
    "more_bursts_could_settle",
    "recovery_wait_s",
    "strong_crossings",
    "strong_starts",
    "tally",
]
