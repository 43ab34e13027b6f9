"""Verdicts on synthetic histories: the checker must catch broken throttles and pass exact ones."""

from __future__ import annotations

import pytest

from harness.checker import Claim, judge, tally
from harness.traffic.records import Record

T0 = 1_800_000_000.5  # a wall-clock time well inside an hour (not near an hour edge)


def history(
    served: dict[str, tuple[int, int]], errors: int = 0, span_s: float = 0.3, t0: float = T0
) -> list[Record]:
    """``served`` maps a worker to (accepted, rejected); ``errors`` adds 503s and a timeout."""
    records: list[Record] = []
    for worker, (ok, no) in served.items():
        for status in [200] * ok + [429] * no:
            i = len(records)
            records.append(Record(i, "127.0.0.1", t0, t0 + span_s, status, worker))
    for k in range(errors):
        i = len(records)
        if k == 0:
            records.append(Record(i, "127.0.0.1", t0, None, None, None, "no response within 60s"))
        else:
            records.append(Record(i, "127.0.0.1", t0, t0 + span_s, 503, "w1"))
    return records


HOURLY = dict(limit=100, period_s=3600)


def test_exact_across_all_workers_passes() -> None:
    v = judge(history({"w1": (60, 140), "w2": (40, 160)}), Claim(workers=2, **HOURLY))
    assert v.kind == "pass"
    assert (v.tally.accepted, v.tally.rejected, v.tally.errors) == (100, 300, 0)


def test_over_admission_fails_with_factor_and_race_hint() -> None:
    v = judge(history({"w1": (130, 70), "w2": (114, 86)}), Claim(workers=2, **HOURLY))
    assert v.kind == "fail"
    assert v.factor == pytest.approx(2.44)
    assert "not atomic" in v.hint


def test_per_worker_state_gets_its_own_hint() -> None:
    # LocMem: each worker admits exactly min(served, limit) on its own.
    v = judge(history({"w1": (100, 150), "w2": (100, 50)}), Claim(workers=2, **HOURLY))
    assert v.kind == "fail"
    assert "per process" in v.hint and "2 workers" in v.hint


def test_violation_is_proof_even_from_one_worker() -> None:
    v = judge(history({"w1": (150, 250)}), Claim(workers=4, **HOURLY))
    assert v.kind == "fail"


def test_under_admission_fails() -> None:
    v = judge(history({"w1": (40, 160), "w2": (50, 150)}), Claim(workers=2, **HOURLY))
    assert v.kind == "fail"
    assert "under-admission" in v.reason


def test_exact_but_one_worker_served_is_inconclusive_not_pass() -> None:
    v = judge(history({"w1": (100, 300)}), Claim(workers=2, **HOURLY))
    assert v.kind == "inconclusive"
    assert "1 of 2 workers" in v.reason


def test_min_workers_seen_can_be_lowered() -> None:
    records = history({"w1": (50, 150), "w2": (50, 150)})
    assert judge(records, Claim(workers=4, **HOURLY)).kind == "inconclusive"
    assert judge(records, Claim(workers=4, min_workers_seen=2, **HOURLY)).kind == "pass"


def test_burst_that_never_reaches_the_limit_proves_nothing() -> None:
    v = judge(history({"w1": (30, 0), "w2": (30, 0)}), Claim(workers=2, **HOURLY))
    assert v.kind == "inconclusive"
    assert v.expected_accepted == 60


def test_errors_give_error_verdict_and_accounting_closes() -> None:
    records = history({"w1": (50, 100), "w2": (50, 100)}, errors=3)
    v = judge(records, Claim(workers=2, **HOURLY))
    assert v.kind == "error"
    t = v.tally
    assert t.sent == len(records) == t.accepted + t.rejected + t.errors
    assert t.errors == 3
    assert "no response" in v.reason and "HTTP 503" in v.reason


def test_a_wrong_path_gets_a_hint() -> None:
    records = [Record(i, "127.0.0.1", T0, T0 + 0.1, 404, "w1") for i in range(200)]
    v = judge(records, Claim(workers=1, **HOURLY))
    assert v.kind == "error" and "--path" in v.hint


def test_over_admission_is_a_failure_even_with_errors() -> None:
    v = judge(history({"w1": (120, 60), "w2": (90, 30)}, errors=2), Claim(workers=2, **HOURLY))
    assert v.kind == "fail"


def test_a_request_that_never_connected_does_not_stretch_the_burst() -> None:
    # A connect error leaves sent_at unset (0.0): it must not make the burst look decades long
    # and so turn a proven over-admission into "inconclusive".
    records = history({"w1": (130, 70), "w2": (114, 86)})
    records.append(Record(len(records), "127.0.0.1", 0.0, None, None, None, "connect: refused"))
    v = judge(records, Claim(workers=2, **HOURLY))
    assert v.kind == "fail"
    assert v.tally.span_s == pytest.approx(0.3)


def test_sliding_window_burst_longer_than_the_period_is_inconclusive() -> None:
    records = history({"w1": (8, 2), "w2": (7, 3)}, span_s=1.5)
    v = judge(records, Claim(limit=10, period_s=1, workers=2))
    assert v.kind == "inconclusive"
    assert "window edge" in v.reason


def test_fixed_window_burst_across_a_clock_edge_is_inconclusive() -> None:
    edge = 1_800_003_600.0  # a multiple of 3600
    records = history({"w1": (80, 20), "w2": (70, 30)}, t0=edge - 0.1, span_s=0.2)
    assert judge(records, Claim(window="fixed", workers=2, **HOURLY)).kind == "inconclusive"
    # The same burst against a sliding window is proof of over-admission.
    assert judge(records, Claim(window="sliding", workers=2, **HOURLY)).kind == "fail"


def test_tally_counts_workers_that_served_rejections_too() -> None:
    t = tally(history({"w1": (100, 0), "w2": (0, 300)}))
    assert t.workers_seen == 2
    assert t.served_by == {"w1": 100, "w2": 300}
