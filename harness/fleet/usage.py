"""What a fleet costs while it serves: CPU time and resident memory of every gunicorn process,
read from ``/proc`` (Linux) for local processes or from each container's cgroup (as
``docker stats`` reads it) for containers, and what Redis sees meanwhile.

CPU use is the fleet's CPU seconds over the wall time, as a share of the CPUs the fleet may use
(its arbiters' CPU affinity, which its workers inherit and by which the load generator sizes
itself too: 100% = every one of them busy); a worker that exits during the phase is counted
through its arbiter's reaped-children time. Memory is sampled while the load runs
(every ``SAMPLE_S``): the arbiter and its workers' RSS at the sample with the largest total
(``total``), and the mean of the workers' RSS then (``per_worker``). Redis is read with
``INFO`` over one connection of the meter's own, whose commands are left out.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import redis

from harness.host.cpus import usable_cpus

SAMPLE_S = 0.25
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_MB = 1024 * 1024


@dataclass(frozen=True)
class Usage:
    cpu_percent: float
    rss_total_mb: float
    rss_per_worker_mb: float
    workers: int  # the most workers seen at once


@dataclass(frozen=True)
class RedisLoad:
    clients: int  # connected clients at the busiest sample (the meter's own not counted)
    ops_per_s: float  # NaN when Redis could not be read


def children(pid: int) -> list[int]:
    """The child processes of ``pid`` (from ``/proc/PID/task/*/children`` where the kernel has
    it, else from every process's parent pid)."""
    tasks = list(Path(f"/proc/{pid}/task").glob("*"))
    if tasks and (tasks[0] / "children").exists():
        found = []
        for task in tasks:
            try:
                found += [int(c) for c in (task / "children").read_text().split()]
            except (OSError, ValueError):
                continue
        return found
    return [p for p in _all_pids() if _parent(p) == pid]


def _all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state first)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _parent(pid: int) -> int | None:
    fields = _fields(pid)
    return int(fields[1]) if fields else None


def _stat(pid: int) -> tuple[float, float] | None:
    """(CPU seconds, including reaped children's, RSS bytes) of one process."""
    fields = _fields(pid)
    if fields is None:
        return None
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime + cutime + cstime) / _TICKS, int(fields[21]) * _PAGE


@dataclass(frozen=True)
class Sample:
    """One look at a fleet: its CPU seconds so far (every process's, gone workers' included),
    its memory now, each worker's (empty when only a total is known) and how many workers."""

    cpu_s: float
    rss_total: float
    worker_rss: list[float]
    workers: int


class Sampler(Protocol):
    """Where a meter reads a fleet's cost: ``/proc`` for processes, cgroups for containers."""

    def cpus(self) -> int:
        """How many CPUs the fleet may use (100% CPU = every one busy)."""
        ...

    def sample(self) -> Sample: ...


class ProcessSampler:
    """A fleet of local processes (its arbiters' pids), read from ``/proc``."""

    def __init__(self, arbiters: Sequence[int]) -> None:
        self.arbiters = list(arbiters)

    def cpus(self) -> int:
        return usable_cpus(self.arbiters)

    def sample(self) -> Sample:
        workers = [c for a in self.arbiters for c in children(a)]
        cpu_s = total = 0.0
        worker_rss = []
        for pid in [*self.arbiters, *workers]:
            got = _stat(pid)
            if got is None:
                continue
            cpu_s += got[0]
            total += got[1]
            if pid in workers:
                worker_rss.append(got[1])
        return Sample(cpu_s, total, worker_rss, len(worker_rss))


@dataclass
class _Samples:
    start_cpu: float = 0.0
    end_cpu: float = 0.0
    best_total: float = 0.0
    best_workers: list[float] = field(default_factory=list)
    most_workers: int = 0
    redis_clients: int = 0


class UsageMeter:
    """Samples a fleet (through its ``sampler``) and a Redis from ``start()`` to ``stop()``."""

    def __init__(self, sampler: Sampler, redis_url: str | None = None) -> None:
        self.sampler = sampler
        self._redis = redis.Redis.from_url(redis_url, socket_timeout=2) if redis_url else None
        self._samples = _Samples()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._started = 0.0
        self._cpus = 1  # the CPUs the fleet may use
        self._commands: int | None = None
        self._infos = 0  # INFO commands this meter sent after the first

    def _sample(self) -> float:
        """Take a sample; the fleet's CPU seconds so far."""
        got = self.sampler.sample()
        s = self._samples
        if got.rss_total > s.best_total:
            s.best_total, s.best_workers = got.rss_total, got.worker_rss
        s.most_workers = max(s.most_workers, got.workers)
        info = self._redis_info()
        if info is not None:
            s.redis_clients = max(s.redis_clients, info[0])
        return got.cpu_s

    def _redis_info(self) -> tuple[int, int] | None:
        """(connected clients but the meter's, commands processed so far); None if unread."""
        if self._redis is None:
            return None
        try:
            info = self._redis.info()
        except redis.exceptions.RedisError:
            return None
        self._infos += self._commands is not None
        clients = int(info.get("connected_clients", 1)) - 1
        return clients, int(info.get("total_commands_processed", 0))

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self._sample()

    def start(self) -> None:
        info = self._redis_info()  # connects (and authenticates) before the count starts
        self._commands = info[1] if info else None
        self._samples.start_cpu = self._sample()
        self._cpus = self.sampler.cpus()
        self._started = time.monotonic()
        self._thread.start()

    def stop(self) -> tuple[Usage, RedisLoad]:
        self._halt()
        elapsed = max(1e-6, time.monotonic() - self._started)
        s = self._samples
        s.end_cpu = self._sample()
        # Totals, not per-process deltas: a worker gone since the start is in its arbiter's
        # reaped-children time at the end, and must not count twice.
        cpu_s = s.end_cpu - s.start_cpu
        workers = s.best_workers
        usage = Usage(
            cpu_percent=100 * max(0.0, cpu_s) / (elapsed * self._cpus),
            rss_total_mb=s.best_total / _MB,
            rss_per_worker_mb=(sum(workers) / len(workers) / _MB) if workers else math.nan,
            workers=s.most_workers,
        )
        info = self._redis_info()
        ops = math.nan
        if info is not None and self._commands is not None:
            # Redis counts a command once answered: the last count holds the first INFO and
            # the samples', as many as were sent after the first
            ops = max(0, info[1] - self._commands - self._infos) / elapsed
        if self._redis is not None:
            self._redis.close()
        return usage, RedisLoad(s.redis_clients, ops)

    def _halt(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


@contextmanager
def metered(sampler: Sampler, redis_url: str | None) -> Iterator[UsageMeter]:
    """A started meter, stopped on exit even on an error (read it with ``stop()`` first)."""
    meter = UsageMeter(sampler, redis_url)
    meter.start()
    try:
        yield meter
    finally:
        meter._halt()
        if meter._redis is not None:
            meter._redis.close()
