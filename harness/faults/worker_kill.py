"""``worker-kill``: SIGKILL one worker while the first burst's requests are inside it.

Once at least half the limit has been released, the worker with the most of the burst's
requests inside the app (from the probe's stamps; waiting up to ``WAIT_INSIDE_S`` for one) is
killed. gunicorn starts another in its place. The burst's requests that never reached the app
are sent again as usual; those that were inside it and got no answer are indeterminate.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence

from harness.faults import FaultContext, FaultOutcome
from harness.verdict import Burst

WAIT_INSIDE_S = 0.2


class WorkerKill:
    kind = "worker-kill"
    acts_after_first_burst = False

    def __init__(self) -> None:
        self.killed: str | None = None
        self.inside = 0
        self.at_s: float | None = None
        self.indeterminate = 0
        self.note = ""

    def mid_first_burst(self, ctx: FaultContext, released: int) -> None:
        if self.at_s is not None or released < max(1, ctx.claim.limit // 2):
            return
        until = time.monotonic() + WAIT_INSIDE_S
        inside: Counter[str] = Counter()
        while True:
            stamps = ctx.fleet.read_stamps()
            inside = Counter(s.worker for s in stamps.values() if s.left_ns is None)
            if inside or time.monotonic() >= until:
                break
            time.sleep(0.001)
        victim = inside.most_common(1)[0][0] if inside else sorted(ctx.fleet.worker_ids)[0]
        self.at_s = ctx.at_s(time.monotonic())
        self.note = ctx.fleet.kill_worker(victim)
        if self.note:
            return
        self.killed = victim
        self.inside = inside.get(victim, 0)

    def lost_workers(self) -> frozenset[str]:
        return frozenset({self.killed}) if self.killed else frozenset()

    def after_first_burst(self, ctx: FaultContext, first: Sequence[Burst]) -> None:
        self.indeterminate = sum(len(b.indeterminate) for b in first)

    def outcome(self) -> FaultOutcome:
        if self.killed is None:
            why = self.note or "the first burst released too few requests"
            return FaultOutcome(
                self.kind, None, "not-fired", f"no worker was killed: {why}", as_expected=False
            )
        summary = (
            f"worker {self.killed} was killed (SIGKILL) {self.at_s:.2f}s into the run with "
            f"{self.inside} request(s) inside the app; {self.indeterminate} got no answer and "
            "count as indeterminate"
        )
        return FaultOutcome(
            self.kind,
            self.at_s,
            "killed",
            summary,
            {
                "worker": self.killed,
                "inside": self.inside,
                "indeterminate": self.indeterminate,
            },
        )
