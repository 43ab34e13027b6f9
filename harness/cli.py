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
import shlex
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn, TypeVar

from rich.console import Console

from harness import cli_args
from harness.cli_args import REQUIRE_DOCKER_ENV
from harness.errors import (
    EXIT_INFRASTRUCTURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_VIOLATION,
    HarnessError,
    Interrupted,
    UsageError,
)
from harness.gate.budgets import parse_budget
from harness.gate.release import GateReport, LoadOptions, parse_shape, run_gate
from harness.redaction import MASKS, redact_secrets, scrub, scrubbed
from harness.redis.providers import open_redis
from harness.report.console import ConsoleObserver, print_table
from harness.report.gate_report import print_gate, write_gate_json, write_gate_markdown
from harness.report.html import write_html
from harness.report.json_report import write_json
from harness.report.junit import write_junit
from harness.report.markdown import write_markdown
from harness.runner import MatrixReport, run_matrix
from harness.scenario import checked_path, load_scenarios

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


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser (its flags: :mod:`harness.cli_args`)."""
    return cli_args.build_parser(description=__doc__.split("\n\n")[0])


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The scenario keys given on the command line, in scenario-file form."""
    found: dict[str, Any] = {}
    for key in (
        "app",
        "image",
        "compose",
        "service",
        "path",
        "rate",
        "window",
        "scope",
        "threads",
        "worker_class",
        "concurrency",
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
    if getattr(args, "compose", None):  # absolute: a scenario file's dir must not change it
        found["compose"] = os.path.abspath(args.compose)
    if args.image_command is not None:
        found["command"] = args.image_command
    if getattr(args, "gunicorn_arg", None):
        found["gunicorn_args"] = _gunicorn_args(args.gunicorn_arg)
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


def _gunicorn_args(values: list[str]) -> list[str]:
    """Each ``--gunicorn-arg`` split as a shell would (``'--max-requests 1000'`` is two)."""
    found = []
    for value in values:
        try:
            found += shlex.split(value)
        except ValueError as exc:
            raise UsageError(f"--gunicorn-arg: cannot split it as a shell would: {exc}") from None
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
