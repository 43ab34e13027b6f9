"""The pytest plugin: prove a rate limit from your own test suite, with the same runner as the
command line (registered through the ``pytest11`` entry point; nothing to copy in).

- ``throttle_check``: a fixture returning a callable that takes the keys of a scenario file
  (``app``, ``pythonpath``, ``env``, ``path``, ``rate``, ``workers`` (one count), ``threads``,
  ``method``, ``headers``, ``data``, ``identities``, …), runs it on real gunicorn workers, and
  returns a :class:`ThrottleResult` with ``.verdict``, ``.accepted``, ``.limit``, ``.history``
  and a one-line ``.summary`` fit for an assertion message.
- ``throttle_redis``: the session's Redis (``--throttle-redis=SPEC``, as ``--redis`` of the
  command line; default ``$THROTTLE_HARNESS_REDIS`` or ``embedded``), shared by every check
  of a session. Under pytest-xdist each worker process has its own.
- ``throttle_workers``: tests that ask for it run once per count of ``--throttle-workers=1,2,4``
  (default: 2).
- ``--throttle-html=FILE``, ``--throttle-json=FILE``, ``--throttle-markdown=FILE``: one report
  of every check of the session, as the command line writes them. Under pytest-xdist each worker
  hands its runs to the controller, which writes one report.

A check is named after its test's node id (``name=`` overrides), so reports say which test ran
what. Its messages and reports name clients as the command line does, never by their
``{identity}`` values or header values (:mod:`harness.redaction`).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from harness.errors import HarnessError
from harness.redaction import MASKS, scrub
from harness.redis.providers import DEFAULT_SPEC, RedisServer, open_redis, redact_url
from harness.report.html import write_html
from harness.report.json_report import write_json
from harness.report.markdown import write_markdown
from harness.runner import MatrixReport, RunResult, SilentObserver, run_matrix
from harness.scenario import build_scenario
from harness.traffic import Record

DEFAULT_WORKERS = (2,)
REPORTS = {
    "--throttle-html": write_html,
    "--throttle-json": write_json,
    "--throttle-markdown": write_markdown,
}
HANDOVER = "throttle_harness_report"  # an xdist worker's runs (pickled) in its workeroutput


@dataclass(frozen=True)
class ThrottleResult:
    """One run's verdict, for an assertion: ``assert r.verdict == "pass", r.summary``."""

    run: RunResult

    @property
    def verdict(self) -> str:
        return self.run.verdict.kind

    @property
    def accepted(self) -> int:
        return self.run.verdict.tally.accepted

    @property
    def limit(self) -> int:
        return self.run.limit

    @property
    def history(self) -> list[Record]:
        """One record per request of every burst, client after client."""
        return [r for burst in self.run.bursts for r in burst.records]

    @property
    def summary(self) -> str:
        v = self.run.verdict
        hint = f" (hint: {v.hint})" if v.hint else ""
        return scrub(f"{self.run.scenario} {self.run.shape_and_class}: {v.kind} - {v.reason}{hint}")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("throttle", "throttle-harness")
    group.addoption(
        "--throttle-redis",
        metavar="SPEC",
        default=os.environ.get("THROTTLE_HARNESS_REDIS", DEFAULT_SPEC),
        help="the Redis of throttle checks: embedded (default), local, "
        "docker[:IMAGE], auto or redis://127.0.0.1:PORT/DB",
    )
    group.addoption(
        "--throttle-workers",
        metavar="N[,N...]",
        default=None,
        help="worker counts for tests that use the throttle_workers fixture (default: 2)",
    )
    for flag in REPORTS:
        group.addoption(
            flag,
            metavar="FILE",
            type=Path,
            default=None,
            help=f"write a {flag.rpartition('-')[2].upper()} report of every "
            "throttle check of the session here",
        )


@dataclass(eq=False)  # a registered pytest plugin must be hashable (pytest 8.0 hashes it)
class SessionRuns:
    """Every run of the session's throttle checks (on the controller, with those each xdist
    worker handed over), for the reports."""

    config: pytest.Config
    report: MatrixReport = field(default_factory=MatrixReport)

    def wanted(self) -> bool:
        return any(self.config.getoption(flag) for flag in REPORTS)

    def add(self, report: MatrixReport) -> None:
        """Take one check's runs, notes and error (or a worker's, under xdist, whose secrets
        the reports written here are scrubbed of too)."""
        for run in report.runs:
            MASKS.identities(burst.value for burst in run.bursts)
            MASKS.request([*(value for _, value in run.request.headers), run.request.body])
        self.report.runs += report.runs
        self.report.notes += [n for n in report.notes if n not in self.report.notes]
        self.report.redis = self.report.redis or report.redis
        self.report.error = report.error or self.report.error

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:  # xdist, controller side
        handed = getattr(node, "workeroutput", {}).get(HANDOVER)
        if handed:
            self.add(pickle.loads(handed))

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self.wanted():
            return
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:  # an xdist worker: hand the runs over, write nothing
            redis = self.report.redis  # its password stays with the worker
            workeroutput[HANDOVER] = pickle.dumps(
                replace(
                    self.report,
                    redis=redis and replace(redis, url=redact_url(redis.url), restart=None),
                )
            )
            return
        self.report.runs.sort(key=lambda r: r.scenario)  # by test: the same with or without xdist
        for flag, write in REPORTS.items():
            if target := self.config.getoption(flag):
                write(self.report, int(exitstatus), target)


def pytest_configure(config: pytest.Config) -> None:
    for flag in REPORTS:
        target = config.getoption(flag)
        if target is not None and not target.resolve().parent.is_dir():
            raise pytest.UsageError(f"{flag} {target}: directory {target.parent} does not exist")
    config.pluginmanager.register(SessionRuns(config), "throttle-harness-session-runs")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "throttle_workers" not in metafunc.fixturenames:
        return
    option = metafunc.config.getoption("--throttle-workers")
    try:
        counts = [int(n) for n in option.split(",")] if option else list(DEFAULT_WORKERS)
    except ValueError:
        raise pytest.UsageError(
            f"--throttle-workers {option!r}: expected numbers such as 1,2,4"
        ) from None
    metafunc.parametrize("throttle_workers", counts, ids=[f"{n}w" for n in counts])


@pytest.fixture(scope="session")
def throttle_redis(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """The Redis every throttle check of this session (of this xdist worker) runs against."""
    spec = request.config.getoption("--throttle-redis")
    try:
        with open_redis(spec) as server:
            yield server
    except HarnessError as exc:
        pytest.fail(scrub(f"throttle-harness: {exc.message}"), pytrace=False)


@pytest.fixture
def throttle_check(
    throttle_redis: RedisServer, request: pytest.FixtureRequest
) -> Callable[..., ThrottleResult]:
    """Run one scenario, given as keyword arguments, at one worker count."""
    session_runs = request.config.pluginmanager.get_plugin("throttle-harness-session-runs")
    assert isinstance(session_runs, SessionRuns)

    def check(**keys: Any) -> ThrottleResult:
        workers = keys.get("workers", DEFAULT_WORKERS[0])
        if not isinstance(workers, int):
            raise TypeError("throttle_check takes one worker count: workers=N")
        keys = {"name": request.node.nodeid, **keys, "workers": [workers]}
        report = MatrixReport()
        try:
            scenario = build_scenario(keys, source="throttle_check", base_dir=Path.cwd())
            run_matrix([scenario], throttle_redis, SilentObserver(), report)
        except HarnessError as exc:
            report.error = exc
            report.notes.append(f"{keys['name']}: error: {scrub(exc.message)}")
            pytest.fail(scrub(f"throttle-harness: {exc.message}"), pytrace=False)
        finally:
            if session_runs.wanted():
                session_runs.add(report)
        return ThrottleResult(report.runs[0])

    return check
