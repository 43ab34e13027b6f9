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
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.errors import HarnessError
from harness.providers import DEFAULT_SPEC, RedisServer, open_redis
from harness.runner import MatrixReport, RunResult, SilentObserver, run_matrix
from harness.scenario import build_scenario
from harness.traffic import Record

DEFAULT_WORKERS = (2,)


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
        return (f"{self.run.scenario} {self.run.workers}x{self.run.threads}: {v.kind} - "
                f"{v.reason}{hint}")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("throttle", "throttle-harness")
    group.addoption("--throttle-redis", metavar="SPEC",
                    default=os.environ.get("THROTTLE_HARNESS_REDIS", DEFAULT_SPEC),
                    help="the Redis of throttle checks: embedded (default), local, "
                    "docker[:IMAGE], auto or redis://127.0.0.1:PORT/DB")
    group.addoption("--throttle-workers", metavar="N[,N...]", default=None,
                    help="worker counts for tests that use the throttle_workers fixture "
                    "(default: 2)")


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
        pytest.fail(f"throttle-harness: {exc.message}", pytrace=False)


@pytest.fixture
def throttle_check(throttle_redis: RedisServer) -> Callable[..., ThrottleResult]:
    """Run one scenario, given as keyword arguments, at one worker count."""

    def check(**keys: Any) -> ThrottleResult:
        workers = keys.get("workers", DEFAULT_WORKERS[0])
        if not isinstance(workers, int):
            raise TypeError("throttle_check takes one worker count: workers=N")
        keys = {"name": "throttle_check", **keys, "workers": [workers]}
        try:
            scenario = build_scenario(keys, source="throttle_check", base_dir=Path.cwd())
            report = run_matrix([scenario], throttle_redis, SilentObserver(), MatrixReport())
        except HarnessError as exc:
            pytest.fail(f"throttle-harness: {exc.message}", pytrace=False)
        return ThrottleResult(report.runs[0])

    return check
