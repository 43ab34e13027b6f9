"""The ``throttle-harness`` command line (``run`` and ``gate``). Exit codes are a contract CI
scripts rely on:

0 every verdict as expected (gate: and every budget kept) · 1 a throttle violation or another
unexpected verdict (gate: or a budget breached) ·
2 usage or configuration error · 3 infrastructure error (Redis or gunicorn would not start, the
JSON report could not be written) · 130 interrupted.
"""

from __future__ import annotations

import argparse
import faulthandler
import math
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn, TypeVar

from rich.console import Console

from harness import __version__
from harness.errors import (
    EXIT_INFRASTRUCTURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    EXIT_VIOLATION,
    HarnessError,
    Interrupted,
    UsageError,
)
from harness.faults import OUTAGE_EXPECTATIONS
from harness.gate.budgets import METRICS, parse_budget
from harness.gate.release import (
    DEFAULT_DURATION_S,
    WARMUP_S,
    GateReport,
    LoadOptions,
    parse_shape,
    run_gate,
)
from harness.redaction import MASKS, redact_secrets, scrub, scrubbed
from harness.redis.providers import DEFAULT_SPEC, SPEC_HELP, open_redis
from harness.report.console import ConsoleObserver, print_table
from harness.report.gate_report import print_gate, write_gate_json, write_gate_markdown
from harness.report.html import write_html
from harness.report.json_report import write_json
from harness.report.junit import write_junit
from harness.report.markdown import write_markdown
from harness.runner import MatrixReport, run_matrix
from harness.scenario import EXPECTATIONS, TRAFFIC_SHAPES, WINDOWS, checked_path, load_scenarios
from harness.verdict.global_budget import SCOPES

Writer = Callable[[MatrixReport, int, Path], None]
W = TypeVar("W")
REPORTS: dict[str, Writer] = {
    "--json": write_json,
    "--markdown": write_markdown,
    "--junit": write_junit,
    "--html": write_html,
}
GateWriter = Callable[[GateReport, int, Path], None]
GATE_REPORTS: dict[str, GateWriter] = {"--json": write_gate_json, "--markdown": write_gate_markdown}
REQUIRE_DOCKER_ENV = "THROTTLE_HARNESS_REQUIRE_DOCKER"


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not argparse's usage dump
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="throttle-harness", description=__doc__.split("\n\n")[0])
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
    run.add_argument("scenarios", nargs="*", type=Path, metavar="SCENARIO.toml")
    run.add_argument("--app", help="the WSGI callable to serve, MODULE:CALLABLE")
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


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The scenario keys given on the command line, in scenario-file form."""
    found: dict[str, Any] = {}
    for key in (
        "app",
        "path",
        "rate",
        "window",
        "scope",
        "threads",
        "requests",
        "traffic",
        "pace",
        "periods",
        "expect",
        "port",
        "bursts",
        "timeout",
        "method",
        "headers",
        "data",
        "accept_status",
        "reject_status",
        "bypass_check",
        "warm_up",
        "redis_keys",
        "identities",
        "identity_file",
        "instances",
        "faults",
        "expect_outage",
    ):
        if getattr(args, key, None) is not None:
            found[key] = getattr(args, key)
    if args.min_workers_seen is not None:
        found["min_workers_seen"] = args.min_workers_seen
    if getattr(args, "workers", None) is not None:
        try:
            found["workers"] = [int(w) for w in args.workers.split(",")]
        except ValueError:
            raise UsageError(
                f"--workers {args.workers!r}: expected numbers such as 1,2,4"
            ) from None
    if args.pythonpath:  # absolute, resolved with the scenario's checks (a NUL is refused there)
        found["pythonpath"] = [os.path.abspath(p) for p in args.pythonpath]
    env = {}
    for item in args.env or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--env {item!r}: expected KEY=VALUE")
        env[key] = value
    found["env"] = env
    return found


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _check_report_path(flag: str, path: Path) -> None:
    """Refuse a report path (``--json``, ``--html``, …) the report could not be written to,
    before anything starts."""
    if "\0" in str(path):
        raise UsageError(f"{flag} {str(path)!r}: a file name cannot contain a NUL character")
    try:
        target = path.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise UsageError(f"{flag} {path}: {exc}") from None
    if target.is_dir():
        raise UsageError(
            f"{flag} {path}: is a directory; name a file in it, such as {path}/throttle-report"
        )
    if not target.parent.is_dir():
        raise UsageError(f"{flag} {path}: directory {path.parent} does not exist")
    writable = (
        os.access(target, os.W_OK)
        if target.exists()
        else os.access(target.parent, os.W_OK | os.X_OK)
    )
    if not writable:
        raise UsageError(f"{flag} {path}: not writable")


def _print_error(err: Console, message: str, detail: str = "") -> None:
    err.print(f"throttle-harness: error: {message}", markup=False, soft_wrap=True)
    if detail:
        err.print(
            "\n".join("  | " + ln for ln in detail.splitlines()),
            markup=False,
            style="dim",
            soft_wrap=True,
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    MASKS.url(args.redis)
    # Everything shown goes through the scrub of harness.redaction: the consoles' one exit.
    stdout, stderr = scrubbed(sys.stdout), scrubbed(sys.stderr)
    out = Console(file=stdout, highlight=False, emoji=False)
    err = Console(file=stderr, highlight=False, emoji=False)
    if not out.is_terminal:  # CI logs: wide enough for the results table
        out = Console(file=stdout, highlight=False, emoji=False, width=max(out.width, 132))
    signal.signal(signal.SIGTERM, _raise_interrupt)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # kill -USR1: where is it stuck?
    if args.command == "gate":
        return _gate(args, out, err)
    return _run(args, out, err)


def _writers(args: argparse.Namespace, reports: Mapping[str, W]) -> dict[Path, tuple[str, W]]:
    """The report files asked for, each checked before anything starts."""
    writers: dict[Path, tuple[str, W]] = {}
    for flag, write in reports.items():
        path = getattr(args, flag.removeprefix("--"))
        if path is not None:
            _check_report_path(flag, path)
            if path.resolve() in {p.resolve() for p in writers}:
                raise UsageError(f"{flag} {path}: another report is written to that file")
            writers[path] = (flag.removeprefix("--").upper(), write)
    return writers


def _failed(exc: HarnessError, err: Console, report: MatrixReport, spec: str) -> int:
    """Show ``exc`` as one line (and its detail) and keep it in ``report``; its exit code."""
    # A last guard for Redis passwords (the --redis URL's, or the one the harness made up,
    # however short) and every other secret, wherever a message or a log tail (the app's own,
    # in gunicorn's) may have picked one up.
    for url in (spec, report.redis.url if report.redis else ""):
        exc.message = redact_secrets(exc.message, url)
        exc.detail = redact_secrets(exc.detail, url)
    exc.message, exc.detail = scrub(exc.message), scrub(exc.detail)
    exc.args = (exc.message,)
    report.error = exc
    _print_error(err, exc.message, exc.detail)
    return exc.exit_code


def _interrupted(err: Console, report: MatrixReport) -> int:
    report.error = Interrupted("interrupted; everything it started has been stopped")
    err.print(f"throttle-harness: {report.error.message}")
    return EXIT_INTERRUPTED


def _write_reports(
    writers: dict[Path, tuple[str, Callable[[Any, int, Path], None]]],
    report: object,
    code: int,
    err: Console,
) -> int:
    for path, (kind, write) in writers.items():
        try:
            write(report, code, path)
        except OSError as exc:
            _print_error(err, f"cannot write the {kind} report to {path}: {exc.strerror or exc}")
            if code == EXIT_OK:  # a failure to report is a failure; a worse code stays
                code = EXIT_INFRASTRUCTURE
    return code


def _run(args: argparse.Namespace, out: Console, err: Console) -> int:
    report = MatrixReport()
    writers: dict[Path, tuple[str, Writer]] = {}
    try:
        writers = _writers(args, REPORTS)
        scenarios = load_scenarios(args.scenarios, _overrides(args))
        require_docker = args.require_docker or _truthy(REQUIRE_DOCKER_ENV)
        with ConsoleObserver(out) as observer, open_redis(args.redis, require_docker) as redis:
            run_matrix(scenarios, redis, observer, report)
        code = EXIT_OK if report.all_as_expected else EXIT_VIOLATION
    except HarnessError as exc:
        code = _failed(exc, err, report, args.redis)
    except KeyboardInterrupt:
        code = _interrupted(err, report)
    for note in report.notes:
        out.print(f"note: {note}", markup=False, soft_wrap=True)
    if report.runs:
        print_table(out, report)
        unexpected = sum(not r.as_expected for r in report.runs)
        out.print(
            f"{len(report.runs)} runs, "
            + ("every verdict as expected" if not unexpected else f"{unexpected} not as expected")
        )
    return _write_reports(writers, report, code, err)


def add_gate_flags(gate: argparse.ArgumentParser) -> None:
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


def _gate_report(args: argparse.Namespace) -> GateReport:
    """The shapes, budgets and load options of the command line, checked."""
    if not args.duration > 0 or not math.isfinite(args.duration):
        raise UsageError(f"--duration {args.duration:g}: a number of seconds above 0")
    if args.connections is not None and args.connections < 1:
        raise UsageError(f"--connections {args.connections}: at least 1")
    if args.arrival_rate is not None and not (
        args.arrival_rate > 0 and math.isfinite(args.arrival_rate)
    ):
        raise UsageError(f"--arrival-rate {args.arrival_rate:g}: requests per second above 0")
    budgets = []
    for text in args.budget:
        try:
            budgets.append(parse_budget(text))
        except ValueError as exc:
            raise UsageError(f"--budget: {exc}") from None
    path = checked_path(args.load_path, "--load-path") if args.load_path else None
    return GateReport(
        shapes=[parse_shape(args.from_shape), parse_shape(args.to_shape)],
        budgets=budgets,
        options=LoadOptions(args.duration, args.connections or 0, args.arrival_rate, path),
    )


def _gate(args: argparse.Namespace, out: Console, err: Console) -> int:
    gate = GateReport()
    writers: dict[Path, tuple[str, GateWriter]] = {}
    try:
        writers = _writers(args, GATE_REPORTS)
        gate = _gate_report(args)
        scenarios = load_scenarios(args.scenarios, _overrides(args))
        if len(scenarios) != 1:
            raise UsageError(f"gate takes one scenario file, not {len(scenarios)}")
        require_docker = args.require_docker or _truthy(REQUIRE_DOCKER_ENV)
        with ConsoleObserver(out) as observer, open_redis(args.redis, require_docker) as redis:
            run_gate(scenarios[0], redis, observer, gate)
        code = EXIT_OK if gate.ok else EXIT_VIOLATION
    except HarnessError as exc:
        code = _failed(exc, err, gate.matrix, args.redis)
    except KeyboardInterrupt:
        code = _interrupted(err, gate.matrix)
    for note in gate.matrix.notes:
        out.print(f"note: {note}", markup=False, soft_wrap=True)
    print_gate(out, gate, code)
    return _write_reports(writers, gate, code, err)


def entry_point() -> NoReturn:
    sys.exit(main())
