"""Verdicts on synthetic bursts: the checker must catch broken throttles, pass exact ones, and
say inconclusive when the evidence (workers, overlap, window edges) does not support either."""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness.fleet.stamps import Stamp
from harness.http.records import Record
from harness.verdict import (
    EDGE_ALPHA,
    Burst,
    Claim,
    edge_chance,
    find,
    judge,
    more_bursts_could_settle,
    tally,
)

T0 = 1_800_000_000.5  # a wall-clock time well inside an hour (not near an hour edge)
HOURLY = dict(limit=100, period_s=3600)


def burst(
    served: dict[str, tuple[int, int]],
    *,
    errors: int = 0,
    span_s: float = 0.3,
    t0: float = T0,
    together: int = 4,
    identity: str = "127.0.0.2",
    limit: int = 100,
    at_start: int | None = None,
) -> Burst:
    """``served`` maps a worker to (accepted, rejected); ``errors`` adds 503s and a timeout.

    Stamps put every request inside the app one after another, except that ``together``
    requests (spread over the workers) overlap the one that took the limit's last place, and
    ``at_start`` (default ``together``) the first admitted one."""
    records: list[Record] = []
    for worker, (ok, no) in served.items():
        for status in [200] * ok + [429] * no:
            i = len(records)
            records.append(Record(i, identity, t0, t0 + span_s, status, worker, None, f"b-{i}"))
    for k in range(errors):
        i = len(records)
        if k == 0:
            records.append(
                Record(i, identity, t0, None, None, None, "no response within 60s", f"b-{i}")
            )
        else:
            records.append(Record(i, identity, t0, t0 + span_s, 503, "w1", None, f"b-{i}"))
    stamps = {}
    answered = [r for r in records if r.status is not None]
    for n, r in enumerate(answered):
        start = n * 1000
        stamps[r.request_id] = Stamp(r.request_id, r.worker or "?", start, start + 500, r.status)
    # The crossing: the request that took the last place, with together - 1 others beside it.
    accepted = [r for r in answered if r.status == 200]
    if len(accepted) >= limit and together > 1:
        crossing = stamps[accepted[limit - 1].request_id]
        others = [r for r in answered if r.status != 200]  # refused beside the crossing
        workers = sorted({r.worker for r in answered if r.worker})
        picked: list[Record] = []
        for w in workers:  # one per worker first, so that the overlap spans the workers
            picked += [r for r in others if r.worker == w][:1]
        picked += [r for r in others if r not in picked]
        for r in picked[: together - 1]:
            stamps[r.request_id] = Stamp(
                r.request_id, r.worker or "?", crossing.entered_ns, crossing.left_ns, r.status
            )
    _beside_the_first(
        stamps, accepted[: max(0, limit - 1)], together if at_start is None else at_start
    )
    return Burst(identity, records, stamps)


def _beside_the_first(stamps: dict[str, Stamp], before: list[Record], together: int) -> None:
    """The window's start: ``together - 1`` of the admitted requests ``before`` the crossing
    (one per worker first) moved beside the first admitted one."""
    if len(before) < 2 or together < 2:
        return
    first = stamps[before[0].request_id]
    candidates = [r for r in before[1:] if r.request_id in stamps]
    picked: list[Record] = []
    for w in sorted({r.worker or "?" for r in candidates}):
        picked += [r for r in candidates if r.worker == w and r.worker != first.worker][:1]
    picked += [r for r in candidates if r not in picked]
    for r in picked[: together - 1]:
        stamps[r.request_id] = Stamp(
            r.request_id, r.worker or "?", first.entered_ns, first.left_ns, r.status
        )


def claim(workers: int = 2, threads: int = 2, **kw: object) -> Claim:
    return Claim(workers=workers, threads=threads, **{**HOURLY, **kw})  # type: ignore[arg-type]


def test_exact_across_all_workers_with_overlap_passes() -> None:
    v = judge([burst({"w1": (60, 140), "w2": (40, 160)})], claim())
    assert v.kind == "pass", v.reason
    assert (v.tally.accepted, v.tally.rejected, v.tally.errors) == (100, 300, 0)
    assert "4 requests on 2 worker(s)" in v.reason


def test_exact_without_overlap_at_the_limit_is_inconclusive() -> None:
    v = judge([burst({"w1": (60, 140), "w2": (40, 160)}, together=1)], claim())
    assert v.kind == "inconclusive"
    assert "never overlapped" in v.reason


def test_one_thread_one_worker_needs_no_overlap() -> None:
    v = judge([burst({"w1": (100, 300)}, together=1)], claim(workers=1, threads=1))
    assert v.kind == "pass", v.reason


def test_over_admission_fails_with_the_bound_in_the_reason() -> None:
    v = judge([burst({"w1": (130, 70), "w2": (114, 86)})], claim(window="sliding"))
    assert v.kind == "fail"
    assert v.factor == pytest.approx(2.44)
    assert "244" in v.reason and "at most 100" in v.reason
    assert "not atomic" in v.hint


def test_a_narrow_race_in_one_of_three_bursts_fails() -> None:
    clean = [burst({"w1": (50, 150), "w2": (50, 150)}, identity=f"127.0.0.{i}") for i in (2, 3)]
    racy = burst({"w1": (52, 148), "w2": (50, 148)}, identity="127.0.0.4")
    v = judge([*clean, racy], claim(window="sliding"))
    assert v.kind == "fail"
    assert "burst 3 admitted 102" in v.reason


def test_per_worker_state_gets_its_own_hint() -> None:
    # LocMem: each worker admits exactly min(served, limit) on its own.
    v = judge([burst({"w1": (100, 150), "w2": (100, 50)})], claim(threads=1))
    assert v.kind == "fail"
    assert "per process" in v.hint


def test_a_worker_over_the_limit_rules_out_per_process_state() -> None:
    v = judge([burst({"w1": (180, 20), "w2": (100, 100)})], claim())
    assert v.kind == "fail"
    assert "per process" not in v.hint and "alone admitted 180" in v.hint


def test_nothing_rejected_is_not_called_a_race_without_evidence() -> None:
    b = burst({"w1": (200, 0), "w2": (200, 0)})
    confirmed_open = Burst(
        b.identity,
        b.records,
        b.stamps,
        confirmation=[Record(i, b.identity, T0, T0 + 1, 200, "w1") for i in range(4)],
    )
    v = judge([confirmed_open], claim())
    assert v.kind == "fail" and "no throttle is active" in v.hint
    confirmed_shut = Burst(
        b.identity,
        b.records,
        b.stamps,
        confirmation=[Record(i, b.identity, T0, T0 + 1, 429, "w1") for i in range(4)],
    )
    v = judge([confirmed_shut], claim())
    assert v.kind == "fail" and "raced past a throttle that is active" in v.hint
    assert "per process" not in v.hint


def test_violation_is_proof_even_from_one_worker() -> None:
    v = judge([burst({"w1": (150, 250)})], claim(workers=4))
    assert v.kind == "fail"


def test_under_admission_fails() -> None:
    v = judge([burst({"w1": (40, 160), "w2": (50, 150)})], claim())
    assert v.kind == "fail"
    assert "under-admission" in v.reason


def test_a_fresh_client_refused_after_another_used_the_limit_means_a_shared_budget() -> None:
    first = burst({"w1": (50, 150), "w2": (50, 150)})
    second = burst({"w1": (0, 58), "w2": (0, 58)}, identity="127.0.0.3", together=1)
    v = judge([first, second], claim())
    assert v.kind == "fail" and "burst 2 admitted 0" in v.reason
    assert "share one budget" in v.hint
    v = judge([second], claim())
    assert v.kind == "fail" and "share one budget" not in v.hint and "stale" in v.hint


def test_exact_but_one_worker_served_is_inconclusive_not_pass() -> None:
    v = judge([burst({"w1": (100, 300)})], claim())
    assert v.kind == "inconclusive"
    assert "1 of 2 workers" in v.reason


def test_min_workers_seen_can_be_lowered() -> None:
    b = [burst({"w1": (50, 150), "w2": (50, 150)})]
    assert judge(b, claim(workers=4)).kind == "inconclusive"
    assert judge(b, claim(workers=4, min_workers_seen=2)).kind == "pass"


def test_burst_that_never_reaches_the_limit_proves_nothing() -> None:
    v = judge([burst({"w1": (30, 0), "w2": (30, 0)})], claim())
    assert v.kind == "inconclusive"
    assert v.expected_accepted == 60


def test_errors_give_error_verdict_and_accounting_closes() -> None:
    b = burst({"w1": (50, 100), "w2": (50, 100)}, errors=3)
    v = judge([b], claim())
    assert v.kind == "error"
    t = v.tally
    assert t.sent == len(b.records) == t.accepted + t.rejected + t.errors
    assert t.errors == 3
    assert "no response" in v.reason and "HTTP 503" in v.reason


def test_a_wrong_path_gets_a_hint() -> None:
    records = [Record(i, "127.0.0.1", T0, T0 + 0.1, 404, "w1") for i in range(200)]
    v = judge([Burst("127.0.0.1", records)], claim(workers=1))
    assert v.kind == "error" and "--path" in v.hint


def test_over_admission_is_a_failure_even_with_errors() -> None:
    v = judge([burst({"w1": (120, 60), "w2": (90, 30)}, errors=2)], claim())
    assert v.kind == "fail"


def test_a_request_that_never_connected_does_not_stretch_the_burst() -> None:
    # A connect error leaves sent_at unset (0.0): it must not make the burst look decades long
    # and so turn a proven over-admission into something a window edge could explain.
    b = burst({"w1": (130, 70), "w2": (114, 86)})
    records = [*b.records, Record(400, b.identity, 0.0, None, None, None, "connect: refused")]
    v = judge([Burst(b.identity, records, b.stamps)], claim(window="sliding"))
    assert v.kind == "fail"
    assert v.tally.span_s == pytest.approx(0.3)


def test_the_default_window_never_fails_a_fixed_window_across_one_edge() -> None:
    # 20/second, a correct fixed window of unknown phase: 2 x 20 across one edge (no clock
    # edge inside this burst, so only an edge of unknown phase explains it).
    b = burst({"w1": (20, 20), "w2": (20, 20)}, t0=T0 - 0.3, span_s=0.5, together=1)
    v = judge([b], claim(limit=20, period_s=1))
    assert (v.kind, v.basis) == ("inconclusive", "edges-unclean"), v.reason
    assert more_bursts_could_settle(v, claim(limit=20, period_s=1), True)
    # The same burst against a sliding window is proof of over-admission.
    assert judge([b], claim(limit=20, period_s=1, window="sliding")).kind == "fail"


def test_an_edge_explained_once_and_clean_repeats_pass() -> None:
    c = claim(limit=20, period_s=1)
    edge = burst({"w1": (18, 2), "w2": (14, 6)}, t0=T0 - 0.3, span_s=0.5, together=1)
    clean = [
        burst({"w1": (10, 10), "w2": (10, 10)}, span_s=0.1, identity=f"127.0.0.{i}", limit=20)
        for i in (3, 4)
    ]
    findings = [find(b, c) for b in [edge, *clean]]
    assert [f.fit.kind for f in findings] == ["edge", "within", "within"]
    v = judge([edge, *clean], c)
    assert v.kind == "pass", v.reason
    assert "explained by a window edge" in v.reason
    # One phase for all: an edge inside at least one of the spans, which the first's 0.5 s
    # covers (no whole second is inside it, so no phase per client on whole seconds).
    assert v.edge_chance == pytest.approx(0.5)
    assert more_bursts_could_settle(v, c, True)  # a race would over-admit again: look again


def test_edges_too_many_to_be_chance_fail() -> None:
    c = claim()  # 100/hour: an edge inside a 0.3 s burst has a chance of 1/12000
    racy = [
        burst({"w1": (51, 149), "w2": (51, 149)}, identity=f"127.0.0.{i}", t0=T0 + 10 * i)
        for i in (2, 3)
    ]
    findings = [find(b, c) for b in racy]
    assert all(f.fit.kind == "edge" for f in findings)
    assert edge_chance(findings, 3600) < 1e-6  # independent phases, and no phase in both
    v = judge(racy, c)
    assert v.kind == "fail" and "chance" in v.reason


def test_one_edge_among_many_clients_is_not_proof() -> None:
    # A correct fixed window of one phase for all, 1,000 clients stepped over 2 s at 5/minute:
    # an edge inside the run meets some client. One of them over alone must not fail the run.
    c = claim(limit=5, period_s=60)
    clients = [
        burst(
            {"w1": (3, 7), "w2": (2, 8)},
            span_s=0.03,
            t0=T0 + 0.002 * i,
            together=1,
            limit=5,
            identity=f"127.0.{i // 250}.{i % 250 + 1}",
        )
        for i in range(1000)
    ]
    clients[0] = burst({"w1": (4, 6), "w2": (3, 7)}, span_s=0.03, together=1, limit=5)
    findings = [find(b, c) for b in clients]
    assert [f.fit.kind for f in findings].count("edge") == 1
    assert edge_chance(findings, 60) == pytest.approx(2.028 / 60)  # the run's 2.028 s
    assert judge(clients, c).kind != "fail"
    # The same client over among 1,000 answered at one instant: an edge there would have met
    # them all, and a phase per client sits on whole seconds (none is inside): no edge explains it.
    at_once = [replace(b, records=[replace(r, sent_at=T0) for r in b.records]) for b in clients]
    for b in at_once[1:]:
        b.records[:] = [replace(r, sent_at=T0, received_at=T0 + 0.03) for r in b.records]
    assert edge_chance([find(b, c) for b in at_once], 60) == pytest.approx(0.03 / 60)
    assert judge(at_once, c).kind == "fail"


def test_staggered_clients_share_one_edge() -> None:
    # 40 clients stepped 50 ms apart, each over 0.3 s: an edge at one phase falls inside about
    # six of them at once. Six over is what one edge does, not six coincidences.
    c = claim(limit=5, period_s=60)
    clients = [
        burst(
            {"w1": (3, 7), "w2": (2, 8)},
            span_s=0.3,
            t0=T0 + 0.05 * i,
            together=1,
            limit=5,
            identity=f"127.0.1.{i + 1}",
        )
        for i in range(40)
    ]
    for i in range(20, 26):  # the six whose spans meet T0 + 1.27
        clients[i] = replace(
            burst(
                {"w1": (4, 6), "w2": (3, 7)},
                span_s=0.3,
                t0=T0 + 0.05 * i,
                together=1,
                limit=5,
            ),
            identity=clients[i].identity,
        )
    findings = [find(b, c) for b in clients]
    assert [f.fit.kind for f in findings].count("edge") == 6
    # Phases inside at least six of the spans: every point from the sixth start on, until
    # the sixth-last end (the spans overlap six at a time, 50 ms apart, 0.3 s long).
    assert edge_chance(findings, 60) == pytest.approx(
        (T0 + 0.05 * 39 + 0.3 - 0.25 - T0 - 0.25) / 60
    )
    assert edge_chance(findings, 60) > EDGE_ALPHA
    assert judge(clients, c).kind != "fail"


def test_bursts_at_the_same_clock_phase_do_not_multiply_their_chances() -> None:
    # One window phase for every client (a global reset) would put an edge inside every burst
    # that starts at the same phase of the clock: no more likely for six bursts than for one.
    c = claim(limit=20, period_s=1)
    same = [
        burst(
            {"w1": (18, 2), "w2": (14, 6)},
            t0=T0 - 0.3 + 7 * i,
            span_s=0.2,
            together=1,
            identity=f"127.0.0.{i + 2}",
            limit=20,
        )
        for i in range(6)
    ]
    spread = [
        burst(
            {"w1": (18, 2), "w2": (14, 6)},
            t0=T0 - 0.3 + 7 * i + 0.25 * (i % 3),
            span_s=0.2,
            together=1,
            identity=f"127.0.0.{i + 2}",
            limit=20,
        )
        for i in range(6)
    ]
    same_f, spread_f = [find(b, c) for b in same], [find(b, c) for b in spread]
    assert all(f.fit.kind == "edge" for f in same_f + spread_f)
    assert edge_chance(same_f, 1) == pytest.approx(0.2, abs=1e-3)
    assert edge_chance(spread_f, 1) == 0.0  # no phase in all six, no whole second in any
    assert judge(same, c).kind == "inconclusive" and judge(spread, c).kind == "fail"


def test_tally_counts_workers_that_served_rejections_too() -> None:
    t = tally(burst({"w1": (100, 0), "w2": (0, 300)}).records)
    assert t.workers_seen == 2
    assert t.served_by == {"w1": 100, "w2": 300}


def test_recovery_counts_only_requests_a_period_after_the_last_counted_one() -> None:
    # A fault's probe on the client was admitted after the burst (a restart forgot the count):
    # refusals less than a period after that probe are no sign of a throttle that never forgets.
    c = claim(limit=5, period_s=1)
    b = burst({"w1": (3, 5), "w2": (2, 5)}, span_s=0.1, limit=5)
    probe = Record(0, b.identity, T0 + 0.5, T0 + 0.55, 200, "w1", None, "b-restart-0")
    early = [
        Record(i, b.identity, T0 + 1.2, T0 + 1.21, 429, "w1", None, f"r-{i}") for i in range(4)
    ]
    v = judge([replace(b, probes=[probe], recovery=early)], c)
    assert v.basis != "no-recovery" and v.bursts[0].recovered is None, v.reason
    late = [replace(r, sent_at=T0 + 1.6, received_at=T0 + 1.61) for r in early]
    v = judge([replace(b, probes=[probe], recovery=late)], replace(c, window="fixed"))
    assert v.basis == "no-recovery" and v.bursts[0].recovered == (0, 4), v.reason
    assert v.reason.startswith("no recovery: 1s after its burst")
    # Under `any` (and `sliding-counter`) a sliding-window counter may still refuse them: its
    # previous window weighs in for a second period. Two periods later, it may not.
    for window in ("any", "sliding-counter"):
        v = judge([replace(b, probes=[probe], recovery=late)], replace(c, window=window))
        assert v.basis != "no-recovery" and v.bursts[0].recovered is None, v.reason
        later = [replace(r, sent_at=T0 + 2.6, received_at=T0 + 2.61) for r in early]
        v = judge([replace(b, probes=[probe], recovery=later)], replace(c, window=window))
        assert v.basis == "no-recovery" and v.bursts[0].recovered == (0, 4), v.reason
        assert v.reason.startswith("no recovery: 2s after its burst")


def test_refusals_place_no_edge_when_a_request_may_have_counted_unseen() -> None:
    # Five admitted, three refused, two admitted, three refused (at 5/second): no edge of a
    # correct fixed window splits this, unless a request that died with its worker counted.
    # (Under `any`, a sliding-window counter ignores refusals: 5 + ceil(5 * 0.2) in 0.2 s.)
    c = claim(limit=5, period_s=1, window="fixed")

    def rec(i: int, at: float, status: int | None) -> Record:
        return Record(
            i, "127.0.0.9", T0 + at, T0 + at if status else None, status, "w1", None, f"b-{i}"
        )

    statuses = [200] * 5 + [429] * 3 + [200] * 2 + [429] * 3
    times = [0.1] * 5 + [0.2] * 3 + [0.3] * 2 + [0.4] * 3
    records = [rec(i, at, s) for i, (at, s) in enumerate(zip(times, statuses, strict=True))]
    assert find(Burst("127.0.0.9", records), c).fit.kind == "over"
    lost = rec(len(records), 0.15, None)
    b = Burst("127.0.0.9", [*records, lost], indeterminate=frozenset({lost.request_id}))
    assert find(b, c).fit.kind == "edge"


def _steady(statuses: str, interval: float = 0.1, limit: int = 5) -> Burst:
    """One client's sustained history: a request every ``interval`` s, ``statuses`` as
    ``a`` (admitted) and ``r`` (refused), each answered 5 ms after it was sent."""
    records = [
        Record(
            i,
            "127.0.0.9",
            T0 + i * interval,
            T0 + i * interval + 0.005,
            200 if c == "a" else 429,
            f"w{i % 2}",
            None,
            f"s-{i}",
        )
        for i, c in enumerate(statuses)
    ]
    return Burst("127.0.0.9", records)


def test_sustained_traffic_a_correct_window_lets_the_client_back_in() -> None:
    c = claim(limit=5, period_s=1, sustained=True)
    # A fixed window from the first hit at 2x the rate: five admitted, five refused, per second.
    v = judge([_steady("aaaaarrrrr" * 3)], c)
    assert (v.kind, v.basis) == ("pass", "held"), v.reason
    assert v.bursts[0].per_period == (5, 5, 5)
    assert "admitted per 1s: 5,5,5" in v.reason


def test_sustained_traffic_a_log_of_refused_hits_shuts_the_client_out() -> None:
    c = claim(limit=5, period_s=1, sustained=True)
    v = judge([_steady("aaaaa" + "r" * 25)], c)
    assert (v.kind, v.basis) == ("fail", "shut-out"), v.reason
    # The five were admitted in the first 0.4 s: refusals until two seconds after the first of
    # them are justified; from 2.1 s on (nine of them), the limit was no longer admitted.
    assert v.bursts[0].unjustified == 9
    assert "not let back in" in v.reason
    # Bursts alone never see it: without the sustained claim the same history is over nothing.
    assert judge([_steady("aaaaa" + "r" * 25)], claim(limit=5, period_s=1)).basis != "shut-out"


def test_sustained_traffic_below_the_rate_is_never_refused() -> None:
    c = claim(limit=5, period_s=1, sustained=True)
    assert judge([_steady("a" * 8, interval=0.4)], c).kind == "pass"
    v = judge([_steady("aaar" + "a" * 4, interval=0.4)], c)
    assert (v.kind, v.basis) == ("fail", "shut-out"), v.reason


def test_a_crossing_with_overlap_but_a_lone_window_start_is_inconclusive() -> None:
    """A pass needs both critical points raced: a set-initialised counter over-admits only
    where the client's window starts, so a burst whose first request ran alone proves nothing
    about it, however crowded its crossing."""
    v = judge([burst({"w1": (60, 140), "w2": (40, 160)}, at_start=1)], claim())
    assert (v.kind, v.basis) == ("inconclusive", "no-overlap"), v.reason
    assert "when a window started" in v.reason and "1 at the window's start" in v.reason
    both = judge([burst({"w1": (60, 140), "w2": (40, 160)}, at_start=3)], claim())
    assert both.kind == "pass", both.reason
    assert "at the window's start 3 on 2" in both.reason
    assert (both.overlap.at_start, both.overlap.start_workers) == (3, 2)


def test_a_start_on_one_worker_is_not_enough_where_the_fleet_has_two() -> None:
    b = burst({"w1": (60, 140), "w2": (40, 160)}, at_start=2)
    first = min(b.stamps.values(), key=lambda s: s.left_ns or 0)
    stamps = {  # the one beside the first request moved to the first's worker
        k: replace(s, worker=first.worker) if s.entered_ns == first.entered_ns else s
        for k, s in b.stamps.items()
    }
    v = judge([replace(b, stamps=stamps)], claim())
    assert v.kind == "inconclusive" and v.overlap.start_workers == 1, v.reason


def test_the_two_critical_points_may_be_raced_in_different_bursts() -> None:
    # One burst raced its crossing with a lone start, another its start with a lone crossing:
    # the run showed both points raced, and it passes.
    crossing = burst({"w1": (60, 140), "w2": (40, 160)}, at_start=1)
    start = burst({"w1": (60, 140), "w2": (40, 160)}, together=1, at_start=3)
    v = judge([crossing, start], claim())
    assert v.kind == "pass", v.reason
    assert "at the limit in 1 of 2 bursts, at the start in 1" in v.reason
