"""Overlap at the crossing from the probe's stamps: credited only where throttle checks could
have run together."""

from __future__ import annotations

from harness.fleet.stamps import Stamp
from harness.verdict.evidence import overlap

MS = 1_000_000


def test_a_slow_view_is_not_credited_with_overlap_its_checks_never_had() -> None:
    # Requests enter 5 ms apart, one after another on two workers. Admitted ones stay 100 ms
    # (a slow view); refused ones leave after 1 ms (the check answered them). Their stays
    # overlap twenty at a time, but checks a millisecond long never ran together.
    stamps = [
        Stamp(
            f"b-{i}",
            f"w{i % 2}",
            i * 5 * MS,
            i * 5 * MS + (100 if i < 10 else 1) * MS,
            200 if i < 10 else 429,
        )
        for i in range(30)
    ]
    accepted = {f"b-{i}" for i in range(10)}
    ov = overlap(stamps, accepted, 10)
    assert (ov.at_crossing, ov.crossing_workers) == (1, 1)
    assert ov.peak == 11  # the stays themselves did overlap


def test_checks_that_ran_together_are_counted() -> None:
    # The same, but four requests enter within a millisecond at the crossing.
    stamps = [
        Stamp(
            f"b-{i}",
            f"w{i % 2}",
            i * 5 * MS,
            i * 5 * MS + (100 if i < 10 else 1) * MS,
            200 if i < 10 else 429,
        )
        for i in range(30)
    ]
    crossing = stamps[9]
    for i in (10, 11, 12):
        stamps[i] = Stamp(
            f"b-{i}",
            f"w{i % 2}",
            crossing.entered_ns + (i - 9) * MS // 4,
            crossing.entered_ns + (i - 9) * MS // 4 + MS,
            429,
        )
    ov = overlap(stamps, {f"b-{i}" for i in range(10)}, 10)
    assert (ov.at_crossing, ov.crossing_workers) == (4, 2)


def test_without_refusals_the_whole_stay_counts() -> None:
    stamps = [Stamp(f"b-{i}", "w0", i * MS, i * MS + 10 * MS, 200) for i in range(5)]
    ov = overlap(stamps, {s.request for s in stamps}, 3)
    assert ov.at_crossing == 5


def _window_start(first_entries: list[tuple[str, int, int]]) -> list[Stamp]:
    """A burst at a limit of 10: the first admitted requests as (worker, entered, stay) in ns,
    then the rest of the ten admitted, then ten refused (1 ms each: the check's length), all
    one after another, 5 ms apart."""
    stamps = [
        Stamp(f"b-{i}", worker, entered, entered + stay, 200)
        for i, (worker, entered, stay) in enumerate(first_entries)
    ]
    for i in range(len(stamps), 20):
        entered = 300 * MS + i * 5 * MS
        stamps.append(Stamp(f"b-{i}", f"w{i % 2}", entered, entered + MS, 200 if i < 10 else 429))
    return stamps


def test_first_requests_whose_checks_ran_together_are_counted_at_the_start() -> None:
    # Four first requests enter within half a millisecond on two workers (a warm fleet).
    stamps = _window_start(
        [("w0", 0, MS), ("w1", MS // 10, MS), ("w0", MS // 5, MS), ("w1", MS // 2, MS)]
    )
    ov = overlap(stamps, {s.request for s in stamps if s.status == 200}, 10)
    assert (ov.at_start, ov.start_workers) == (4, 2)
    assert (ov.at_crossing, ov.crossing_workers) == (1, 1)  # the crossing had none beside it
    assert "4 at the window's start on 2" in ov.describe()


def test_slow_first_requests_of_a_cold_fleet_are_not_credited_at_the_start() -> None:
    # A cold fleet: each thread's first request stays 130 ms (lazy set-up), entering 30 ms
    # apart. Their stays overlap, but a check is 1 ms long (as refusals show), and the first
    # one's check ran alone.
    stamps = _window_start(
        [("w0", 0, 130 * MS), ("w1", 30 * MS, 130 * MS), ("w0", 60 * MS, 130 * MS)]
    )
    ov = overlap(stamps, {s.request for s in stamps if s.status == 200}, 10)
    assert (ov.at_start, ov.start_workers) == (1, 1)
    assert ov.peak == 3  # the stays themselves did overlap


def test_the_start_is_reported_before_the_limit_is_reached() -> None:
    stamps = [Stamp(f"b-{i}", f"w{i % 2}", i * MS // 10, i * MS // 10 + MS, 200) for i in range(3)]
    ov = overlap(stamps, {s.request for s in stamps}, 5)
    assert ov.at_crossing is None
    assert (ov.at_start, ov.start_workers) == (3, 2)
    nothing = overlap(stamps, set(), 5)  # nothing admitted: no window started
    assert nothing.at_start is None and nothing.peak == 3
