"""Detection power as verdicts: how often a run of the harness catches a broken throttle (and
never fails a correct one), next to the raw pre-opened-socket reference on the same fleets, in
the same run.

A script, not a pytest test. For each throttle (``--throttles``, names in :data:`THROTTLES`: the
demo's ``naive`` read-compare-increment counter, ``drf`` stock DRF and ``atomic`` reference Lua
throttle; the hand-rolled patterns and library throttles of ``tests/integration/apps``, racy and
correct) and each fleet shape (``--shapes``, WORKERSxTHREADS), it starts ``--runs`` fresh fleets
on a fresh Redis state. On each fleet it runs the harness exactly as ``throttle-harness run``
does at default settings (its bursts, each from a fresh client address, judged by the checker),
and, for a racy throttle, the raw reference client for as many bursts of the full request count,
each from a fresh address; who goes first alternates from run to run. A raw run "caught" the
throttle when one of its bursts admitted more than the limit; "bursts over" counts the single
bursts that did, for both clients (the harness stops a run at its first proven failure, so it
sends fewer bursts). "single" compares the first burst alone: the harness's first burst over the
limit against the raw client's first.

Usage::

    PYTHONPATH=. python tests/benchmarks/detection.py [--runs 20] [--shapes 2x2,4x2] \\
        [--throttles naive,atomic,drf] [--rate 100/hour] [--requests 400]
    PYTHONPATH=. python tests/benchmarks/detection.py --rate 5/second --requests 40 \\
        --throttles rci,clock,incr,gcra,ratelimit,limits-fixed,limits-moving,flask-limiter
    PYTHONPATH=. python tests/benchmarks/detection.py --shapes 1x10,2x10 \\
        --throttles async-racy,async-memory,async-atomic,slowapi   # ASGI, under uvicorn
    PYTHONPATH=. python tests/benchmarks/detection.py --shapes 2x10,4x10 --rate 5/second \\
        --requests 20 --throttles fastapi-limiter,fastapi-limiter-all   # one global budget

A correct throttle's row must show no ``fail``; a racy one's, ``fail`` in (nearly) every run.
Numbers are comparable only within one run of the script: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from burst_power import run_raw  # noqa: E402

from harness.campaign.bursts import client_addresses, send_bursts  # noqa: E402
from harness.fleet import FleetSpec, start_fleet  # noqa: E402
from harness.redis.providers import open_redis  # noqa: E402
from harness.scenario import DEFAULT_BURSTS, load_scenarios  # noqa: E402
from harness.traffic import Target  # noqa: E402
from harness.verdict import judge  # noqa: E402
from harness.verdict.rates import parse_rate  # noqa: E402

APP = "harness.demo.wsgi:application"
PATH = "/api/ping/"
PREFIX = "throttle-harness-detection:"
APPS = Path(__file__).resolve().parents[1] / "integration" / "apps"


@dataclass(frozen=True)
class Throttle:
    """A throttle under test: its app, path and environment, and whether it races."""

    app: str
    path: str
    env: dict[str, str]
    racy: bool
    worker_class: str = ""  # an async class: the shape's second number is its concurrency
    scope: str = "client"  # global: one budget for every client (the raw client's is cleared)


def _demo(name: str, racy: bool) -> Throttle:
    return Throttle(APP, PATH, {"DEMO_THROTTLE": name, "DEMO_CACHE": "django-redis"}, racy)


def _ours(app: str, racy: bool, **env: str) -> Throttle:
    return Throttle(f"{app}:application", "/limited/", env, racy)


def _asgi(limiter: str, racy: bool) -> Throttle:
    return Throttle("harness.demo.asgi:app", PATH, {"DEMO_ASGI_LIMITER": limiter}, racy, "uvicorn")


def _fastapi_limiter(racy: bool, **env: str) -> Throttle:
    env = {"FASTAPI_LIMITER_BUCKET": "redis", **env}
    return Throttle("fastapi_limiter_app:app", "/limited/", env, racy, "uvicorn", "global")


THROTTLES: dict[str, Throttle] = {
    "naive": _demo("naive", True),
    "drf": _demo("drf", True),
    "atomic": _demo("atomic", False),
    "rci": _ours("handrolled_app", True, PATTERN="read-compare-increment"),
    "get-set-list": _ours("handrolled_app", True, PATTERN="get-set-list"),
    "incr": _ours("handrolled_app", False, PATTERN="incr-then-check"),  # fixed, anchored
    "clock": _ours("handrolled_app", False, PATTERN="clock-window"),  # fixed, on the clock
    "gcra": _ours("handrolled_app", False, PATTERN="token-bucket"),  # token bucket
    "counter": _ours("handrolled_app", False, PATTERN="sliding-counter"),  # weighted, clock
    "ratelimit": _ours("ratelimit_app", False),  # fixed, offset per key
    "limits-fixed": _ours("limits_app", False, LIMITS_STRATEGY="fixed-window"),
    "limits-moving": _ours("limits_app", False, LIMITS_STRATEGY="moving-window"),  # sliding log
    "limits-counter": _ours("limits_app", False, LIMITS_STRATEGY="sliding-window-counter"),
    "flask-limiter": _ours("flask_limiter_app", False),
    # ASGI (FastAPI under uvicorn's gunicorn worker; shapes read WORKERSxCONCURRENCY)
    "async-racy": _asgi("read-await-incr", True),  # read, await, then INCR: races in one worker
    "async-memory": _asgi("memory", True),  # a dict per worker: one budget per worker
    "async-atomic": _asgi("atomic", False),  # one Lua script
    "slowapi": Throttle("slowapi_app:app", "/limited/", {}, False, "uvicorn"),
    # fastapi-limiter's Redis bucket, judged as the one global budget it is: it races narrowly
    # (entries stamped before the script); the script counting every entry is the control
    "fastapi-limiter": _fastapi_limiter(True),
    "fastapi-limiter-all": _fastapi_limiter(False, FASTAPI_LIMITER_COUNT="all"),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--shapes", default="2x2,4x2")
    ap.add_argument("--throttles", default="naive,atomic,drf")
    ap.add_argument("--rate", default="100/hour")
    ap.add_argument("--requests", type=int, default=400)
    args = ap.parse_args(argv)
    rate = parse_rate(args.rate)
    addresses = client_addresses()
    print(
        f"# {args.runs} runs per row, rate {rate.text}, {args.requests} requests, default "
        f"settings ({DEFAULT_BURSTS} bursts per run, more if a window edge could explain "
        "an over-admission)",
        flush=True,
    )
    print(
        f"{'throttle':<13} {'shape':<5} {'harness verdicts':<34} {'failed':>7} "
        f"{'raw caught':>10} {'bursts over: harness':>20} {'raw':>7} "
        f"{'single: harness':>15} {'raw':>5} "
        f"{'harness accepted':>16} {'raw accepted':>13} {'at limit':>9} {'s/run':>6}",
        flush=True,
    )
    started = time.monotonic()
    with open_redis("local") as server:
        for name in args.throttles.split(","):
            throttle = THROTTLES[name]
            for shape in args.shapes.split(","):
                workers, threads = (int(n) for n in shape.split("x"))
                scenario = load_scenarios(
                    [],
                    {
                        "app": throttle.app,
                        "path": throttle.path,
                        "rate": rate.text,
                        **(
                            {"worker_class": throttle.worker_class, "concurrency": threads}
                            if throttle.worker_class
                            else {"threads": threads}
                        ),
                        "workers": [workers],
                        "scope": throttle.scope,
                        "requests": args.requests,
                        "env": throttle.env,
                    },
                )[0]
                claim = scenario.claim(workers)
                env = {
                    **scenario.env,
                    "REDIS_URL": server.url,
                    "THROTTLE_HARNESS_RATE": rate.text,
                    "THROTTLE_HARNESS_KEY_PREFIX": PREFIX,
                }
                spec = FleetSpec(
                    app=throttle.app,
                    workers=workers,
                    threads=threads,
                    pythonpath=(str(APPS),),
                    env=env,
                    connections=2 * args.requests,
                    worker_class=throttle.worker_class,
                )
                verdicts: Counter[str] = Counter()
                raw_caught = single_harness = single_raw = 0
                h_accepted: list[int] = []
                r_accepted: list[int] = []
                at_limit: list[int] = []
                row_started = time.monotonic()
                raw_count = scenario.bursts if throttle.racy else 0
                fresh = (lambda: server.clear(PREFIX)) if throttle.scope == "global" else None
                for n in range(args.runs):
                    server.clear(PREFIX)
                    with start_fleet(spec) as fleet:
                        target = Target(fleet.host, fleet.port, workers, threads, scenario.request)
                        if n % 2 == 0:  # who goes first alternates
                            verdict = judge(send_bursts(fleet, scenario, claim, addresses), claim)
                            counts = raw_bursts(target, args.requests, raw_count, addresses, fresh)
                        else:
                            counts = raw_bursts(target, args.requests, raw_count, addresses, fresh)
                            if fresh:
                                fresh()
                            verdict = judge(send_bursts(fleet, scenario, claim, addresses), claim)
                    verdicts[f"{verdict.kind}:{verdict.basis}"] += 1
                    h_accepted += [b.tally.accepted for b in verdict.bursts]
                    at_limit.append(verdict.overlap.at_crossing or 0)
                    r_accepted += counts
                    raw_caught += any(c > claim.limit for c in counts)
                    single_harness += verdict.bursts[0].tally.accepted > claim.limit
                    single_raw += bool(counts) and counts[0] > claim.limit
                failed = sum(v for k, v in verdicts.items() if k.startswith("fail"))
                raw = f"{raw_caught:>6}/{args.runs:<3}" if throttle.racy else f"{'-':>10}"
                single_r = f"{single_raw:>5}" if throttle.racy else f"{'-':>5}"
                print(
                    f"{name:<13} {shape:<5} {_verdicts(verdicts):<34} "
                    f"{failed:>3}/{args.runs:<3} {raw} "
                    f"{_over(h_accepted, claim.limit):>20} {_over(r_accepted, claim.limit):>7} "
                    f"{single_harness:>15} {single_r} "
                    f"{_mmm(h_accepted):>16} {_mmm(r_accepted):>13} "
                    f"{statistics.median(at_limit) if at_limit else 0:>9g} "
                    f"{(time.monotonic() - row_started) / args.runs:>6.1f}",
                    flush=True,
                )
    print(f"total {time.monotonic() - started:.0f}s")
    return 0


def raw_bursts(
    target: Target,
    count: int,
    bursts: int,
    addresses: Iterator[str],
    fresh: Callable[[], object] | None = None,
) -> list[int]:
    """The accepted counts of ``bursts`` raw bursts, each from a fresh address (and, for a global
    budget, on a fresh budget: ``fresh`` clears it before each)."""
    path = target.request.path
    counts = []
    for _ in range(bursts):
        if fresh:
            fresh()
        counts.append(sum(r.status == 200 for r in run_raw(target, count, next(addresses), path)))
    return counts


def _verdicts(counts: Counter[str]) -> str:
    """Verdicts and the rule that decided each, most frequent first: ``pass:held=19 ...``."""
    return " ".join(f"{k}={v}" for k, v in counts.most_common())


def _over(accepted: list[int], limit: int) -> str:
    return f"{sum(a > limit for a in accepted)}/{len(accepted)}"


def _mmm(values: list[int]) -> str:
    if not values:
        return "-"
    return f"{min(values)}/{statistics.median(values):g}/{max(values)}"


if __name__ == "__main__":
    sys.exit(main())
