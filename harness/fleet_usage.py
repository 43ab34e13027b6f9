"""What a fleet costs while it serves: CPU time and resident memory of every gunicorn process,
read from ``/proc`` (Linux), and what Redis sees meanwhile.

CPU use is the fleet's CPU seconds over the wall time, as a share of the whole machine (100% =
every core busy), as a host's monitoring shows it. Memory is sampled while the load runs: the
arbiter and its workers' RSS at the sample with the largest total (``total``), and the mean of
the workers' RSS (``per_worker``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis

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
    clients: int  # connected clients at the busiest sample (the harness's own not counted)
    ops_per_s: float


def children(pid: int) -> list[int]:
    """The child processes of ``pid``."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return found


def _stat(pid: int) -> tuple[float, float] | None:
    """(CPU seconds, including reaped children's, RSS bytes) of one process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    rss_pages = int(fields[21])
    return (utime + stime + cutime + cstime) / _TICKS, rss_pages * _PAGE


@dataclass
class _Samples:
    start_cpu: dict[int, float] = field(default_factory=dict)
    end_cpu: dict[int, float] = field(default_factory=dict)
    best_total: float = 0.0
    best_workers: list[float] = field(default_factory=list)
    most_workers: int = 0
    redis_clients: int = 0


class UsageMeter:
    """Samples a fleet (its arbiters' pids) and a Redis from ``start()`` to ``stop()``."""

    def __init__(self, arbiters: Sequence[int], redis_url: str | None = None) -> None:
        self.arbiters = list(arbiters)
        self.redis_url = redis_url
        self._samples = _Samples()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._started = 0.0
        self._elapsed = 0.0
        self._commands = 0

    def _processes(self) -> tuple[list[int], list[int]]:
        workers = [c for a in self.arbiters for c in children(a)]
        return self.arbiters, workers

    def _sample(self, cpu: dict[int, float]) -> None:
        arbiters, workers = self._processes()
        total = 0.0
        worker_rss = []
        for pid in [*arbiters, *workers]:
            got = _stat(pid)
            if got is None:
                continue
            cpu[pid] = got[0]
            total += got[1]
            if pid in workers:
                worker_rss.append(got[1])
        s = self._samples
        if total > s.best_total:
            s.best_total, s.best_workers = total, worker_rss
        s.most_workers = max(s.most_workers, len(worker_rss))
        if self.redis_url:
            s.redis_clients = max(s.redis_clients, self._redis_info()[0])

    def _redis_info(self) -> tuple[int, int]:
        """(connected clients but this one, commands processed so far)."""
        assert self.redis_url is not None
        try:
            with redis.Redis.from_url(self.redis_url, socket_timeout=2) as client:
                info = client.info()
        except redis.exceptions.RedisError:
            return 0, 0
        clients = int(info.get("connected_clients", 1)) - 1
        return clients, int(info.get("total_commands_processed", 0))

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self._sample({})

    def start(self) -> None:
        if self.redis_url:
            self._commands = self._redis_info()[1]
        self._sample(self._samples.start_cpu)
        self._started = time.monotonic()
        self._thread.start()

    def stop(self) -> tuple[Usage, RedisLoad]:
        self._stop.set()
        self._thread.join()
        self._elapsed = max(1e-6, time.monotonic() - self._started)
        self._sample(self._samples.end_cpu)
        commands = self._redis_info()[1] - self._commands if self.redis_url else 0
        s = self._samples
        cpu_s = sum(t - s.start_cpu.get(pid, 0.0) for pid, t in s.end_cpu.items())
        workers = s.best_workers
        usage = Usage(
            cpu_percent=100 * cpu_s / (self._elapsed * (os.cpu_count() or 1)),
            rss_total_mb=s.best_total / _MB,
            rss_per_worker_mb=(sum(workers) / len(workers) / _MB) if workers else 0.0,
            workers=s.most_workers,
        )
        # this meter's own INFO calls (one per sample, and two more) are left out
        samples = 2 + int(self._elapsed / SAMPLE_S)
        return usage, RedisLoad(s.redis_clients, max(0, commands - samples) / self._elapsed)


@contextmanager
def metered(arbiters: Sequence[int], redis_url: str | None) -> Iterator[UsageMeter]:
    """A started meter, stopped on exit even on an error (read it with ``stop()`` first)."""
    meter = UsageMeter(arbiters, redis_url)
    meter.start()
    try:
        yield meter
    finally:
        if not meter._stop.is_set():
            meter._stop.set()
            meter._thread.join()
