"""Releasing a burst step by step: every armed request waits for its final byte, and each step
sends the final bytes of the requests it releases once the previous step is answered.

The first step releases no more than one request per thread, so that the client's window starts
with every thread inside the app together (all of them where the fleet holds more than the
limit: the limit is then crossed amid them). While the admitted count is below ``limit - 1``, a
step releases as many requests as still fit under the limit (the threads work through them and
then wait on their lane's next ones); from then on a step releases every thread's request at
once, so that the crossing of the limit happens with the whole fleet inside the app. Once a
whole step past the limit is refused, the rest goes at once.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable

from harness.fleet.exchange import Collector, Exchange
from harness.http import clock
from harness.http.request_template import Statuses
from harness.traffic.lanes import Lane

ARM_PAUSE_S = 0.02  # after arming, per request: 0.1 ms more, for the server to read the heads

ALIGN_MARGIN_S = 0.005  # an aligned burst starts this long after the window edge

FIRST_STEP_TIMEOUT_S = 0.5  # per round (each thread serving one request) of the first step

STEP_TIMEOUT_FACTOR = 8  # a later step times out after 8x the median round, per round

MAX_STEP_TIMEOUTS = 3


def fire(
    lanes: list[Lane],
    statuses: Statuses,
    rooms: dict[int, int],
    deadline: float,
    align: tuple[float, float] | None,
    on_release: Callable[[int], None] | None = None,
) -> None:
    """Arm every lane, then release in steps aimed at the limit; ``rooms`` holds how many
    requests the limit still admits for each budget (a client's, or one shared)."""
    exchanges = [ex for lane in lanes for ex in lane.queue]
    for ex in exchanges:  # arm: all but the head's final byte (and the body), in lane order
        request_bytes = ex.request(ex.rendered, False, ex.request_id)
        cut = ex.head_length - 1  # an app may run before its body is in: hold the body too
        ex.tail = request_bytes[cut:]
        ex.send(request_bytes[:cut], deadline)
    time.sleep(ARM_PAUSE_S + 0.0001 * len(exchanges))
    wait_for_phase(align, deadline)
    collector = Collector(answered="hold")
    for ex in exchanges:
        collector.add(ex)
    try:
        release_in_steps(lanes, collector, statuses, rooms, deadline, on_release)
        collector.run(deadline)
    finally:
        collector.finish("no response before the run's deadline")


def release_in_steps(
    lanes: list[Lane],
    collector: Collector,
    statuses: Statuses,
    rooms: dict[int, int],
    deadline: float,
    on_release: Callable[[int], None] | None = None,
) -> None:
    """Release final bytes step by step; each step once the previous one is answered."""
    took: list[float] = []  # seconds per round of the steps answered in time
    capacity = max(1, sum(lane.slots for lane in lanes))
    released: list[Exchange] = []
    timeouts = 0
    saturated = False  # a whole step past the limit was refused: the rest can go at once
    while any(lane.left for lane in lanes):
        admitted = dict.fromkeys(rooms, 0)  # recounted: late answers count too
        refused: set[int] = set()
        for ex in released:
            admitted[ex.budget] += statuses.admitted(ex.status)
            if statuses.refused(ex.status):
                refused.add(ex.budget)
        # Past its limit: admitted it all, or refused once (below it: a shared budget, say).
        crossed = frozenset(c for c in rooms if admitted[c] >= rooms[c] or c in refused)
        step = []
        if not (saturated or time.monotonic() >= deadline or timeouts >= MAX_STEP_TIMEOUTS):
            below = {c: rooms[c] - 1 - admitted[c] for c in rooms}
            step = next_step(lanes, below, crossed, first=not released)
        if not step:  # the rest at once; an async worker's lane, its concurrency at a time
            step = [ex for lane in lanes for ex in lane.take(lane.room(lanes, first=False))]
        live = [ex for ex in step if ex.error is None and ex.sock is not None]
        now = clock.now()  # before any of them is sent: earlier than every admission
        short: list[tuple[Exchange, int]] = []
        for ex in live:  # the hot loop: nothing in it but the send
            try:
                sent = ex.sock.send(ex.tail)  # type: ignore[union-attr]
                if sent < len(ex.tail):
                    short.append((ex, sent))
            except OSError as exc:
                ex.error = f"send: {exc}"
        for ex, sent in short:  # a large body that did not fit the socket's buffer at once
            ex.send(ex.tail[sent:], deadline)
        for ex in step:
            ex.sent_at = now
        released += step
        if on_release is not None:
            on_release(len(released))
        if not any(lane.left for lane in lanes):
            return
        if not live:
            continue  # nothing went out (connections that never opened): nothing to wait for
        started = time.monotonic()
        rounds = math.ceil(len(step) / capacity)  # how many times each thread serves this step
        unit = STEP_TIMEOUT_FACTOR * statistics.median(took) if took else FIRST_STEP_TIMEOUT_S
        collector.run(min(deadline, started + max(0.02, unit * rounds)), until=live)
        if any(ex in collector.pending for ex in live):
            timeouts += 1
        else:
            took.append((time.monotonic() - started) / rounds)
        for ex in step:
            admitted[ex.budget] += statuses.admitted(ex.status)
            if statuses.refused(ex.status):
                refused.add(ex.budget)
        saturated = all(admitted[c] >= rooms[c] or c in refused for c in rooms) and all(
            statuses.refused(ex.status) for ex in step
        )


def wait_for_phase(align: tuple[float, float] | None, deadline: float) -> None:
    """Sleep until just after the next epoch time (:func:`harness.http.clock.now`, the clock of
    record times) ``offset`` past a multiple of ``period`` (``align`` = (period, offset)); not
    past ``deadline``."""
    if align is None:
        return
    period, offset = align
    now = clock.now()
    start = math.floor((now - offset) / period + 1) * period + offset + ALIGN_MARGIN_S
    time.sleep(max(0.0, min(start - now, deadline - time.monotonic())))


def next_step(
    lanes: list[Lane],
    below_limit: dict[int, int],
    crossed: frozenset[int] = frozenset(),
    first: bool = False,
) -> list[Exchange]:
    """What to release next.

    While some lane's next requests belong to a client with more than one place left under its
    limit (``below_limit``): every such request (spread evenly over the lanes; each lane's
    threads take them in order and then wait on the lane's next ones), and with them the
    leftovers of clients already past their limit (``crossed``), which keep the lanes in step.
    Once none has: every request the lanes' threads hold, which crosses a client's limit with
    every thread beside it.

    The ``first`` step of a burst is no more than one request per thread (a worker handed many
    more at once spends a few milliseconds dealing them out to its threads, spreading their
    entries apart: measured on gthread), so that the first requests of the clients at the
    lanes' heads, which start their windows, enter the app together. Where one per thread is
    more than the limit's places, the whole of it goes: the limit is crossed amid a stream of
    entries. Held back to ``limit - 1``, the last place went to the first request an async
    worker dispatched in the next step, ahead of the others by its whole read and write
    (measured on uvicorn, 2x10 at 5/second: a read-await-increment counter admitted exactly the
    limit in about half the bursts, against none released whole). Where one per thread fits,
    the crossing comes in the next step as usual: released whole, the last place would go to
    the last request of the stream, with no one after it (2x10 at 20/second: 0 of 5 caught).
    """
    left = dict(below_limit)

    def approaches(lane: Lane) -> bool:
        rest = lane.queue[lane.released :]
        head = next((ex for ex in rest if ex.budget not in crossed), None)
        return head is not None and left.get(head.budget, 0) > 0

    room = {id(lane): lane.room(lanes, first) for lane in lanes}
    across = first and sum(room.values()) > sum(max(0, n + 1) for n in left.values())
    if not across and not any(approaches(lane) for lane in lanes):
        return [ex for lane in lanes for ex in lane.take(lane.slots)]
    step: list[Exchange] = []
    progress = True
    while progress:
        progress = False
        for lane in lanes:
            head = lane.queue[lane.released] if lane.left and room[id(lane)] else None
            if head is not None and (
                across or head.budget in crossed or left.get(head.budget, 0) > 0
            ):
                room[id(lane)] -= 1
                step += lane.take(1)
                left[head.budget] = left.get(head.budget, 0) - 1
                progress = True
    return step
