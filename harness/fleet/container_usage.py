"""What a container fleet costs, read from each container's cgroup through the engine's stats
API, as ``docker stats`` reads it: CPU as the cgroup's cumulative CPU time, memory as its usage
less the inactive page cache (``inactive_file`` under cgroup v2, ``total_inactive_file`` under
v1). A cgroup knows its total only, so the per-worker memory is not measured (NaN)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.fleet.usage import Sample


class ContainerSampler:
    """The fleet's containers (docker SDK objects) and how many workers they run."""

    def __init__(self, containers: Sequence[Any], workers: int) -> None:
        self.containers = list(containers)
        self.workers = workers
        self._online = 1

    def cpus(self) -> int:
        """The CPUs the containers may use between them: the sum of their CPU limits (a
        container without one may use every online CPU), at most the online CPUs."""
        limits = [_cpu_limit(c) or self._online for c in self.containers]
        return max(1, min(self._online, sum(limits)))

    def sample(self) -> Sample:
        cpu_s = memory = 0.0
        for container in self.containers:
            try:
                stats = container.client.api.stats(container.id, stream=False, one_shot=True)
            except Exception:
                continue  # removed meanwhile: nothing more to count
            cpu = stats.get("cpu_stats") or {}
            cpu_s += (cpu.get("cpu_usage") or {}).get("total_usage", 0) / 1e9
            self._online = max(self._online, int(cpu.get("online_cpus") or 1))
            mem = stats.get("memory_stats") or {}
            detail = mem.get("stats") or {}
            cache = detail.get("inactive_file", detail.get("total_inactive_file", 0))
            memory += max(0, mem.get("usage", 0) - cache)
        return Sample(cpu_s, memory, [], self.workers)


def _cpu_limit(container: Any) -> int:
    """A ``--cpus`` limit rounded up to whole CPUs (0: none)."""
    nano = ((container.attrs.get("HostConfig") or {}).get("NanoCpus")) or 0
    return -(-int(nano) // 1_000_000_000)
