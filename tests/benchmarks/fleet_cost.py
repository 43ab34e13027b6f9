"""What a fleet costs to start and to take down: local gunicorn processes against containers of
the team's image (``--image``) and a compose file's service (``--compose``), at one shape.

A script, not a pytest test. Each kind is started ``--repeats`` times in rotation (so that no
kind always goes first) with the demo app (atomic throttle, a local redis-server) and timed:
``start`` from the call to every worker answering the probe, ``teardown`` from leaving the
fleet's context to it being gone (processes reaped, containers removed, project down). Prints
medians and ranges, and each kind's median as a multiple of the process fleet's.

Usage::

    PYTHONPATH=. python tests/benchmarks/fleet_cost.py [--workers 2 --threads 2 --instances 1]
        [--repeats 5] [--kinds process,image,compose] [--image local/throttle-demo:ci]

The image must exist (``python .ci/app_image.py``); compose needs ``docker compose`` or
``docker-compose`` and the images ``scenarios/compose/compose.yaml`` names (``APP_IMAGE``,
``REDIS_IMAGE``). Numbers are only comparable within one run: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from harness.fleet import FleetSpec, start_fleet
from harness.redis.providers import open_redis

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "scenarios" / "compose" / "compose.yaml"


def spec_for(kind: str, args: argparse.Namespace, redis_url: str) -> FleetSpec:
    env = {"REDIS_URL": redis_url, "DEMO_CACHE": "django-redis", "DEMO_THROTTLE": "atomic"}
    shape = dict(workers=args.workers, threads=args.threads, instances=args.instances, env=env)
    if kind == "process":
        return FleetSpec(app="harness.demo.wsgi:application", pythonpath=(str(ROOT),), **shape)
    if kind == "image":
        return FleetSpec(app="", image=args.image, **shape)
    return FleetSpec(app="", compose=str(COMPOSE_FILE), service="web", **shape)


def timed(spec: FleetSpec) -> tuple[float, float]:
    """(start, teardown) seconds of one fleet."""
    began = time.monotonic()
    context = start_fleet(spec)
    context.__enter__()
    ready = time.monotonic()
    context.__exit__(None, None, None)
    return ready - began, time.monotonic() - ready


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--kinds", default="process,image,compose")
    parser.add_argument("--image", default=os.environ.get("APP_IMAGE", "local/throttle-demo:ci"))
    args = parser.parse_args()
    os.environ.setdefault("APP_IMAGE", args.image)
    os.environ.setdefault("REDIS_IMAGE", "local/redis:ci")
    kinds = args.kinds.split(",")
    starts: dict[str, list[float]] = {k: [] for k in kinds}
    downs: dict[str, list[float]] = {k: [] for k in kinds}
    with open_redis("local") as redis:
        for repeat in range(args.repeats):
            for kind in kinds[repeat % len(kinds) :] + kinds[: repeat % len(kinds)]:
                start, down = timed(spec_for(kind, args, redis.url))
                starts[kind].append(start)
                downs[kind].append(down)
                print(f"  {kind:8} start {start:6.2f}s  teardown {down:6.2f}s", flush=True)
    shape = f"{args.workers}x{args.threads}" + (f"@{args.instances}" if args.instances > 1 else "")
    print(f"\nfleet cost at {shape}, {args.repeats} repeats (median, min-max; x process)")
    base = {
        "start": statistics.median(starts[kinds[0]]),
        "teardown": statistics.median(downs[kinds[0]]),
    }
    for kind in kinds:
        cells = []
        for what, values in (("start", starts[kind]), ("teardown", downs[kind])):
            median = statistics.median(values)
            ratio = f"x{median / base[what]:.1f}" if base[what] >= 0.001 else "n/a"
            low, high = 1000 * min(values), 1000 * max(values)
            cells.append(f"{what} {1000 * median:6.0f} ms ({low:.0f}-{high:.0f}, {ratio})")
        print(f"  {kind:8} " + "   ".join(cells))


if __name__ == "__main__":
    main()
