"""The gate's CPU share and the load generator count the same CPUs: those the fleet may use
(its CPU affinity), not the host's cores."""

from __future__ import annotations

import os
import time

import pytest

from harness.fleet import usage as fleet_usage
from harness.gate.load import generator_processes
from harness.host.cpus import usable_cpus


@pytest.fixture
def two_of_eight(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host of 8 cores on which this process (and so the fleet it starts) may use 2."""
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {2, 5})


def test_a_fleet_busy_on_every_cpu_it_may_use_is_at_100_percent(
    two_of_eight: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    began = time.monotonic()
    monkeypatch.setattr(fleet_usage, "children", lambda pid: [])
    # the arbiter's CPU time (reaped workers' included) grows twice as fast as the wall clock
    monkeypatch.setattr(fleet_usage, "_stat", lambda pid: (2 * (time.monotonic() - began), 0))
    meter = fleet_usage.UsageMeter(fleet_usage.ProcessSampler([4242]))
    meter.start()
    time.sleep(0.2)
    usage, _ = meter.stop()
    assert usage.cpu_percent == pytest.approx(100, abs=5)
    assert generator_processes(connections=64) == 2  # the load generator counts the same 2


def test_usable_cpus_is_the_union_of_the_processes_masks(monkeypatch: pytest.MonkeyPatch) -> None:
    masks = {0: {0, 1}, 11: {1, 2}, 12: {3}}

    def affinity(pid: int) -> set[int]:
        if pid not in masks:
            raise ProcessLookupError(pid)
        return masks[pid]

    monkeypatch.setattr(os, "sched_getaffinity", affinity)
    assert usable_cpus() == 2
    assert usable_cpus([11, 12]) == 3
    assert usable_cpus([11, 99]) == 3  # a process gone: this one's mask instead
