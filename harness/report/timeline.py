"""The picture of a burst: when each request was inside the app, on which worker, and what the
throttle answered. Pure data for the HTML report, built from the probe's stamps (server-side,
CLOCK_MONOTONIC) and the records (what the client got back). It decides nothing: the limit and
the bound it marks are the claim's and the verdict's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from harness.http.request_template import Statuses
from harness.verdict import Burst, BurstFinding

Outcome = Literal["accepted", "past-bound", "rejected", "other"]
MAX_LANES = 16  # rows per worker; more concurrent requests than that share the last row


@dataclass(frozen=True, slots=True)
class Bar:
    """One request inside the app: ``start_ms``/``end_ms`` from the burst's first entry."""

    worker: str
    lane: int  # a row within its worker: requests inside the app together get different rows
    start_ms: float
    end_ms: float
    outcome: Outcome


@dataclass(frozen=True)
class Timeline:
    """One burst drawn: its bars, each worker's row count, the cumulative admissions (the
    exit time of each, in order) and the marks."""

    title: str
    bars: tuple[Bar, ...]
    lanes: dict[str, int]  # worker id -> rows it needs, in the order workers first appear
    admissions_ms: tuple[float, ...]
    span_ms: float
    limit: int
    bound: int  # the most a correct throttle of the claimed window could admit here
    limit_reached_ms: float | None  # when the admission that took the limit's last place left
    unseen: int  # requests with no stamp: they never reached the app (or the probe lost them)


def build(
    burst: Burst, finding: BurstFinding, limit: int, statuses: Statuses, title: str = ""
) -> Timeline:
    """The timeline of one burst judged as ``finding``."""
    status_of = {r.request_id: r.status for r in burst.records}
    stamps = [s for s in burst.stamps.values() if s.request in status_of]
    seen = {s.request for s in stamps}
    unseen = sum(1 for r in burst.records if r.request_id not in seen)
    if not stamps:
        return Timeline(title, (), {}, (), 0.0, limit, finding.fit.bound, None, unseen)
    t0 = min(s.entered_ns for s in stamps)
    last = max(s.left_ns or s.entered_ns for s in stamps)
    admitted = sorted(
        (s for s in stamps if statuses.admitted(status_of[s.request])),
        key=lambda s: s.left_ns if s.left_ns is not None else last,
    )
    order = {s.request: i for i, s in enumerate(admitted, start=1)}  # by exit time
    over = finding.fit.kind != "within"  # only then is an admission past the bound a finding
    bound = finding.fit.bound

    def outcome(request: str) -> Outcome:
        if request in order:
            return "past-bound" if over and order[request] > bound else "accepted"
        return "rejected" if statuses.refused(status_of[request]) else "other"

    lanes: dict[str, list[int]] = {}  # worker -> each row's end (ns) so far
    bars = []
    for s in sorted(stamps, key=lambda s: s.entered_ns):
        end_ns = s.left_ns if s.left_ns is not None else last
        rows = lanes.setdefault(s.worker, [])
        lane = next((i for i, free in enumerate(rows) if free <= s.entered_ns), len(rows))
        if lane == len(rows) and lane < MAX_LANES:
            rows.append(end_ns)
        else:
            lane = min(lane, MAX_LANES - 1)
            rows[lane] = max(rows[lane], end_ns)
        bars.append(
            Bar(s.worker, lane, (s.entered_ns - t0) / 1e6, (end_ns - t0) / 1e6, outcome(s.request))
        )
    exits = tuple(((s.left_ns if s.left_ns is not None else last) - t0) / 1e6 for s in admitted)
    reached = exits[limit - 1] if len(exits) >= limit else None
    return Timeline(
        title,
        tuple(bars),
        {w: len(rows) for w, rows in lanes.items()},
        exits,
        (last - t0) / 1e6,
        limit,
        bound,
        reached,
        unseen,
    )


def decisive(
    bursts: Sequence[Burst], findings: Sequence[BurstFinding], most: int = 3
) -> list[tuple[Burst, BurstFinding]]:
    """The bursts worth drawing, in run order: those furthest over their bound first, then the
    most admitted (a run of a thousand clients gets a few pictures, not a thousand)."""
    pairs = list(zip(bursts, findings, strict=True))
    ranked = sorted(
        range(len(pairs)),
        key=lambda i: (
            -(pairs[i][1].tally.accepted - pairs[i][1].fit.bound),
            -pairs[i][1].tally.accepted,
            i,
        ),
    )
    return [pairs[i] for i in sorted(ranked[:most])]
