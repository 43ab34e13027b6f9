"""Everything else, unchanged for ASGI apps (issue 19, item 4), on the FastAPI demo
(:mod:`harness.demo.asgi`) under async workers: identities with secret tokens, request bodies
and several instances; sustained traffic; a worker killed mid-burst; the team's
``--max-requests``, which the harness's probe requests must not use up; the release gate; the
pytest plugin. Each with a limiter that races (caught) and one that holds (passed)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import CliResult
from tests.integration.test_asgi import classes, reasons

pytestmark = [pytest.mark.integration, pytest.mark.serial]
RunCli = Callable[..., CliResult]
APP = ["--app", "harness.demo.asgi:app", "--path", "/api/ping/", "--redis", "local"]
RATES = ["100/hour", "5/second"]


def runs(run_cli: RunCli, out: Path, *args: str) -> tuple[CliResult, list[dict[str, Any]]]:
    result = run_cli("run", *APP, "--json", str(out), *args)
    assert "Traceback" not in result.stderr, result.stderr
    return result, list(json.loads(out.read_text())["runs"])


@pytest.mark.parametrize("rate", RATES)
def test_clients_with_tokens_and_bodies_over_instances(
    run_cli: RunCli, tmp_path: Path, rate: str
) -> None:
    tokens = [f"tok-{n}-s3cr3t" for n in range(8)]
    (tmp_path / "tokens.txt").write_text("\n".join(tokens) + "\n")
    common = [
        *("--worker-class", "asgi", "--rate", rate, "--workers", "2", "--instances", "2"),
        *("--identities", "2", "--identity-file", str(tmp_path / "tokens.txt")),
        *("--header", "Authorization: Token {identity}", "--method", "POST"),
        *("--data", "user={identity}"),
    ]
    racy_out, (racy,) = runs(
        run_cli, tmp_path / "racy.json", *common, "--env", "DEMO_ASGI_LIMITER=read-await-incr"
    )
    assert racy["verdict"] == "fail", reasons([racy])
    assert racy["shape"] == "2x10@2" and len(racy["per_instance"]) == 2
    atomic_out, (atomic,) = runs(
        run_cli, tmp_path / "atomic.json", *common, "--env", "DEMO_ASGI_LIMITER=atomic"
    )
    assert atomic["verdict"] == "pass", reasons([atomic])
    assert atomic["errors"] == 0 and len(atomic["served_by"]) == 4
    for out, report in ((racy_out, "racy.json"), (atomic_out, "atomic.json")):
        seen = out.stdout + out.stderr + (tmp_path / report).read_text()
        assert not [t for t in tokens if t in seen], "an identity value reached an output"


def test_sustained_traffic_on_async_workers(run_cli: RunCli, tmp_path: Path) -> None:
    common = ["--worker-class", "uvicorn", "--rate", "5/second", "--workers", "2"]
    sustained = ["--traffic", "sustained", "--periods", "3"]
    _, (memory,) = runs(
        run_cli, tmp_path / "m.json", *common, *sustained, "--env", "DEMO_ASGI_LIMITER=memory"
    )
    assert memory["verdict"] == "fail", reasons([memory])  # each worker admits its own 5/s
    _, (atomic,) = runs(
        run_cli, tmp_path / "a.json", *common, *sustained, "--env", "DEMO_ASGI_LIMITER=atomic"
    )
    assert atomic["verdict"] == "pass", reasons([atomic])


@pytest.mark.parametrize("rate", RATES)
def test_a_worker_killed_mid_burst_leaves_an_async_fleet_exact(
    run_cli: RunCli, tmp_path: Path, rate: str
) -> None:
    # Requests lost with the worker are sent again on fresh connections, which may all land
    # on one async worker: never more than its concurrency at once (the app's redis.asyncio
    # pool answered 500 to the rest before).
    _, (run,) = runs(
        run_cli,
        tmp_path / "kill.json",
        *("--worker-class", "uvicorn", "--rate", rate, "--workers", "2"),
        *("--fault", "worker-kill", "--env", "DEMO_ASGI_LIMITER=atomic"),
    )
    assert run["verdict"] == "pass", reasons([run])
    assert run["fault"]["outcome"] == "killed" and run["errors"] == 0
    assert all(b["overlap"]["peak"] <= 20 for b in run["bursts"]), run["bursts"]


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("worker_class", classes())
def test_the_probe_leaves_the_teams_max_requests_to_the_app(
    run_cli: RunCli, tmp_path: Path, worker_class: str, rate: str
) -> None:
    # uvicorn counts every request before any hook sees it: the probe's mapping requests
    # (one or more per request of a burst) recycled the worker mid-run before they were left
    # out. The app's own requests recycle it every --max-requests, as they should.
    # Four bursts of the app's requests stay under the limit; with the probe's (at least one
    # per request) on top, the worker went past it by the third, after about half as many of
    # the app's requests, and was replaced.
    requests = 120 if rate == "100/hour" else 20
    max_requests = 6 * requests
    _, (run,) = runs(
        run_cli,
        tmp_path / "recycle.json",
        *("--worker-class", worker_class, "--rate", rate, "--workers", "1"),
        *("--requests", str(requests), "--bursts", "4", "--env", "DEMO_ASGI_LIMITER=atomic"),
        f"--gunicorn-arg=--max-requests {max_requests}",
    )
    assert run["verdict"] == "pass", reasons([run])
    by_pid = sorted(run["served_by"].items(), key=lambda kv: int(kv[0].split(".")[0]))
    replaced = [n for _, n in by_pid[:-1]]  # a few follow-ups are not counted there: 0.9
    assert all(n >= 0.9 * max_requests for n in replaced), (max_requests, by_pid)


@pytest.mark.parametrize("rate", RATES)
def test_the_gate_blocks_the_async_race_and_ships_the_atomic_limiter(
    run_cli: RunCli, tmp_path: Path, rate: str
) -> None:
    def gate(limiter: str) -> tuple[CliResult, dict[str, Any]]:
        out = tmp_path / f"{limiter}.json"
        result = run_cli(
            "gate",
            *APP,
            *("--worker-class", "uvicorn", "--rate", rate, "--env", f"DEMO_ASGI_LIMITER={limiter}"),
            *("--from", "1x10", "--to", "2x10", "--duration", "1", "--json", str(out)),
        )
        assert "Traceback" not in result.stderr, result.stderr
        return result, json.loads(out.read_text())

    racy, report = gate("read-await-incr")
    assert racy.code == 1, racy.stdout[-2000:]
    assert "1x10 -> 2x10: blocked" in racy.stdout
    assert [r["worker_class"] for r in report["runs"]] == ["uvicorn", "uvicorn"]
    atomic, report = gate("atomic")
    assert atomic.code == 0, atomic.stdout[-2000:]
    assert [s["shape"] for s in report["shapes"]] == ["1x10", "2x10"]


USER_TESTS = """
API = dict(app="harness.demo.asgi:app", path="/api/ping/", rate="5/second",
           worker_class="uvicorn", concurrency=5, workers=2)


def test_the_atomic_limiter_holds(throttle_check):
    r = throttle_check(**API, env={"DEMO_ASGI_LIMITER": "atomic"})
    assert r.verdict == "pass", r.summary


def test_the_racy_limiter_holds(throttle_check):
    r = throttle_check(**API, env={"DEMO_ASGI_LIMITER": "read-await-incr"})
    assert r.verdict == "pass", r.summary
"""


def test_the_pytest_plugin_checks_an_asgi_app(pytester: pytest.Pytester, redis_spec: str) -> None:
    pytester.makepyfile(test_limits=USER_TESTS)
    result = pytester.runpytest_subprocess("--throttle-redis", redis_spec, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*AssertionError: test_limits.py::test_the_racy_limiter_holds 2x5 uvicorn: fail*"]
    )
