"""Window bounds on synthetic histories: exact where claimed, never below what a throttle can do."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Sequence
from fractions import Fraction

import pytest

from harness.verdict.windows import MODELS, WINDOW_NAMES, Fit, Interval, model_for, recovery_periods

T0 = 1_800_000_000.0  # a multiple of 1s, 60s and 3600s on the epoch clock


def fit(model: str, accepted: Sequence[Interval], limit: int, period_s: float = 1.0) -> Fit:
    return MODELS[model].fit(accepted, limit, period_s)


def burst(n: int, start: float = T0 + 0.3, span: float = 0.05) -> list[Interval]:
    """``n`` requests sent at ``start`` and answered ``span`` later (all overlapping)."""
    return [(start, start + span)] * n


def spread(n: int, start: float, over: float, width: float = 0.0) -> list[Interval]:
    """``n`` requests sent evenly over ``over`` seconds, each answered ``width`` later."""
    return [(start + over * i / (n - 1), start + over * i / (n - 1) + width) for i in range(n)]


# --- bursts shorter than the period ---------------------------------------------------------


def test_sliding_short_burst_admits_the_limit_and_no_more() -> None:
    assert (fit("sliding", burst(5), 5).kind, fit("sliding", burst(5), 5).bound) == ("within", 5)
    over = fit("sliding", burst(6), 5)
    assert (over.kind, over.bound, over.loose_bound, over.model) == ("over", 5, 5, "sliding")
    assert over.reason == "a sliding window admits at most 5 in any 1s"


def test_fixed_clock_short_burst_inside_one_window() -> None:
    assert fit("fixed-clock", burst(5), 5).kind == "within"
    over = fit("fixed-clock", burst(6), 5)
    assert (over.kind, over.bound, over.edge_chance) == ("over", 5, 0.0)


def test_fixed_unknown_phase_short_burst_is_edge_between_limit_and_twice() -> None:
    assert fit("fixed", burst(5, span=0.21), 5).kind == "within"
    edge = fit("fixed", burst(6, span=0.21), 5)
    assert (edge.kind, edge.bound, edge.loose_bound) == ("edge", 5, 6)
    assert edge.edge_chance == pytest.approx(0.21, abs=1e-6)
    full = fit("fixed", burst(10, span=0.21), 5)
    assert (full.kind, full.loose_bound) == ("edge", 10)
    over = fit("fixed", burst(11, span=0.21), 5)
    assert (over.kind, over.bound, over.loose_bound, over.edge_chance) == ("over", 10, 10, 0.0)
    assert over.reason == (
        "a fixed window of unknown phase admits at most 5 unless an edge falls inside the "
        "0.21s burst (chance <= 0.21), 10 across one edge"
    )


def test_fixed_unknown_phase_loose_bound_is_exact_over_edge_positions() -> None:
    # Eight admitted at one instant: wherever the edge, at most 5 of them pass, plus the 2
    # later ones: 7, not 2 * 5.
    accepted = [(T0 + 0.1, T0 + 0.1)] * 8 + [(T0 + 0.4, T0 + 0.4)] * 2
    f = fit("fixed", accepted, 5)
    assert (f.kind, f.bound, f.loose_bound) == ("over", 7, 7)
    # Were the eight answered after the others were sent, the edge could split them: 10.
    overlapping = [(T0 + 0.1, T0 + 0.35)] * 8 + [(T0 + 0.3, T0 + 0.4)] * 2
    assert fit("fixed", overlapping, 5).loose_bound == 10


def test_token_bucket_20_per_second_over_200ms_admits_24() -> None:
    accepted = spread(24, T0 + 0.3, 0.2)
    assert (fit("token-bucket", accepted, 20).kind, fit("token-bucket", accepted, 20).bound) == (
        "within",
        24,
    )
    over = fit("token-bucket", spread(25, T0 + 0.3, 0.2), 20)
    assert (over.kind, over.bound) == ("over", 24)
    assert fit("token-bucket", spread(100, T0, 2.0), 20).bound == 60  # 20 + 20/s * 2s


def test_token_bucket_bounds_every_interval_not_only_the_whole_span() -> None:
    # The narrow race at 5/second: seven admitted within 50 ms, one more 0.55 s later. Over
    # the whole 0.6 s a bucket of 5 refills 3 (8 in all), but no bucket admits 7 in 50 ms.
    accepted = [(T0 + 0.30, T0 + 0.35)] * 7 + [(T0 + 0.85, T0 + 0.9)]
    f = fit("token-bucket", accepted, 5)
    assert (f.kind, f.bound) == ("over", 6)
    assert f.reason == (
        "a token bucket of 5 refilling 5 per 1s admits at most 5 in 0.05s, and 7 of these "
        "were admitted within 0.05s"
    )
    # A correct bucket's shape: 5 at once, then one per refill of 200 ms.
    correct = [(T0 + 0.3, T0 + 0.31)] * 5 + [
        (T0 + 0.3 + 0.2 * k, T0 + 0.31 + 0.2 * k) for k in (1, 2)
    ]
    held = fit("token-bucket", correct, 5)
    assert (held.kind, held.bound) == ("within", 7)
    assert held.reason == "a token bucket of 5 refilling 5 per 1s admits at most 7 in 0.41s"
    assert fit("any", correct, 5).model == "token-bucket"


def test_sliding_window_bounds_a_tight_cluster_between_grid_lines() -> None:
    # Over 2 s, six admitted within 10 ms across T0 + 1: the grids (on the epoch clock, at the
    # first send, after the last receipt) all have an edge there and split them, but no
    # sliding window of 5 per second admits six within 10 ms.
    cluster = [(T0 + 0.995, T0 + 1.005)] * 6
    accepted = [(T0, T0 + 0.001), *cluster, (T0 + 1.999, T0 + 2.0)]
    f = fit("sliding", accepted, 5)
    assert (f.kind, f.bound) == ("over", 7)
    assert f.reason == (
        "a sliding window (5 in any 1s) admits at most 5 in 0.01s, and 6 of these were "
        "admitted within 0.01s"
    )


def test_refusals_place_the_edge_of_a_fixed_window() -> None:
    # Five admitted, then three refused, then two admitted, then three refused (each at one
    # instant): a correct fixed window fills one window before it refuses, so the refusals
    # after the two late admissions need a second full window: no edge splits this.
    accepted = [(T0 + 0.3, T0 + 0.3)] * 5 + [(T0 + 0.5, T0 + 0.5)] * 2
    refused = [(T0 + 0.4, T0 + 0.4)] * 3 + [(T0 + 0.6, T0 + 0.6)] * 3
    assert fit("fixed", accepted, 5).kind == "edge"  # admissions alone: an edge at 0.4 or 0.5
    f = MODELS["fixed"].fit(accepted, 5, 1.0, refused)
    assert (f.kind, f.bound, f.edges) == ("over", 6, ())
    # A sliding-window counter refuses before its window is full: its bound ignores refusals
    # (5 + ceil(5 * 0.2) in 0.2 s, with a millisecond's headroom), so `any` needs one more.
    assert MODELS["any"].fit(accepted, 5, 1.0, refused).kind == "edge"
    three = [*accepted, (T0 + 0.5, T0 + 0.5)]
    assert MODELS["any"].fit(three, 5, 1.0, refused).kind == "over"


def test_refusals_narrow_where_an_edge_could_fall() -> None:
    # The narrow race at 5/second: eight admitted in the first 20 ms, then 32 refused over
    # 0.4 s. A correct window could only have had its edge after the third admission was
    # sent and before the fourth was answered: where, is the range the checker works with.
    accepted = [(T0 + 0.3 + 0.002 * i, T0 + 0.31 + 0.002 * i) for i in range(8)]
    refused = [(T0 + 0.32 + 0.0125 * i, T0 + 0.33 + 0.0125 * i) for i in range(32)]
    f = MODELS["fixed"].fit(accepted, 5, 1.0, refused)
    assert f.kind == "edge"
    assert f.edges == ((T0 + 0.304, T0 + 0.316),)
    assert f.edge_chance == pytest.approx(accepted[-1][1] - accepted[0][0])  # the span's share


def test_refusals_at_a_known_clock_edge() -> None:
    # Six admitted around a clock edge, then refusals on both sides of the edge: the window
    # after it refused before it had five. A fixed window on the clock cannot do this.
    accepted = [(T0 + 0.98, T0 + 0.99)] * 4 + [(T0 + 1.01, T0 + 1.02)] * 2
    refused = [(T0 + 0.99, T0 + 0.995)] * 2 + [(T0 + 1.03, T0 + 1.04)] * 2
    assert fit("fixed-clock", accepted, 5).kind == "within"  # 5 + 5 across the edge
    f = MODELS["fixed-clock"].fit(accepted, 5, 1.0, refused)
    assert f.kind == "over"
    # Refusals only after the window after the edge is full: as a correct one does.
    fair = [(T0 + 1.03, T0 + 1.04)] * 2
    late = [(T0 + 0.98, T0 + 0.99)] + [(T0 + 1.01, T0 + 1.02)] * 5
    assert MODELS["fixed-clock"].fit(late, 5, 1.0, fair).kind == "within"


def test_zero_accepted_is_within_for_every_model() -> None:
    for name in WINDOW_NAMES:
        f = fit(name, [], 5)
        assert (f.kind, f.accepted, f.bound, f.edge_chance) == ("within", 0, 0, 0.0), name


# --- edges, overlaps and straddles on the clock ---------------------------------------------


def test_fixed_clock_request_admitted_exactly_on_an_edge_belongs_to_the_new_window() -> None:
    ending_on_edge = [(T0 - 0.1, T0)] * 2  # may be admitted before T0 or exactly at it
    assert fit("fixed-clock", ending_on_edge, 1).kind == "within"
    starting_on_edge = [(T0, T0 + 0.1)] * 2  # only in [T0, T0 + 1)
    f = fit("fixed-clock", starting_on_edge, 1)
    assert (f.kind, f.bound) == ("over", 1)
    points = [(T0 - 1e-3, T0 - 1e-3), (T0, T0), (T0, T0)]  # one before the edge, two on it
    assert fit("fixed-clock", points, 1).bound == 2
    # T0 + 30 is an edge of the 1s clock but not of the 60s clock: one window there.
    mid = [(T0 + 29.9, T0 + 30), (T0 + 29.9, T0 + 30), (T0 + 30, T0 + 30.1)]
    assert (fit("fixed-clock", mid, 1).bound, fit("fixed-clock", mid, 1, 60.0).bound) == (2, 1)


def test_fixed_clock_overlapping_intervals_are_matched_exactly() -> None:
    before = [(T0 - 0.5, T0 - 0.4)]  # window k-1 only
    either = [(T0 - 0.2, T0 + 0.2)] * 2  # k-1 or k
    after = [(T0 + 0.1, T0 + 0.3)] * 2  # window k only
    f = fit("fixed-clock", before + either + after, 2)
    assert (f.kind, f.bound) == ("over", 4)  # k-1: before + one either; k: the two after
    assert fit("fixed-clock", before + either + after[:1], 2).kind == "within"


def test_burst_straddling_a_clock_edge() -> None:
    straddle = [(T0 - 0.05, T0 - 0.04)] * 5 + [(T0 + 0.01, T0 + 0.02)] * 5
    assert (fit("fixed-clock", straddle, 5).kind, fit("fixed-clock", straddle, 5).bound) == (
        "within",
        10,
    )
    sliding = fit("sliding", straddle, 5)
    assert (sliding.kind, sliding.bound) == ("over", 5)
    fixed = fit("fixed", straddle, 5)
    assert (fixed.kind, fixed.loose_bound) == ("edge", 10)
    assert fixed.edge_chance == pytest.approx(0.07, abs=1e-6)
    anything = fit("any", straddle, 5)
    assert (anything.kind, anything.bound, anything.model) == ("within", 10, "fixed-clock")


# --- spans of a period or more --------------------------------------------------------------


def test_sliding_30_accepted_over_147s_at_5_per_second_is_over() -> None:
    accepted = spread(30, T0 + 0.3, 1.47)
    f = fit("sliding", accepted, 5)
    assert (f.kind, f.bound) == ("over", 10)  # two windows of a second cover 1.47s
    assert f.reason == "a sliding window (5 in any 1s) admits at most 10 of these over 1.47s"
    assert fit("fixed-clock", accepted, 5).bound == 10
    assert fit("token-bucket", accepted, 5).bound == 12  # 5 + floor(5 * 1.47)
    fixed = fit("fixed", accepted, 5)
    assert (fixed.kind, fixed.bound) == ("over", 15)  # 5 per window, 3 windows at most
    anything = fit("any", accepted, 5)
    assert (anything.kind, anything.bound, anything.model) == ("over", 15, "any")


def test_correct_sliding_history_over_three_periods_is_within() -> None:
    # Admissions exactly d/L apart for three periods, each seen in a 0.1s interval.
    admitted = [T0 + 0.37 + k * 0.2 for k in range(15)]
    accepted = [(t - 0.05, t + 0.05) for t in admitted]
    f = fit("sliding", accepted, 5)
    assert (f.kind, f.bound) == ("within", 15)
    squeezed = fit("sliding", [*accepted, (T0 + 0.47, T0 + 0.47)], 5)
    assert (squeezed.kind, squeezed.bound) == ("over", 15)


def test_sliding_never_trusts_a_late_greedy() -> None:
    # Placing each admission as late as possible (by deadline) puts the first at 1.5 and loses
    # the second; a correct throttle admits both (at 0.5 and at 2), so the bound must be 2.
    accepted = [(T0, T0 + 1.5), (T0 + 2, T0 + 2)]
    assert (fit("sliding", accepted, 1).kind, fit("sliding", accepted, 1).bound) == ("within", 2)


def test_fixed_unknown_phase_span_over_a_period_is_never_edge() -> None:
    accepted = spread(15, T0 + 0.3, 1.5)
    f = fit("fixed", accepted, 5)
    assert (f.kind, f.bound, f.loose_bound, f.edge_chance) == ("within", 15, 15, 0.0)
    over = fit("fixed", spread(16, T0 + 0.3, 1.5), 5)
    assert (over.kind, over.bound) == ("over", 15)


def test_fixed_unknown_phase_sparse_clusters_use_twice_the_limit_per_period() -> None:
    # Three tight clusters 5.3s apart: 10 each may pass (one edge apiece), not 5 * 12.
    clusters = [c + k * 1e-3 for c in (T0, T0 + 5.3, T0 + 10.6) for k in range(10)]
    accepted = [(t, t + 1e-3) for t in clusters]
    assert (fit("fixed", accepted, 5).kind, fit("fixed", accepted, 5).bound) == ("within", 30)
    extra = fit("fixed", [*accepted, (T0 + 5.3, T0 + 5.3)], 5)
    assert (extra.kind, extra.bound) == ("over", 30)


# --- the default ----------------------------------------------------------------------------


def test_any_model_in_a_short_burst() -> None:
    within = fit("any", burst(5), 5)
    assert (within.kind, within.bound, within.model) == ("within", 5, "sliding")
    edge = fit("any", burst(10), 5)
    assert (edge.kind, edge.bound, edge.loose_bound, edge.model) == ("edge", 5, 10, "fixed")
    assert edge.edge_chance == pytest.approx(0.05, abs=1e-6)
    over = fit("any", burst(11), 5)
    assert (over.kind, over.bound, over.loose_bound, over.model) == ("over", 10, 10, "any")
    assert over.reason.startswith("no window algorithm admits more than 10 of these: a fixed")


def test_model_names_and_lookup() -> None:
    assert WINDOW_NAMES == (
        "any",
        "sliding",
        "fixed",
        "fixed-clock",
        "token-bucket",
        "sliding-counter",
    )
    assert all(MODELS[name].name == name for name in WINDOW_NAMES)
    assert model_for("fixed") is MODELS["fixed"]
    with pytest.raises(ValueError, match="fixed-clock, token-bucket, sliding-counter"):
        model_for("leaky")


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="sent <= received"):
        fit("sliding", [(T0 + 1, T0)], 5)
    with pytest.raises(ValueError, match="limit"):
        fit("fixed", burst(3), 0)
    with pytest.raises(ValueError, match="period"):
        fit("token-bucket", burst(3), 5, 0.0)


def test_twenty_thousand_intervals() -> None:
    rng = random.Random(7)
    accepted: list[Interval] = []
    for _ in range(20_000):
        sent = T0 + rng.uniform(0, 10)
        accepted.append((sent, sent + rng.uniform(0, 0.5)))
    f = fit("any", accepted, 100)
    assert (f.kind, f.accepted, f.model) == ("over", 20_000, "any")
    assert f.bound == fit("fixed", accepted, 100).bound <= 100 * 12
    assert fit("sliding", accepted, 100).bound <= 100 * 11


# --- safety: never below what a correct throttle can admit (brute force, small cases) -------

D = Fraction(1)  # the period of the random cases


def _random_case(rng: random.Random) -> tuple[list[Interval], int]:
    """Up to 6 intervals on a quarter-second grid (so ends often sit exactly on edges)."""
    n = rng.randint(1, 6)
    accepted: list[Interval] = []
    for _ in range(n):
        sent = rng.randint(0, 10) / 4
        accepted.append((sent, sent + rng.randint(0, 6) / 4))
    return accepted, rng.randint(1, 3)


def _sliding_exact(accepted: Sequence[Interval], limit: int) -> int:
    """The exact sliding count: some order of some subset, each admitted as early as it may.

    Given an order, each admission is constrained only from below (its send, the previous
    admission, the one ``limit`` before plus the period), so earliest placement is optimal.
    """
    for size in range(len(accepted), 0, -1):
        for subset in itertools.combinations(accepted, size):
            for order in itertools.permutations(subset):
                times: list[Fraction] = []
                for s, r in order:
                    t = max([Fraction(s)] + times[-1:])
                    if len(times) >= limit:
                        t = max(t, times[-limit] + D)
                    if t > Fraction(r):
                        break
                    times.append(t)
                else:
                    return size
    return 0


def _grid_exact(accepted: Sequence[Interval], limit: int, phase: Fraction) -> int:
    """The exact known-phase fixed-window count: a maximum matching of intervals to slots."""
    slots = [
        [(w, c) for w in range(_index(s, phase), _index(r, phase) + 1) for c in range(limit)]
        for s, r in accepted
    ]
    owner: dict[tuple[int, int], int] = {}

    def augment(i: int, seen: set[tuple[int, int]]) -> bool:
        for slot in slots[i]:
            if slot not in seen:
                seen.add(slot)
                if slot not in owner or augment(owner[slot], seen):
                    owner[slot] = i
                    return True
        return False

    return sum(augment(i, set()) for i in range(len(accepted)))


def _index(t: float, phase: Fraction) -> int:
    return math.floor((Fraction(t) - phase) / D)


def _phases(accepted: Sequence[Interval]) -> list[Fraction]:
    """Phases where the grid count can change, and the midpoints between them."""
    ends = sorted({Fraction(x) % D for iv in accepted for x in iv})
    ends.append(ends[0] + D)
    return ends[:-1] + [(a + b) / 2 for a, b in itertools.pairwise(ends)]


def _token_bucket_exact(accepted: Sequence[Interval], limit: int) -> int:
    """Exact count for a full bucket: any k consecutive admissions need (k - limit) refills."""
    rate = Fraction(limit) / D
    for size in range(len(accepted), 0, -1):
        for subset in itertools.combinations(accepted, size):
            for order in itertools.permutations(subset):
                times: list[Fraction] = []
                for s, r in order:
                    t = max([Fraction(s)] + times[-1:])
                    for i, earlier in enumerate(times):
                        t = max(t, earlier + (len(times) - i + 1 - limit) / rate)
                    if t > Fraction(r):
                        break
                    times.append(t)
                else:
                    return size
    return 0


def test_bounds_never_fall_below_brute_force() -> None:
    rng = random.Random(2024)
    for _ in range(300):
        accepted, limit = _random_case(rng)
        span = max(r for _, r in accepted) - min(s for s, _ in accepted)
        sliding = _sliding_exact(accepted, limit)
        clock = _grid_exact(accepted, limit, Fraction(0))
        any_phase = max(_grid_exact(accepted, limit, p) for p in _phases(accepted))
        bucket = _token_bucket_exact(accepted, limit)
        case = (accepted, limit)
        assert fit("sliding", accepted, limit).loose_bound >= sliding, case
        assert fit("fixed-clock", accepted, limit).loose_bound == clock, case
        assert fit("fixed", accepted, limit).loose_bound >= any_phase, case
        assert fit("token-bucket", accepted, limit).loose_bound >= bucket, case
        assert fit("any", accepted, limit).loose_bound >= max(sliding, any_phase, bucket), case
        if span < 1:  # exact there
            assert fit("sliding", accepted, limit).loose_bound == sliding, case
            assert fit("fixed", accepted, limit).loose_bound == any_phase, case


def _simulate(
    kind: str, requests: Sequence[Interval], limit: int, phase: float, rng: random.Random
):
    """A correct throttle of ``kind`` deciding each request at a random instant inside its
    interval, in the order of those instants: (admitted, refused) intervals."""
    decided = sorted((rng.uniform(s, r), (s, r)) for s, r in requests)
    admitted: list[Interval] = []
    refused: list[Interval] = []
    times: list[float] = []
    tokens, last = float(limit), None
    for at, iv in decided:
        if kind == "fixed":
            window = math.floor((at - phase) / D)
            ok = sum(math.floor((t - phase) / D) == window for t in times) < limit
        elif kind == "sliding":
            ok = sum(t > at - D for t in times) < limit
        else:  # a token bucket, full at the start
            if last is not None:
                tokens = min(float(limit), tokens + (at - last) * limit / D)
            last = at
            ok = tokens >= 1
            tokens -= ok
        if ok:
            times.append(at)
        (admitted if ok else refused).append(iv)
    return admitted, refused


def test_correct_throttles_are_never_over_whatever_they_refused() -> None:
    """Refusals narrow the bounds: they must never turn what a correct throttle did into an
    over-admission. Simulated fixed windows (clock and random phase), sliding logs and token
    buckets, on bursts of overlapping requests shorter and longer than a period."""
    rng = random.Random(15)
    for case in range(400):
        limit = rng.choice([1, 2, 3, 5, 8])
        n = rng.randint(1, 30)
        start = T0 + rng.uniform(0, 2)
        length = rng.choice([0.05, 0.3, 0.9, 2.5])
        requests = []
        for _ in range(n):
            s = start + rng.uniform(0, length)
            requests.append((s, s + rng.choice([0.0, 0.001, 0.02, 0.2])))
        for kind, models in (
            ("fixed", ("fixed", "any")),
            ("sliding", ("sliding", "any")),
            ("bucket", ("token-bucket", "any")),
        ):
            phase = rng.choice([0.0, rng.uniform(0, 1)])
            admitted, refused = _simulate(kind, requests, limit, phase, rng)
            names = (*models, "fixed-clock") if kind == "fixed" and phase == 0 else models
            for name in names:
                f = MODELS[name].fit(admitted, limit, 1.0, refused)
                assert f.kind != "over", (case, kind, name, phase, admitted, refused, f)
                if kind == "fixed" and f.kind == "edge":  # the true edge is where it says
                    edge = phase + math.ceil(min(s for s, _ in admitted) - phase)
                    assert any(a <= edge <= b for a, b in f.edges), (case, edge, f.edges)


def _pairs_excess(accepted: Sequence[Interval], allowance: Callable[[float], int]) -> int:
    """The largest excess over every (send, receipt) pair, by brute force."""
    best = -len(accepted) - 1
    for t1, _ in accepted:
        for _, t2 in accepted:
            if t2 >= t1:
                inside = sum(t1 <= s and r <= t2 for s, r in accepted)
                best = max(best, inside - allowance(t2 - t1))
    return best


def test_every_interval_is_searched_as_brute_force_would() -> None:
    rng = random.Random(7)
    for _ in range(300):
        limit = rng.choice([1, 3, 5, 20])
        n = rng.randint(1, 40)
        start = T0 + rng.uniform(0, 1)
        accepted = []
        for _ in range(n):
            s = start + round(rng.uniform(0, rng.choice([0.05, 0.5, 3.0])), 3)
            accepted.append((s, s + rng.choice([0.0, 0.001, 0.01, 0.3])))

        def bucket(seconds: float, limit: int = limit) -> int:
            return limit + math.floor(limit * seconds + 1e-6 * max(1.0, limit * seconds))

        def window(seconds: float, limit: int = limit) -> int:
            return limit if seconds < 1.0 else 10**9

        tb = MODELS["token-bucket"].fit(accepted, limit, 1.0)
        assert n - tb.bound == max(0, _pairs_excess(accepted, bucket)), (accepted, limit)
        excess = max(0, _pairs_excess(accepted, window))
        assert MODELS["sliding"].fit(accepted, limit, 1.0).bound <= n - excess, (accepted, limit)


def _counter(
    requests: Sequence[Interval],
    limit: int,
    rng: random.Random,
    phase: float | None,
    floor: bool,
) -> tuple[list[Interval], list[Interval]]:
    """A correct sliding-window counter deciding each request at its send, its receipt or a
    random instant between (the latest admits the most): (admitted, refused) intervals.
    Windows on a grid of ``phase``, or (None) anchored at the client's first hit and again
    after two idle periods, as ``limits``' Redis script; the weighted previous count rounded
    down (``limits``) or not."""
    decided = sorted((rng.choice([s, r, rng.uniform(s, r)]), (s, r)) for s, r in requests)
    d = float(D)
    counts: dict[int, int] = {}  # on a grid: admitted per window index
    start, prev, cur = -math.inf, 0, 0  # anchored: the current window and the two counts
    admitted: list[Interval] = []
    refused: list[Interval] = []
    for at, iv in decided:
        if phase is not None:
            k = math.floor((at - phase) / d)
            prev, cur, start = counts.get(k - 1, 0), counts.get(k, 0), phase + k * d
        elif at >= start + 2 * d:
            start, prev, cur = at, 0, 0
        elif at >= start + d:
            start, prev, cur = start + d, cur, 0
        weighted = prev * (d - (at - start)) / d
        ok = (math.floor(weighted) if floor else weighted) + cur + 1 <= limit
        if ok:
            cur += 1
            if phase is not None:
                counts[k] = cur
        (admitted if ok else refused).append(iv)
    return admitted, refused


def test_correct_sliding_window_counters_are_never_over() -> None:
    """Simulated sliding-window counters (clock-aligned at any phase or anchored at the first
    hit; weighted count rounded down or not), on bursts shorter and longer than a period,
    whatever they refused: never over under `sliding-counter` or `any`; over the limit in a
    burst shorter than a period only where an edge of their grid could be."""
    rng = random.Random(16)
    overs = 0
    for case in range(1500):
        limit = rng.choice([1, 2, 3, 5, 10, 20])
        n = rng.randint(1, 3 * limit + 5)
        start = T0 + rng.uniform(0, 2)
        length = rng.choice([0.01, 0.05, 0.3, 0.9, 2.5])
        requests = []
        for _ in range(n):
            s = start + rng.uniform(0, length)
            requests.append((s, s + rng.choice([0.0, 0.001, 0.02, 0.2])))
        phase = rng.choice([None, 0.0, rng.uniform(0, 1)])
        admitted, refused = _counter(requests, limit, rng, phase, rng.random() < 0.7)
        overs += len(admitted) > limit
        for name in ("sliding-counter", "any"):
            f = MODELS[name].fit(admitted, limit, 1.0, refused)
            assert f.kind != "over", (case, name, phase, limit, admitted, refused, f)
        f = MODELS["sliding-counter"].fit(admitted, limit, 1.0, refused)
        span = max(r for _, r in admitted) - min(s for s, _ in admitted) if admitted else 0
        if phase is None and span < 1:
            assert len(admitted) <= limit, (case, admitted)  # a fresh anchored window
        if phase is not None and f.kind == "edge":
            edge = phase + math.ceil(min(s for s, _ in admitted) - phase)
            assert any(a <= edge <= b for a, b in f.edges), (case, edge, f.edges)
    assert overs > 100  # the cases do cross edges and recover into later windows


def test_sliding_counter_bounds_a_crossing_by_the_weighted_previous_window() -> None:
    # Ten admitted just before an edge of a 10/second counter, then its weighted count rounded
    # down lets one more through right after (floor(10 * 0.99) + 0 < 10), and one more per
    # tenth of a second: 12 within 0.11 s is fine, 13 is not; a fixed window allows 20.
    before = [(T0 + 0.99, T0 + 0.995)] * 10
    after = [(T0 + 1.001, T0 + 1.002), (T0 + 1.09, T0 + 1.1)]
    f = fit("sliding-counter", before + after, 10)
    assert (f.kind, f.bound, f.loose_bound) == ("edge", 10, 12)
    over = fit("sliding-counter", [*before, *after, (T0 + 1.09, T0 + 1.1)], 10)
    assert (over.kind, over.bound) == ("over", 12)
    assert over.reason == (
        "a sliding-window counter (10 per 1s window, the previous one weighted) admits at "
        "most 12 in 0.11s, and 13 of these were admitted within 0.11s"
    )
    assert fit("fixed", [*before, *after, (T0 + 1.09, T0 + 1.1)], 10).kind == "edge"
    assert fit("sliding-counter", burst(10), 10).kind == "within"
    assert fit("sliding-counter", spread(30, T0 + 0.3, 1.47), 10).kind == "within"


def test_recovery_periods() -> None:
    assert {name: recovery_periods(name) for name in WINDOW_NAMES} == {
        "any": 2,
        "sliding": 1,
        "fixed": 1,
        "fixed-clock": 1,
        "token-bucket": 1,
        "sliding-counter": 2,
    }


def test_any_never_fails_a_clock_aligned_counter_across_an_edge() -> None:
    # A 10/second counter on the clock: ten admitted a millisecond before T0 + 1 and the
    # eleventh refused; right after the edge floor(10 * 0.9995) + 0 < 10 lets one through and
    # the next is refused. Refusals on both sides rule out a fixed window, and 11 in 2 ms
    # rule out a bucket and a log: only the counter's bound keeps `any` from failing it.
    admitted = [(T0 + 0.999, T0 + 0.999)] * 10 + [(T0 + 1.0004, T0 + 1.0006)]
    refused = [(T0 + 0.9991, T0 + 0.9993), (T0 + 1.0007, T0 + 1.0009)]
    for name in ("sliding", "fixed", "fixed-clock", "token-bucket"):
        assert MODELS[name].fit(admitted, 10, 1.0, refused).kind == "over", name
    f = MODELS["any"].fit(admitted, 10, 1.0, refused)
    assert (f.kind, f.model, f.loose_bound) == ("edge", "sliding-counter", 11)
