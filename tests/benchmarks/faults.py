"""What faults do to detection and to correct throttles, as numbers: a script, not a test.

For each added app↔Redis latency (``--latencies`` in ms; 0 = no proxy at all) it runs the demo's
stock DRF throttle and the atomic Lua throttle at each shape (``--shapes``) ``--runs`` times,
exactly as ``throttle-harness run --fault redis-latency=MS`` does, and prints, per cell: the
verdicts, the first burst's admissions (400 requests, limit 100/hour) and the median. Then the
other faults once each on both throttles (worker-kill, redis-restart, redis-outage), with their
outcomes. A wider read-check-write window (the latency) should make DRF over-admit more, and
must never make the atomic throttle fail.

Usage::

    PYTHONPATH=. python tests/benchmarks/faults.py [--runs 3] [--shapes 2x2] \\
        [--latencies 0,1,5]

Numbers are comparable only within one run of the script: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = {"drf": "scenarios/drf-django-redis.toml", "atomic": "scenarios/atomic-lua.toml"}


def run(scenario: str, shape: str, *extra: str) -> dict[str, Any]:
    workers, threads = shape.split("x")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp, "r.json")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "harness",
                "run",
                scenario,
                "--workers",
                workers,
                "--threads",
                threads,
                "--json",
                str(out),
                *extra,
            ],
            cwd=ROOT,
            capture_output=True,
            check=False,
        )
        (result,) = json.loads(out.read_text())["runs"]
    return dict(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--shapes", default="2x2")
    parser.add_argument("--latencies", default="0,1,5")
    args = parser.parse_args()
    print("latency  throttle  shape  verdicts             first burst admitted      median")
    for ms in [float(x) for x in args.latencies.split(",")]:
        extra = ["--fault", f"redis-latency={ms:g}"] if ms else []
        for name, scenario in SCENARIOS.items():
            for shape in args.shapes.split(","):
                results = [run(scenario, shape, *extra) for _ in range(args.runs)]
                verdicts = " ".join(r["verdict"] for r in results)
                first = [r["bursts"][0]["accepted"] for r in results]
                print(
                    f"{ms:>5g} ms  {name:<8}  {shape:<5}  {verdicts:<19}  "
                    f"{','.join(map(str, first)):<24}  {statistics.median(first):g}"
                )
    print()
    for fault in ("worker-kill", "redis-restart", "redis-outage"):
        for name, scenario in SCENARIOS.items():
            r = run(scenario, "2x2", "--fault", fault)
            print(
                f"{fault:<14} {name:<7} {r['verdict']:<5} {r['fault']['outcome']:<12} "
                f"{r['fault']['summary']}"
            )


if __name__ == "__main__":
    main()
