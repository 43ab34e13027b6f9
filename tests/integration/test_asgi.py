"""ASGI apps under gunicorn's async workers (``--worker-class asgi``, gunicorn's own from 24, and
``uvicorn``, the uvicorn-worker package), on the FastAPI demo (:mod:`harness.demo.asgi`): a
hand-rolled limiter on ``redis.asyncio`` that reads, awaits, then increments is caught with ONE
worker (the event loop interleaves requests between its read and its write); an atomic Lua
limiter passes at 1, 2 and 4 workers under both classes; an in-memory limiter is caught across
workers; an app of the other interface is refused in one line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import CliResult
from harness.errors import UsageError
from harness.fleet.worker_classes import check_installed
from tests.integration.test_cli import one_line_error

pytestmark = [pytest.mark.integration, pytest.mark.serial]
RunCli = Callable[..., CliResult]
APP = ["--app", "harness.demo.asgi:app", "--path", "/api/ping/", "--redis", "local"]


def classes() -> list[Any]:
    """Both async classes; gunicorn's own ``asgi`` skipped where gunicorn is older than 24."""
    found = []
    for name in ("asgi", "uvicorn"):
        try:
            check_installed(name)
            found.append(name)
        except UsageError as exc:
            found.append(pytest.param(name, marks=pytest.mark.skip(reason=exc.message)))
    return found


def runs(run_cli: RunCli, out: Path, *args: str) -> list[dict[str, Any]]:
    result = run_cli("run", *APP, "--json", str(out), *args)
    assert "Traceback" not in result.stderr, result.stderr
    return list(json.loads(out.read_text())["runs"])


def reasons(found: list[dict[str, Any]]) -> list[str]:
    return [f"{r['shape']}: {r['verdict']}: {r['reason']}" for r in found]


@pytest.mark.parametrize("rate", ["100/hour", "5/second"])
@pytest.mark.parametrize("worker_class", classes())
def test_an_await_between_read_and_write_races_in_one_worker(
    run_cli: RunCli, tmp_path: Path, worker_class: str, rate: str
) -> None:
    found = runs(
        run_cli,
        tmp_path / "racy.json",
        "--worker-class",
        worker_class,
        "--rate",
        rate,
        "--workers",
        "1",
        "--env",
        "DEMO_ASGI_LIMITER=read-await-incr",
    )
    (run,) = found
    assert run["verdict"] == "fail", reasons(found)
    assert run["worker_class"] == worker_class and run["shape"] == "1x10"
    assert max(b["accepted"] for b in run["bursts"]) > run["limit"]


@pytest.mark.parametrize("worker_class", classes())
def test_an_atomic_limiter_passes_at_1_2_and_4_workers(
    run_cli: RunCli, tmp_path: Path, worker_class: str
) -> None:
    found = runs(
        run_cli,
        tmp_path / "atomic.json",
        "--worker-class",
        worker_class,
        "--rate",
        "100/hour",
        "--workers",
        "1,2,4",
        "--env",
        "DEMO_ASGI_LIMITER=atomic",
    )
    assert [r["verdict"] for r in found] == ["pass"] * 3, reasons(found)
    for r in found:
        assert r["errors"] == 0  # never more than the concurrency in flight in one worker
        assert r["overlap"]["peak"] <= 10 * r["workers"], r["overlap"]


@pytest.mark.parametrize("worker_class", classes())
def test_an_atomic_limiter_passes_at_a_per_second_rate(
    run_cli: RunCli, tmp_path: Path, worker_class: str
) -> None:
    found = runs(
        run_cli,
        tmp_path / "atomic.json",
        "--worker-class",
        worker_class,
        "--rate",
        "5/second",
        "--workers",
        "2",
        "--concurrency",
        "4",
        "--env",
        "DEMO_ASGI_LIMITER=atomic",
    )
    assert [(r["shape"], r["verdict"]) for r in found] == [("2x4", "pass")], reasons(found)


@pytest.mark.parametrize("rate", ["100/hour", "5/second"])
def test_an_in_memory_limiter_is_caught_across_workers(
    run_cli: RunCli, tmp_path: Path, rate: str
) -> None:
    found = runs(
        run_cli,
        tmp_path / "memory.json",
        "--worker-class",
        "uvicorn",
        "--rate",
        rate,
        "--workers",
        "2",
        "--env",
        "DEMO_ASGI_LIMITER=memory",
    )
    (run,) = found
    assert run["verdict"] == "fail", reasons(found)
    # one budget per worker (a burst across a clock window's edge splits them at 5/second)
    assert max(b["accepted"] for b in run["bursts"]) > run["limit"]


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (
            ["--app", "harness.demo.wsgi:application", "--worker-class", "uvicorn"],
            "is a WSGI app: serve it with --worker-class sync or gthread",
        ),
        (["--threads", "2"], "is an ASGI app: serve it with --worker-class asgi or uvicorn"),
        (["--worker-class", "uvicorn", "--threads", "2"], "an async worker has no threads"),
        (["--concurrency", "5"], "concurrency is for an async worker_class"),
    ],
)
def test_the_wrong_interface_or_shape_is_one_line(
    run_cli: RunCli, args: list[str], complaint: str
) -> None:
    result = run_cli("run", *APP, "--rate", "5/second", "--workers", "1", *args)
    assert result.code == 2, result.stderr
    assert complaint in one_line_error(result)


@pytest.mark.parametrize("worker_class", classes())
def test_an_app_whose_startup_fails_is_one_line(run_cli: RunCli, worker_class: str) -> None:
    """The lifespan's failure is the app's, said as an import failure is (exit 2), not gunicorn's
    bare 'Worker failed to boot'; the app's traceback follows in the indented log tail."""
    app = ["--app", "asgi_startup_fails:app", "--pythonpath", "tests/integration/apps"]
    result = run_cli(
        "run", *app, "--path", "/ping", "--rate", "5/second", "--worker-class", worker_class
    )
    assert result.code == 2, result.stderr
    line, *tail = result.stderr.strip().splitlines()
    assert line.startswith("throttle-harness: error: "), result.stderr
    assert all(ln.startswith("  | ") for ln in tail), result.stderr
    assert "app 'asgi_startup_fails:app' failed to load: lifespan startup failed" in line
    assert "RuntimeError: the payments service did not answer" in line


SLOWAPI = [
    "--app",
    "slowapi_app:app",
    "--pythonpath",
    "tests/integration/apps",
    "--path",
    "/limited/",
]


@pytest.mark.parametrize("strategy", ["fixed-window", "moving-window"])
def test_slowapi_holds_across_workers_and_blocks_its_own_event_loop(
    run_cli: RunCli, tmp_path: Path, strategy: str
) -> None:
    # slowapi checks with limits' synchronous Redis storage, inside the event loop: one worker
    # runs one check at a time, so its requests never overlap where the limit is crossed and
    # one worker is honestly inconclusive; from two workers on, checks run together, and pass.
    out = tmp_path / "slowapi.json"
    run_cli(
        "run",
        *SLOWAPI,
        "--redis",
        "local",
        "--worker-class",
        "uvicorn",
        "--rate",
        "100/hour",
        "--workers",
        "1,2,4",
        "--env",
        f"LIMITS_STRATEGY={strategy}",
        "--json",
        str(out),
    )
    found = json.loads(out.read_text())["runs"]
    assert [r["verdict"] for r in found] == ["inconclusive", "pass", "pass"], reasons(found)
    assert "never overlapped" in found[0]["reason"]
    assert all(b["accepted"] == 100 for r in found for b in r["bursts"])


def test_slowapi_holds_at_a_per_second_rate(run_cli: RunCli, tmp_path: Path) -> None:
    out = tmp_path / "slowapi.json"
    run_cli(
        "run",
        *SLOWAPI,
        "--redis",
        "local",
        "--worker-class",
        "uvicorn",
        "--rate",
        "5/second",
        "--workers",
        "2",
        "--env",
        "LIMITS_STRATEGY=moving-window",
        "--json",
        str(out),
    )
    found = json.loads(out.read_text())["runs"]
    assert [r["verdict"] for r in found] == ["pass"], reasons(found)


def test_the_bypass_check_names_the_server_that_trusts_a_same_host_proxy(
    run_cli: RunCli, tmp_path: Path
) -> None:
    # uvicorn's worker takes the client address from X-Forwarded-For for connections from
    # gunicorn's forwarded_allow_ips (127.0.0.1 by default): the atomic limiter is exact, but
    # any client behind a proxy on the same host picks its own identity. Trusting no peer
    # closes it.
    common = [
        "--worker-class",
        "uvicorn",
        "--rate",
        "100/hour",
        "--workers",
        "1",
        "--bypass-check",
        "--env",
        "DEMO_ASGI_LIMITER=atomic",
    ]
    (open_run,) = runs(run_cli, tmp_path / "open.json", *common)
    assert (open_run["verdict"], open_run["basis"]) == ("fail", "bypass"), open_run["reason"]
    assert "X-Forwarded-For from 127.0.0.1" in open_run["reason"]
    assert "the server, not the limiter" in open_run["hint"]
    assert "forwarded_allow_ips" in open_run["hint"]
    (closed,) = runs(
        run_cli, tmp_path / "closed.json", *common, "--gunicorn-arg=--forwarded-allow-ips 10.9.9.9"
    )
    assert closed["verdict"] == "pass", closed["reason"]
