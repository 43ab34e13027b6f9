"""Detection power of burst engines: how many requests a racy throttle lets through.

A script, not a pytest test. For one configuration (by default DRF's ``AnonRateThrottle``
counting in django-redis, 2 gunicorn workers x 2 threads, 100/hour, 400 requests) it runs each
engine ``--bursts`` times; every burst gets a fresh Redis state (``server.clear``) and a fresh
gunicorn fleet, and the engine order rotates per repetition so that no engine is always first.
A higher accepted (200) count for a racy throttle is more detection power; an exact throttle
(``--throttle atomic``) must stay at the limit whatever the engine.

Engines (``--engines``, comma separated; default ``harness,raw,httpx``):

- ``harness``: :func:`harness.traffic.burst.burst`, the engine the harness uses (one burst of
  it; a run of the harness sends several, see ``detection.py``).
- ``raw``: the reference client: blocking sockets, all opened first, then a complete
  ``Connection: close`` GET sent on each, then each read in index order and closed.

Every burst comes from a fresh loopback client address.
- ``httpx``: an ``httpx.AsyncClient`` with a 64-connection pool, ``asyncio.gather`` of all GETs.

Usage::

    PYTHONPATH=. python tests/benchmarks/burst_power.py [--workers 4 --threads 2] \\
        [--requests 400 --bursts 5 --throttle drf|atomic --cache django-redis|redis|locmem] \\
        [--engines harness,raw,httpx --timeout 600 -v]

Numbers are only comparable within one run: the machine is a noisy, shared 2-core box, and the
same configuration can move by tens of accepted requests from one run to the next.

What the exploration behind the current engine found (2x2, DRF + django-redis, 400 requests):
last-byte sync alone (all requests but their final byte, then the final bytes) did not help;
holding answered sockets open did (gunicorn 27 then lingers instead of running its close routine
between requests); mapping keep-alive connections to workers through the probe path and releasing
waves of ``threads`` requests per worker helped most (medians over 10 bursts: old engine 198,
raw 230, mapped waves + hold 252, the last one still measured with a warm-up).
Warming the workers up from another client address was rejected: it spends the budget of any
throttle that is not keyed on the client address. Later (2026-11-27), stepping to the limit
(everything below the limit's last place at once, then every thread's request together) caught
a read-compare-increment race that waves of ``threads`` per worker missed whenever the wave
size divided the limit, and raised DRF's over-admission too; see ``detection.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import signal
import socket
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import NamedTuple

import h11
import httpx

from harness.campaign.bursts import client_addresses
from harness.fleet import FleetSpec, start_fleet
from harness.fleet.probe_protocol import WORKER_HEADER
from harness.http.request_template import RequestTemplate
from harness.redis.providers import open_redis
from harness.traffic import Client, Target, burst
from harness.verdict.rates import parse_rate

APP = "harness.demo.wsgi:application"
PATH = "/api/ping/"
KEY_PREFIX = "throttle-harness-bench:"
CONNECT_TIMEOUT_S = 10.0
COLLECT_TIMEOUT_S = 30.0
_WORKER = WORKER_HEADER.lower().encode()
LIMIT = [100]  # the rate's limit, which the harness's engine steps towards


class Result(NamedTuple):
    """One request as any engine saw it."""

    sent_at: float
    received_at: float | None
    status: int | None
    worker: str | None
    error: str | None


def run_harness(target: Target, count: int, identity: str) -> list[Result]:
    records = burst(
        target,
        count,
        clients=[Client(identity, identity)],
        limit=LIMIT[0],
        tag="bench",
        deadline=time.monotonic() + COLLECT_TIMEOUT_S,
    )
    return [Result(r.sent_at, r.received_at, r.status, r.worker, r.error) for r in records]


def run_raw(target: Target, count: int, identity: str, path: str = PATH) -> list[Result]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if count + 64 > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(count + 64, hard), hard))
    host, port = target.host, target.port
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            socks.append(
                socket.create_connection(
                    (host, port), timeout=CONNECT_TIMEOUT_S, source_address=(identity, 0)
                )
            )
        conns = [h11.Connection(our_role=h11.CLIENT) for _ in socks]
        sent: list[float] = []
        for sock, conn in zip(socks, conns, strict=True):
            headers = [("Host", f"{host}:{port}"), ("Connection", "close")]
            request = conn.send(h11.Request(method="GET", target=path, headers=headers)) or b""
            sent.append(time.time())
            sock.sendall(request + (conn.send(h11.EndOfMessage()) or b""))
        results = []
        for sock, conn, sent_at in zip(socks, conns, sent, strict=True):
            # To the end of a complete response (or EOF), not strictly to EOF: gunicorn 27 sends
            # its FIN from the worker's main thread, which lingers (up to 2 s) on each closed
            # connection until the client closes it; waiting in index order for a FIN queued
            # behind a connection not reached yet stalls 2 s each time (65-76 s per burst).
            status, worker, error = read_response(sock, conn)
            results.append(Result(sent_at, time.time(), status, worker, error))
            sock.close()
        return results
    finally:
        for sock in socks:
            sock.close()


def read_response(
    sock: socket.socket, conn: h11.Connection
) -> tuple[int | None, str | None, str | None]:
    """(status, worker, error) of one response, read with h11 up to its end."""
    status = worker = None
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(sock.recv(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
                worker = next((v.decode() for k, v in event.headers if k == _WORKER), None)
            elif isinstance(event, h11.EndOfMessage):
                return status, worker, None
            elif isinstance(event, h11.ConnectionClosed):
                return None, None, "connection closed before a response"
    except (OSError, h11.RemoteProtocolError) as exc:
        return None, None, f"{type(exc).__name__}: {exc}"


def run_httpx(target: Target, count: int, identity: str) -> list[Result]:
    async def run() -> list[Result]:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(
            base_url=f"http://{target.host}:{target.port}",
            limits=limits,
            timeout=httpx.Timeout(COLLECT_TIMEOUT_S),
            trust_env=False,
            transport=httpx.AsyncHTTPTransport(local_address=identity),
        ) as client:

            async def one() -> Result:
                sent_at = time.time()
                try:
                    r = await client.get(PATH)
                except httpx.HTTPError as exc:
                    return Result(sent_at, None, None, None, f"{type(exc).__name__}: {exc}")
                worker = r.headers.get(WORKER_HEADER)
                return Result(sent_at, time.time(), r.status_code, worker, None)

            return list(await asyncio.gather(*(one() for _ in range(count))))

    return asyncio.run(asyncio.wait_for(run(), COLLECT_TIMEOUT_S + 10))


ENGINES: dict[str, Callable[[Target, int, str], list[Result]]] = {
    "harness": run_harness,
    "raw": run_raw,
    "httpx": run_httpx,
}


class Watchdog(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise Watchdog("the run took longer than --timeout")


def mmm(values: list[float], fmt: str) -> str:
    """min/median/max of ``values``."""
    if not values:
        return "-"
    return "/".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def duration(run: list[Result]) -> float:
    """Seconds from the first send to the last answer of one burst."""
    first = min((r.sent_at for r in run if r.sent_at), default=0.0)
    return max((r.received_at for r in run if r.received_at), default=first) - first


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--bursts", type=int, default=5, help="repetitions per engine")
    ap.add_argument("--throttle", choices=["drf", "atomic"], default="drf")
    ap.add_argument("--cache", choices=["django-redis", "redis", "locmem"], default="django-redis")
    ap.add_argument("--rate", default="100/hour")
    ap.add_argument("--engines", default=",".join(ENGINES), help="comma separated")
    ap.add_argument("--timeout", type=int, default=600, help="watchdog for the run, seconds")
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per burst")
    args = ap.parse_args(argv)
    names = [e for e in args.engines.split(",") if e]
    if unknown := [e for e in names if e not in ENGINES]:
        ap.error(f"unknown engine(s) {', '.join(unknown)}; choose from {', '.join(ENGINES)}")
    limit = parse_rate(args.rate).limit
    LIMIT[0] = limit
    addresses = client_addresses()

    print(
        f"# {args.throttle} + {args.cache}, {args.workers}x{args.threads}, rate {args.rate}, "
        f"{args.requests} requests, {args.bursts} bursts, engines {', '.join(names)}",
        flush=True,
    )
    results: dict[str, list[list[Result]]] = {name: [] for name in names}
    started = time.monotonic()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(args.timeout)
    try:
        with open_redis("local") as server:
            env = {
                "REDIS_URL": server.url,
                "DEMO_THROTTLE": args.throttle,
                "DEMO_CACHE": args.cache,
                "THROTTLE_HARNESS_RATE": args.rate,
                "THROTTLE_HARNESS_KEY_PREFIX": KEY_PREFIX,
            }
            spec = FleetSpec(app=APP, workers=args.workers, threads=args.threads, env=env)
            for rep in range(args.bursts):
                shift = rep % len(names)
                for name in names[shift:] + names[:shift]:
                    server.clear(KEY_PREFIX)
                    with start_fleet(spec) as fleet:
                        target = Target(
                            fleet.host,
                            fleet.port,
                            args.workers,
                            args.threads,
                            RequestTemplate(path=PATH),
                        )
                        run = ENGINES[name](target, args.requests, next(addresses))
                    results[name].append(run)
                    if args.verbose:
                        statuses = Counter(r.status for r in run)
                        print(f"  rep {rep} {name:<8} {dict(statuses)}", flush=True)
    except Watchdog as exc:
        print(f"ABORTED: {exc}", file=sys.stderr)
    finally:
        signal.alarm(0)

    print(f"\nlimit {limit}; accepted, duration and worker share are min/median/max over bursts")
    header = (
        f"{'engine':<8} {'n':>2} {'accepted':>14} {'over':>6} {'=limit':>6} {'duration s':>16} "
        f"{'max worker share':>17} {'errors':>6}"
    )
    print(header)
    print("-" * len(header))
    medians: dict[str, float] = {}
    for name in names:
        runs = results[name]
        accepted = [sum(r.status == 200 for r in run) for run in runs]
        durations = [duration(run) for run in runs]
        shares = [max(Counter(r.worker for r in run).values()) / len(run) for run in runs]
        errors = sum(r.error is not None for run in runs for r in run)
        if accepted:
            medians[name] = statistics.median(accepted)
        over = f"{medians[name] / limit:.2f}x" if accepted else "-"
        exact = f"{sum(a == limit for a in accepted)}/{len(accepted)}"
        print(
            f"{name:<8} {len(runs):>2} {mmm(accepted, '{:.0f}'):>14} {over:>6} {exact:>6} "
            f"{mmm(durations, '{:.2f}'):>16} {mmm(shares, '{:.2f}'):>17} {errors:>6}"
        )
    if medians.get("raw") and "harness" in medians:
        ratio = medians["harness"] / medians["raw"]
        print(
            f"\nharness/raw median accepted: {medians['harness']:g}/{medians['raw']:g} "
            f"= {ratio:.2f}"
        )
    print(f"total {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
