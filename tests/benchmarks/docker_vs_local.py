"""What a Docker Redis costs, next to a local redis-server.

A script, not a pytest test. In one run it opens and closes the ``local`` provider
(:data:`harness.redis.providers.binary.LOCAL`) and the ``docker`` provider
(:class:`harness.redis.providers.docker.DockerProvider`) N times each, alternating which goes first,
after one untimed warm-up each (imports, first engine connection). For every open it measures:

- **ready**: from ``provider.open()`` to the first PING answered on the yielded URL;
- **teardown**: the context's exit (process stopped / container removed).

It prints min/median/max of both per provider, and the Docker overhead per harness invocation
(one Redis serves a whole matrix, so a scenario pays a share of it): the difference of the
median ready + teardown, and the paired per-repetition differences.

Usage (the Docker environment as CI sets it; see .ci/docker-setup.sh)::

    THROTTLE_HARNESS_REDIS_IMAGE=local/redis:ci TESTCONTAINERS_RYUK_DISABLED=true \\
    TESTCONTAINERS_CONNECTION_MODE=docker_host PYTHONPATH=. \\
        python tests/benchmarks/docker_vs_local.py [--repeat 5] [--image IMAGE]
        [--local-binary /usr/bin/redis-server]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass, field

import redis

from harness.errors import RedisUnavailable
from harness.redis.providers.base import RedisProvider
from harness.redis.providers.binary import LOCAL, local_binary
from harness.redis.providers.docker import DockerProvider


@dataclass
class Timings:
    name: str
    ready: list[float] = field(default_factory=list)
    teardown: list[float] = field(default_factory=list)
    version: str = "?"

    @property
    def total(self) -> list[float]:
        return [r + t for r, t in zip(self.ready, self.teardown, strict=True)]


def one_run(provider: RedisProvider) -> tuple[float, float, str]:
    """(seconds to ready, seconds to tear down, Redis version) for one open/close."""
    started = time.perf_counter()
    context = provider.open()
    server = context.__enter__()
    try:
        client = redis.Redis.from_url(server.url, socket_timeout=5, retry=None)
        try:
            while True:
                try:
                    if client.ping():
                        break
                except redis.exceptions.ConnectionError:
                    time.sleep(0.001)
        finally:
            client.close()
        ready = time.perf_counter()
    except BaseException:
        context.__exit__(*sys.exc_info())
        raise
    context.__exit__(None, None, None)
    done = time.perf_counter()
    return ready - started, done - ready, server.version


def spread(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"{min(ms):7.0f} {statistics.median(ms):7.0f} {max(ms):7.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--repeat", type=int, default=5, help="timed runs per provider")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per provider first")
    parser.add_argument(
        "--image",
        help="Docker image (default: $THROTTLE_HARNESS_REDIS_IMAGE or the provider's default)",
    )
    parser.add_argument(
        "--local-binary",
        help="redis-server for the local provider "
        "(sets THROTTLE_HARNESS_REDIS_SERVER; default: the one on PATH)",
    )
    args = parser.parse_args()
    if args.local_binary:
        os.environ["THROTTLE_HARNESS_REDIS_SERVER"] = args.local_binary

    docker = DockerProvider(args.image)
    providers: list[RedisProvider] = []
    for provider in (LOCAL, docker):
        why_not = provider.unavailable()
        if why_not is None:
            providers.append(provider)
        else:
            print(f"{provider.name}: unavailable: {why_not}")
    if not providers:
        return 3

    print(f"local binary: {local_binary()}")
    print(f"docker image: {docker.image}")
    timings = {p.name: Timings(p.name) for p in providers}
    try:
        for provider in providers:
            for _ in range(args.warmup):
                one_run(provider)
        for rep in range(args.repeat):
            order = providers if rep % 2 == 0 else providers[::-1]
            for provider in order:
                ready, teardown, version = one_run(provider)
                entry = timings[provider.name]
                entry.ready.append(ready)
                entry.teardown.append(teardown)
                entry.version = version
    except RedisUnavailable as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code

    print(f"\n{args.repeat} runs each, milliseconds (min median max)")
    print(f"{'provider':8} {'redis':8} {'ready':>23}   {'teardown':>23}   {'ready+teardown':>23}")
    for entry in timings.values():
        print(
            f"{entry.name:8} {entry.version:8} {spread(entry.ready)}   "
            f"{spread(entry.teardown)}   {spread(entry.total)}"
        )

    if "local" in timings and "docker" in timings:
        local, dock = timings["local"], timings["docker"]
        diff_ready = statistics.median(dock.ready) - statistics.median(local.ready)
        diff_teardown = statistics.median(dock.teardown) - statistics.median(local.teardown)
        paired = [d - lo for d, lo in zip(dock.total, local.total, strict=True)]
        print(
            f"\ndocker - local per invocation (medians): ready {diff_ready * 1000:+.0f} ms, "
            f"teardown {diff_teardown * 1000:+.0f} ms, "
            f"total {(diff_ready + diff_teardown) * 1000:+.0f} ms"
        )
        print(f"paired per repetition (ready+teardown), ms (min median max): {spread(paired)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
