"""The ``throttle-harness`` command line's parser (:mod:`harness.cli` runs it): the ``run`` and
``gate`` subcommands and their flags, in groups: the scenario's (app, request, limit, Redis and
faults), the reports', the gate's."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import NoReturn

from harness import __version__
from harness.errors import EXIT_USAGE
from harness.faults import OUTAGE_EXPECTATIONS
from harness.fleet.worker_classes import DEFAULT_CONCURRENCY, WORKER_CLASSES
from harness.gate.budgets import METRICS
from harness.gate.release import DEFAULT_DURATION_S, WARMUP_S
from harness.redis.providers import DEFAULT_SPEC, SPEC_HELP
from harness.scenario import EXPECTATIONS, TRAFFIC_SHAPES, WINDOWS
from harness.verdict.global_budget import SCOPES

REQUIRE_DOCKER_ENV = "THROTTLE_HARNESS_REQUIRE_DOCKER"


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit with the usage code."""

    def error(self, message: str) -> NoReturn:  # one line, not argparse's usage dump
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def build_parser(description: str) -> argparse.ArgumentParser:
    """The ``throttle-harness`` parser, its ``run`` and ``gate`` subcommands and their flags."""
    parser = _Parser(prog="throttle-harness", description=description)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser(
        "run",
        help="start gunicorn fleets against a real Redis, fire traffic, judge the rate limit",
        description="Scenario files give the matrix; flags override every file's values "
        "(or describe one scenario when no file is given).",
    )
    _add_scenario_flags(run)
    run.add_argument("--workers", metavar="N[,N...]", help="gunicorn worker counts, e.g. 1,2,4")
    run.add_argument("--threads", type=int, metavar="T", help="threads per worker (gthread if > 1)")
    run.add_argument(
        "--concurrency",
        type=int,
        metavar="C",
        help="with an async worker class: requests in flight in one worker, what --threads is "
        f"to gthread (default {DEFAULT_CONCURRENCY})",
    )
    run.add_argument(
        "--instances",
        type=int,
        metavar="M",
        help="gunicorn servers per run, each of workers x threads, on the same "
        "Redis, the traffic spread over them in turn as a round-robin load "
        "balancer would (default: 1)",
    )
    _add_report_flags(run)
    gate = sub.add_parser(
        "gate",
        help="release gate: before/after a worker-count change, the throttle verdict and a "
        "load test of each shape, side by side, against budgets",
        description="For each shape (--from, then --to): the throttle verdict as run gives "
        "it, then a load phase on a fresh fleet. Exit 1 on a throttle verdict not as expected "
        "or a budget breach.",
    )
    _add_scenario_flags(gate)
    add_gate_flags(gate)
    return parser


def _add_scenario_flags(run: argparse.ArgumentParser) -> None:
    """The flags that describe a scenario (and override every scenario file's values)."""
    _add_app_flags(run)
    _add_request_flags(run)
    _add_limit_flags(run)
    _add_redis_and_fault_flags(run)


def _add_app_flags(run: argparse.ArgumentParser) -> None:
    """The scenario files, and the app to serve: its callable, import path and environment."""
    run.add_argument("scenarios", nargs="*", type=Path, metavar="SCENARIO.toml")
    run.add_argument(
        "--app",
        help="the WSGI or ASGI callable to serve, MODULE:CALLABLE, or a factory "
        "MODULE:FUNCTION() (with --image: when its command names none, or another)",
    )
    run.add_argument(
        "--worker-class",
        choices=WORKER_CLASSES,
        help="gunicorn's worker class: sync, gthread (WSGI), asgi (gunicorn's own, >= 24) or "
        "uvicorn (uvicorn-worker), ASGI (default: gthread if --threads > 1, else sync; the "
        "gate's shapes read WORKERSxCONCURRENCY for an async class)",
    )
    run.add_argument(
        "--image",
        help="run gunicorn in containers of this image (yours, as it ships), with its own "
        "gunicorn command reshaped by the harness; Docker needed",
    )
    run.add_argument(
        "--compose",
        metavar="FILE",
        help="bring up your compose file (with --service): the service runs gunicorn, its "
        "dependencies come up as they are; Docker and a compose tool needed",
    )
    run.add_argument(
        "--service",
        metavar="NAME",
        help="with --compose: the service whose gunicorn the harness reshapes and scales",
    )
    run.add_argument(
        "--command",
        dest="image_command",  # "command" is the subcommand's
        metavar="'CMD ...'",
        help="with --image: the gunicorn command to run in it, when the image's own "
        "ENTRYPOINT/CMD is not it (shell-quoted)",
    )
    run.add_argument(
        "--pythonpath",
        action="append",
        metavar="DIR",
        help="a directory to import the app from (repeatable)",
    )
    run.add_argument(
        "--env",
        action="append",
        metavar="KEY=VALUE",
        help="an environment variable for the app (repeatable)",
    )
    run.add_argument(
        "--gunicorn-arg",
        action="append",
        metavar="ARG",
        help="arguments for gunicorn, as your deployment passes them (repeatable; "
        "shell-quoted, so write --gunicorn-arg='--max-requests 1000 --preload'); "
        "the binding, worker shape and daemonizing are the harness's",
    )


def _add_request_flags(run: argparse.ArgumentParser) -> None:
    """The request the traffic sends, its statuses and its clients, and the keys to report."""
    run.add_argument("--path", help="the throttled URL path, such as /api/items/")
    run.add_argument("--method", help="GET (default), POST, PUT, PATCH or DELETE")
    run.add_argument(
        "--header",
        action="append",
        dest="headers",
        metavar="'NAME: VALUE'",
        help="a request header (repeatable); may hold {identity}",
    )
    run.add_argument(
        "--data",
        metavar="TEXT|@FILE",
        help="a request body (a form unless a Content-Type header says otherwise); "
        "may hold {identity}",
    )
    run.add_argument(
        "--accept-status",
        metavar="S[,S...]",
        help="statuses of admitted requests (default: any 2xx)",
    )
    run.add_argument(
        "--reject-status",
        metavar="S[,S...]",
        help="statuses of requests the throttle refused (default: 429)",
    )
    run.add_argument(
        "--identities",
        type=int,
        metavar="N",
        help="clients per burst, each with its own address and {identity} value "
        "(default: 1); --requests is per client",
    )
    run.add_argument(
        "--identity-file",
        metavar="FILE",
        help="{identity} values, one a line, used in order (default: client-TAG-1, "
        "client-TAG-2, ... with a random TAG)",
    )
    run.add_argument(
        "--bypass-check",
        action="store_true",
        default=None,
        help="past the limit, try client-address headers a misconfigured app may "
        "trust (X-Forwarded-For, X-Real-IP, Forwarded, True-Client-IP, "
        "CF-Connecting-IP)",
    )
    run.add_argument(
        "--warm-up",
        action="store_true",
        default=None,
        help="before the first burst, every worker thread runs the run's request once (from an "
        "address no client gets): a race at a window's start shows in the first burst too; "
        "an app that counts every request (a global limit) counts these",
    )
    run.add_argument(
        "--redis-keys",
        metavar="PATTERN",
        help="the app's keys to report after each run (a SCAN pattern such as "
        "'throttle*'; default: every key of a Redis the harness started, else "
        "those under the run's key prefix); read only",
    )


def _add_limit_flags(run: argparse.ArgumentParser) -> None:
    """The limit to prove, the traffic that tests it and what it should show."""
    run.add_argument("--rate", help="the limit to prove, in DRF syntax: 100/hour, 5/s, 10/min")
    run.add_argument(
        "--window",
        choices=WINDOWS,
        metavar="|".join(WINDOWS),
        help="the throttle's window algorithm; any (default) allows whatever a "
        "correct sliding, fixed (unknown phase), fixed-clock, token-bucket or "
        "sliding-counter throttle could admit",
    )
    run.add_argument(
        "--scope",
        choices=SCOPES,
        metavar="|".join(SCOPES),
        help="whose budget the limit is: each client's (default), or one global budget "
        "for every client together (each burst's clients are judged as one)",
    )
    run.add_argument(
        "--requests", type=int, metavar="N", help="requests per run (default: 4x the limit)"
    )
    run.add_argument(
        "--traffic",
        choices=TRAFFIC_SHAPES,
        help="burst (default), sequential, or sustained (each client at --pace for --periods)",
    )
    run.add_argument(
        "--pace",
        metavar="Nx",
        help="sustained traffic: each client sends at this multiple of the rate (default 2x; "
        "0.5x: a below-rate control)",
    )
    run.add_argument(
        "--periods",
        type=int,
        metavar="N",
        help="sustained traffic: for this many periods (default 3)",
    )
    run.add_argument("--expect", choices=EXPECTATIONS, help="what every run should show")
    run.add_argument(
        "--min-workers-seen",
        type=int,
        metavar="N",
        help="workers that must serve a run for a pass (default: all)",
    )
    run.add_argument(
        "--bursts",
        type=int,
        metavar="K",
        help="bursts per run, each from a fresh client address (default: 3; more "
        "when an over-admission could be a window edge, or a burst's requests did "
        "not overlap in the app at the limit)",
    )
    run.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="a run's traffic ends by then, whatever the server does (default: 120)",
    )
    run.add_argument("--port", type=int, help="bind gunicorn to this port (default: a free one)")


def _add_redis_and_fault_flags(run: argparse.ArgumentParser) -> None:
    """The Redis to run on and the faults to inject."""
    run.add_argument(
        "--redis",
        default=os.environ.get("THROTTLE_HARNESS_REDIS", DEFAULT_SPEC),
        metavar="SPEC",
        help=SPEC_HELP,
    )
    run.add_argument(
        "--require-docker",
        action="store_true",
        help=f"fail (exit 3) instead of falling back when no Docker engine "
        f"answers; also {REQUIRE_DOCKER_ENV}=1",
    )
    run.add_argument(
        "--fault",
        action="append",
        dest="faults",
        metavar="KIND",
        help="a fault to inject (repeatable): worker-kill, redis-restart, "
        "redis-outage, redis-latency=MS; those on Redis need a Redis the harness "
        "starts",
    )
    run.add_argument(
        "--expect-outage",
        choices=OUTAGE_EXPECTATIONS,
        dest="expect_outage",
        help="with --fault redis-outage: what the app must do while Redis is "
        "unreachable (open: admit, closed: refuse); anything else is a failure",
    )


def _add_report_flags(run: argparse.ArgumentParser) -> None:
    """Where to write the reports of ``run``."""
    run.add_argument("--json", type=Path, metavar="FILE", help="write the JSON report here")
    run.add_argument(
        "--markdown",
        type=Path,
        metavar="FILE",
        help="write a Markdown summary here (a CI job summary, a pull-request comment)",
    )
    run.add_argument(
        "--junit",
        type=Path,
        metavar="FILE",
        help="write a JUnit XML report here: one test case per scenario and "
        "worker count, for CI test dashboards",
    )
    run.add_argument(
        "--html",
        type=Path,
        metavar="FILE",
        help="write a self-contained HTML report here: the verdicts and, per run, "
        "each worker's requests over time against the limit",
    )


def add_gate_flags(gate: argparse.ArgumentParser) -> None:
    """The flags of ``gate``: the two shapes, the load phase, the budgets and the reports."""
    gate.add_argument(
        "--from",
        dest="from_shape",
        required=True,
        metavar="WxT[@M]",
        help="the shape in production now: WORKERSxTHREADS, @M for M instances",
    )
    gate.add_argument(
        "--to", dest="to_shape", required=True, metavar="WxT[@M]", help="the shape to move to"
    )
    gate.add_argument(
        "--duration",
        type=float,
        default=DEFAULT_DURATION_S,
        metavar="SECONDS",
        help=f"each shape's load phase, after a {WARMUP_S:g} s warm-up "
        f"(default: {DEFAULT_DURATION_S:g})",
    )
    gate.add_argument(
        "--connections",
        type=int,
        metavar="N",
        help="concurrent keep-alive connections of the load (default: 4 per "
        "thread of the larger shape, at least 8; the same for every shape)",
    )
    gate.add_argument(
        "--arrival-rate",
        type=float,
        metavar="REQ/S",
        dest="arrival_rate",
        help="send at this fixed rate instead of as fast as answers come; "
        "latency then runs from each request's intended time (no coordinated "
        "omission)",
    )
    gate.add_argument(
        "--load-path",
        metavar="PATH",
        dest="load_path",
        help="the endpoint to load (default: the scenario's path)",
    )
    gate.add_argument(
        "--budget",
        action="append",
        default=[],
        metavar="METRIC=VALUE",
        help="how much worse the new shape may be (repeatable): p95=+10%%, "
        "rss=+200MB, errors=0, throughput=-10%%, cpu=80; metrics: " + ", ".join(METRICS),
    )
    gate.add_argument(
        "--json",
        type=Path,
        metavar="FILE",
        help="write the gate's JSON report here ({ok, shapes: [{shape, verdict, "
        "throughput_rps, latency_ms, error_rate, cpu_percent, rss_mb, "
        "redis_clients, redis_ops_per_s}], budgets})",
    )
    gate.add_argument(
        "--markdown",
        type=Path,
        metavar="FILE",
        help="write the side-by-side table as Markdown here",
    )
