"""Scale of many identities: one run of 1,000 clients at 5/minute, 20 requests each (20,000
requests), on 4 workers x 2 threads, against the reference atomic throttle; prints the verdict,
the counts and the wall time. The goal on a 2-core machine: the right verdict (pass) in under
30 s.

A script, not a pytest test::

    PYTHONPATH=. python tests/benchmarks/identities.py [--identities 1000] [--requests 20] \\
        [--rate 5/minute] [--workers 4] [--threads 2] [--redis local]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--identities", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--rate", default="5/minute")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--redis", default="local")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        started = time.monotonic()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "harness",
                "run",
                str(ROOT / "scenarios" / "atomic-lua.toml"),
                "--workers",
                str(args.workers),
                "--threads",
                str(args.threads),
                "--identities",
                str(args.identities),
                "--requests",
                str(args.requests),
                "--rate",
                args.rate,
                "--redis",
                args.redis,
                "--json",
                str(out),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.monotonic() - started
        if not out.exists():
            print(proc.stderr, file=sys.stderr)
            return 1
        (run,) = json.loads(out.read_text())["runs"]
    clients = run["bursts"]
    admitted = [c["accepted"] for c in clients]
    print(
        f"{args.identities} identities x {args.requests} requests at {args.rate}, "
        f"{args.workers}x{args.threads}: verdict {run['verdict']} (exit {proc.returncode})"
    )
    print(
        f"client bursts {len(clients)}, sent {run['sent']}, admitted {run['accepted']} "
        f"(per client {min(admitted)}-{max(admitted)}), errors {run['errors']}, "
        f"retried {run['retried']}"
    )
    print(f"wall {wall:.1f}s (fleet ready {run['ready_s']:.1f}s, traffic {run['traffic_s']:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
