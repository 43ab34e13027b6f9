"""Overlap at the crossing from the probe's stamps: credited only where throttle checks could
have run together."""

from __future__ import annotations

from harness.evidence import Stamp, overlap

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
