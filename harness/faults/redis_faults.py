"""Faults on the Redis the harness started: a restart, an outage, added latency.

``redis-restart`` and ``redis-outage`` act once the first burst is over (its client has used its
limit); the bursts after them are judged as usual, which shows whether the throttle works again.
``redis-outage`` and ``redis-latency`` work through a TCP proxy between the app and Redis
(:mod:`harness.redis.proxy`), which the run puts in the app's ``REDIS_URL``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import redis

from harness.errors import RedisUnavailable
from harness.faults import FaultContext, FaultOutcome
from harness.http import clock
from harness.http.request_template import Statuses
from harness.redis.proxy import RedisProxy
from harness.traffic import Record, fresh_requests
from harness.verdict import Burst

OUTAGE_S = 1.0  # how long Redis stays unreachable
WAVE_TIMEOUT_S = 5.0  # a request during the outage not answered by then is a timeout
RECOVERY_TIMEOUT_S = 10.0  # after Redis is back, the app must answer normally within this
RECOVERY_PAUSE_S = 0.05
PINGS = 20


def _counts(records: Sequence[Record], statuses: Statuses) -> dict[str, int]:
    admitted = sum(statuses.admitted(r.status) for r in records)
    refused = sum(statuses.refused(r.status) for r in records)
    timeouts = sum(r.status is None for r in records)
    return {
        "sent": len(records),
        "admitted": admitted,
        "refused": refused,
        "errors": len(records) - admitted - refused - timeouts,
        "timeouts": timeouts,
    }


def _latency_ms(records: Sequence[Record]) -> dict[str, float | None]:
    took = sorted((r.received_at - r.sent_at) * 1000 for r in records if r.received_at)
    if not took:
        return {"p50": None, "max": None}
    return {"p50": round(statistics.median(took), 2), "max": round(took[-1], 2)}


class RedisRestart:
    """Restart Redis after the first burst, then let that burst's client, which has used its
    limit, try again as many times: what it is admitted is what the restart gave away."""

    kind = "redis-restart"
    acts_after_first_burst = True

    def __init__(self) -> None:
        self.result: FaultOutcome | None = None

    def mid_first_burst(self, ctx: FaultContext, released: int) -> None: ...

    def lost_workers(self) -> frozenset[str]:
        return frozenset()

    def after_first_burst(self, ctx: FaultContext, first: Sequence[Burst]) -> None:
        burst = first[0]
        restart = ctx.redis.restart if ctx.redis else None
        assert restart is not None  # refused before the run started otherwise
        began = time.monotonic()
        restart()
        down_s = time.monotonic() - began
        count = ctx.claim.limit + ctx.target.capacity
        records = fresh_requests(
            ctx.target,
            [f"{burst.tag}-restart-{i}" for i in range(count)],
            identity=burst.identity,
            value=burst.value,
            deadline=ctx.deadline,
        )
        ctx.ledger.add(records)
        counts = _counts(records, ctx.claim.statuses)
        before = sum(ctx.claim.statuses.admitted(r.status) for r in burst.records)
        since_burst = clock.now() - max((r.received_at or 0.0 for r in burst.records), default=0.0)
        window_passed = since_burst >= ctx.claim.period_s
        exhausted = any(ctx.claim.statuses.refused(r.status) for r in burst.records)
        if counts["admitted"] and not exhausted:
            outcome = "not-exhausted"
            summary = (
                f"Redis restarted {ctx.at_s(began):.2f}s into the run, but the first burst's "
                f"client was never refused before it (admitted {before}): nothing to tell"
            )
        elif counts["admitted"] and not window_passed:
            outcome = "reset"
            summary = (
                f"Redis restarted {ctx.at_s(began):.2f}s into the run ({down_s:.2f}s): the "
                f"throttle's counters were lost; client {burst.identity}, admitted {before} "
                f"before, was admitted {counts['admitted']} of {count} more within the same "
                f"window (limit {ctx.claim.limit}): a restart gives every client a new budget"
            )
        elif counts["admitted"]:
            outcome = "window-passed"
            summary = (
                f"Redis restarted {ctx.at_s(began):.2f}s into the run, but the window had "
                f"passed by then ({since_burst:.2f}s > {ctx.claim.period_s:g}s): nothing to tell"
            )
        elif counts["refused"] and not counts["errors"] and not counts["timeouts"]:
            outcome = "kept"
            summary = (
                f"Redis restarted {ctx.at_s(began):.2f}s into the run: client {burst.identity} "
                f"was still refused ({counts['refused']} of {count}): the state survived"
            )
        else:
            outcome = "errors"
            summary = (
                f"Redis restarted {ctx.at_s(began):.2f}s into the run: the app answered "
                f"{counts['errors']} errors and {counts['timeouts']} timeouts of {count} "
                "requests right after it"
            )
        self.result = FaultOutcome(
            self.kind,
            ctx.at_s(began),
            outcome,
            summary,
            {
                "down_s": round(down_s, 3),
                "client": burst.identity,
                "admitted_before": before,
                "limit": ctx.claim.limit,
                "after": counts,
                "latency_ms_after": _latency_ms(records),
            },
        )

    def outcome(self) -> FaultOutcome:
        return self.result or FaultOutcome(
            self.kind,
            None,
            "not-fired",
            "Redis was not restarted: the run ended first",
            as_expected=False,
        )


class RedisOutage:
    """Make Redis unreachable for ``OUTAGE_S`` after the first burst while a fresh client keeps
    sending waves of requests (as many as the fleet has threads), then bring it back and send
    until the app answers normally again."""

    kind = "redis-outage"
    acts_after_first_burst = True

    def __init__(self, expect: str | None = None) -> None:
        self.expect = expect
        self.result: FaultOutcome | None = None

    def mid_first_burst(self, ctx: FaultContext, released: int) -> None: ...

    def lost_workers(self) -> frozenset[str]:
        return frozenset()

    def after_first_burst(self, ctx: FaultContext, first: Sequence[Burst]) -> None:
        client = ctx.fresh_client()
        if client is None or ctx.proxy is None:
            return
        if not ctx.proxy.app_connections():
            self.result = not_applied(self.kind)
            return
        wave = max(2, ctx.target.capacity)
        statuses = ctx.claim.statuses
        n = 0

        def send() -> list[Record]:
            nonlocal n
            ids = [f"outage-{n + i}" for i in range(wave)]
            n += wave
            until = min(ctx.deadline, time.monotonic() + WAVE_TIMEOUT_S)
            records = fresh_requests(
                ctx.target, ids, identity=client.address, value=client.value, deadline=until
            )
            ctx.ledger.add(records)
            return records

        began = time.monotonic()
        ctx.proxy.outage()
        during: list[Record] = []
        try:
            while time.monotonic() - began < OUTAGE_S and time.monotonic() < ctx.deadline:
                during += send()
        finally:
            ctx.proxy.restore()
        down_s = time.monotonic() - began
        restored = time.monotonic()
        recovered_s: float | None = None
        after: list[Record] = []
        while time.monotonic() - restored < RECOVERY_TIMEOUT_S and time.monotonic() < ctx.deadline:
            records = send()
            after += records
            if all(statuses.admitted(r.status) or statuses.refused(r.status) for r in records):
                recovered_s = time.monotonic() - restored
                break
            time.sleep(RECOVERY_PAUSE_S)
        counts = _counts(during, statuses)
        outcome, what = _outage_outcome(counts)
        back = _back(recovered_s, time.monotonic() - restored)
        summary = (
            f"Redis unreachable for {down_s:.2f}s, {ctx.at_s(began):.2f}s into the run: "
            f"the app {what} ({outcome}); it {back}"
        )
        expected = recovered_s is not None and (
            self.expect is None or outcome == f"fail-{self.expect}"
        )
        if self.expect is not None and outcome != f"fail-{self.expect}":
            summary += f"; expected fail-{self.expect}"
        self.result = FaultOutcome(
            self.kind,
            ctx.at_s(began),
            outcome,
            summary,
            {
                "duration_s": round(down_s, 3),
                "client": client.address,
                "during": counts,
                "latency_ms_during": _latency_ms(during),
                "after": _counts(after, statuses),
                "recovered": recovered_s is not None,
                "recovered_after_s": round(recovered_s, 3) if recovered_s is not None else None,
                "expected": f"fail-{self.expect}" if self.expect else None,
            },
            as_expected=expected,
        )

    def outcome(self) -> FaultOutcome:
        return self.result or FaultOutcome(
            self.kind,
            None,
            "not-fired",
            "Redis was not taken down: the run ended first",
            as_expected=False,
        )


class RedisLatency:
    """Latency between the app and Redis for the whole run (the proxy adds it); the outcome
    holds the round trip measured through the proxy and directly."""

    kind = "redis-latency"
    acts_after_first_burst = False

    def __init__(self, latency_ms: float) -> None:
        self.latency_ms = latency_ms
        self.rtt: tuple[float, float] | None = None
        self.app_connected = True

    def measure(self, direct_url: str, proxy: RedisProxy) -> None:
        """Round trips through ``proxy`` and directly, before the app starts."""
        self.rtt = (
            _median_ping_ms(proxy.url(direct_url), self.latency_ms),
            _median_ping_ms(direct_url, 0.0),
        )

    def mid_first_burst(self, ctx: FaultContext, released: int) -> None: ...

    def lost_workers(self) -> frozenset[str]:
        return frozenset()

    def after_first_burst(self, ctx: FaultContext, first: Sequence[Burst]) -> None:
        self.app_connected = ctx.proxy is not None and ctx.proxy.app_connections() > 0

    def outcome(self) -> FaultOutcome:
        if not self.app_connected:
            return not_applied(self.kind)
        proxied, direct = self.rtt or (float("nan"), float("nan"))
        return FaultOutcome(
            self.kind,
            0.0,
            "added",
            (
                f"{self.latency_ms:g} ms added between the app and Redis: a round trip took "
                f"{proxied:.2f} ms (direct {direct:.2f} ms)"
            ),
            {
                "latency_ms": self.latency_ms,
                "rtt_ms": round(proxied, 3),
                "direct_rtt_ms": round(direct, 3),
            },
        )


def _outage_outcome(counts: dict[str, int]) -> tuple[str, str]:
    """What the app did while Redis was unreachable: (outcome, what it answered)."""
    if counts["admitted"]:
        return "fail-open", f"admitted {counts['admitted']} of {counts['sent']}"
    if counts["refused"] and not counts["errors"] and not counts["timeouts"]:
        return "fail-closed", f"refused all {counts['sent']}"
    return "errors", (
        f"answered {counts['errors']} errors and {counts['timeouts']} timeouts of {counts['sent']}"
    )


def _back(recovered_s: float | None, waited: float) -> str:
    """How the app came back once Redis did."""
    if recovered_s is not None:
        return f"answered normally again {recovered_s:.2f}s after Redis was back"
    if waited < RECOVERY_TIMEOUT_S:
        return (
            f"was not answering normally yet when the run's deadline came, {waited:.2f}s "
            "after Redis was back (raise --timeout)"
        )
    return f"still not answering normally {RECOVERY_TIMEOUT_S:g}s after Redis was back"


def not_applied(kind: str) -> FaultOutcome:
    """The outcome of a fault on Redis that the app never saw: it did not connect through
    the proxy in its ``REDIS_URL``, so it takes its Redis from elsewhere (or uses none)."""
    return FaultOutcome(
        kind,
        None,
        "not-applied",
        (
            "the app never connected to Redis through REDIS_URL during the first burst (it takes "
            "its Redis from elsewhere, or uses none), so the fault could not reach it: read the "
            "Redis URL from REDIS_URL to test this fault"
        ),
        as_expected=False,
    )


def _median_ping_ms(url: str, latency_ms: float) -> float:
    """The median of a few PING round trips to ``url`` (fewer where each is slow)."""
    pings = PINGS if latency_ms < 100 else 3
    try:
        with redis.Redis.from_url(url, socket_timeout=5 + latency_ms / 1000) as client:
            client.ping()  # connect first
            took = []
            for _ in range(pings):
                t0 = time.perf_counter()
                client.ping()
                took.append((time.perf_counter() - t0) * 1000)
    except redis.exceptions.RedisError as exc:
        raise RedisUnavailable(
            f"redis-latency: Redis did not answer a PING through the fault proxy: "
            f"{type(exc).__name__}"
        ) from None
    return statistics.median(took)
