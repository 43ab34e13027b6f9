"""The CPUs processes may run on: one answer for the load generator's process count and the
fleet's CPU share, so that both count the same CPUs."""

from __future__ import annotations

import os
from collections.abc import Iterable


def usable_cpus(pids: Iterable[int] = (0,)) -> int:
    """How many CPUs the processes ``pids`` (0: this one) may run on between them: the union
    of their CPU affinity masks (a ``taskset`` or a cgroup cpuset narrows it), this process's
    for a process that is gone; every core where there are no masks (not Linux)."""
    if not hasattr(os, "sched_getaffinity"):
        return os.cpu_count() or 1
    cpus: set[int] = set()
    for pid in pids:
        try:
            cpus |= os.sched_getaffinity(pid)
        except OSError:  # gone, or not ours to read
            cpus |= os.sched_getaffinity(0)
    return max(1, len(cpus))
