"""Production shapes with real servers: several instances, faults (a worker killed, Redis
restarted, cut off or slowed), and the release gate's exit codes. Each fault is tried on a
correct throttle and a broken one; ``run_cli`` checks every time that nothing is left running.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import CliResult
from harness.redis.providers import open_redis

pytestmark = [pytest.mark.integration, pytest.mark.serial]  # verdicts that need the CPU
APPS = Path(__file__).resolve().parent / "apps"
RunCli = Callable[..., CliResult]
BOTH = ("scenarios/atomic-lua.toml", "scenarios/drf-django-redis.toml")


def report(result: CliResult, out: Path) -> dict[str, Any]:
    assert "Traceback" not in result.stderr, result.stderr
    return dict(json.loads(out.read_text()))


def by_scenario(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["scenario"]: r for r in data["runs"]}


def test_per_process_state_is_caught_across_instances_and_the_atomic_throttle_passes(
    run_cli: RunCli, redis_spec: str, tmp_path: Path
) -> None:
    out = tmp_path / "r.json"
    result = run_cli(
        "run",
        "scenarios/drf-locmem.toml",
        "scenarios/atomic-lua.toml",
        "--workers",
        "1",
        "--instances",
        "2",
        "--redis",
        redis_spec,
        "--json",
        str(out),
    )
    runs = by_scenario(report(result, out))
    locmem, atomic = runs["drf-locmem"], runs["atomic-lua"]
    # One worker per instance: exact within each, twice the limit in all.
    assert locmem["verdict"] == "fail" and locmem["expect"] == "violation", locmem["reason"]
    assert "per process" in locmem["hint"]
    assert locmem["bursts"][0]["accepted"] == 200
    assert {k: v["accepted"] for k, v in locmem["per_instance"].items()} == {"1": 100, "2": 100}
    assert all(w.split("/")[0] in ("1", "2") for w in locmem["served_by"])
    assert atomic["verdict"] == "pass", atomic["reason"]
    assert atomic["shape"] == "1x2@2" and atomic["instances"] == 2
    assert set(atomic["per_instance"]) == {"1", "2"} and atomic["workers_seen"] == 2
    assert "1x2@2" in result.stdout and "instance 2: accepted" in result.stdout
    assert result.code == 0, result.stdout


def test_worker_kill_mid_burst(run_cli: RunCli, redis_spec: str, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = run_cli(
        "run",
        *BOTH,
        "--workers",
        "2",
        "--fault",
        "worker-kill",
        "--redis",
        redis_spec,
        "--json",
        str(out),
    )
    runs = by_scenario(report(result, out))
    for run in runs.values():
        fault = run["fault"]
        assert fault["kind"] == "worker-kill" and fault["outcome"] == "killed", fault
        assert 0 < fault["at_s"] < run["traffic_s"]
        assert run["errors"] == 0, run["reason"]  # in flight: indeterminate, not errors
        assert run["indeterminate"] == fault["indeterminate"]
        assert run["sent"] == run["accepted"] + run["rejected"] + run["indeterminate"]
    atomic, drf = runs["atomic-lua"], runs["drf-django-redis"]
    assert atomic["verdict"] == "pass", atomic["reason"]
    first = atomic["bursts"][0]
    assert first["accepted"] <= 100 <= first["accepted"] + first["indeterminate"]
    assert drf["verdict"] == "fail", drf["reason"]
    assert result.code == 0, result.stdout


def test_redis_restart_between_bursts(run_cli: RunCli, redis_spec: str, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = run_cli(
        "run",
        *BOTH,
        "--workers",
        "2",
        "--fault",
        "redis-restart",
        "--redis",
        redis_spec,
        "--json",
        str(out),
    )
    runs = by_scenario(report(result, out))
    atomic, drf = runs["atomic-lua"], runs["drf-django-redis"]
    for run in (atomic, drf):
        assert run["fault"]["kind"] == "redis-restart", run["fault"]
        assert run["fault"]["outcome"] == "reset", run["fault"]["summary"]
        assert "new budget" in run["fault"]["summary"]
    # The exhausted client gets exactly a new limit from the atomic throttle, more from DRF's.
    assert atomic["fault"]["after"]["admitted"] == 100
    assert drf["fault"]["after"]["admitted"] >= 100
    assert atomic["verdict"] == "pass", atomic["reason"]  # bursts after the restart hold
    assert drf["verdict"] == "fail", drf["reason"]
    assert result.code == 0, result.stdout


def _outage(run_cli: RunCli, redis_spec: str, out: Path, policy: str, *extra: str) -> CliResult:
    return run_cli(
        "run",
        "--app",
        "outage_app:application",
        "--pythonpath",
        str(APPS),
        "--rate",
        "100/hour",
        "--window",
        "fixed",
        "--workers",
        "2",
        "--threads",
        "2",
        "--env",
        f"OUTAGE_POLICY={policy}",
        "--fault",
        "redis-outage",
        "--redis",
        redis_spec,
        "--json",
        str(out),
        *extra,
    )


@pytest.mark.parametrize(
    ("policy", "outcome"),
    [
        ("open", "fail-open"),
        ("closed", "fail-closed"),
        ("raise", "errors"),
    ],
)
def test_an_outage_is_classified_and_the_run_recovers(
    run_cli: RunCli, redis_spec: str, tmp_path: Path, policy: str, outcome: str
) -> None:
    out = tmp_path / "r.json"
    result = _outage(run_cli, redis_spec, out, policy)
    (run,) = report(result, out)["runs"]
    fault = run["fault"]
    assert fault["outcome"] == outcome, fault["summary"]
    during = fault["during"]
    assert during["sent"] > 0 and during["timeouts"] == 0
    if outcome == "fail-open":
        assert during["admitted"] == during["sent"]
    elif outcome == "fail-closed":
        assert during["refused"] == during["sent"]
    else:
        assert during["errors"] == during["sent"]
    assert fault["latency_ms_during"]["p50"] is not None
    assert fault["recovered"] is True
    assert run["verdict"] == "pass", run["reason"]  # the bursts after it hold the limit
    assert result.code == 0, result.stdout


def test_expect_outage_is_an_assertion(run_cli: RunCli, redis_spec: str, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = _outage(run_cli, redis_spec, out, "closed", "--expect-outage", "open")
    (run,) = report(result, out)["runs"]
    assert run["fault"]["outcome"] == "fail-closed"
    assert run["fault"]["as_expected"] is False and run["as_expected"] is False
    assert run["verdict"] == "pass"  # the limit held: only the outage was not as expected
    assert "expected fail-open" in result.stdout
    assert result.code == 1


def test_stock_drf_fails_open_on_an_outage_when_django_redis_ignores_errors(
    run_cli: RunCli, redis_spec: str, tmp_path: Path
) -> None:
    out = tmp_path / "r.json"
    result = run_cli(
        "run",
        "scenarios/drf-django-redis.toml",
        "--workers",
        "2",
        "--env",
        "DEMO_IGNORE_REDIS_ERRORS=1",
        "--fault",
        "redis-outage",
        "--expect-outage",
        "open",
        "--redis",
        redis_spec,
        "--json",
        str(out),
    )
    (run,) = report(result, out)["runs"]
    assert run["fault"]["outcome"] == "fail-open", run["fault"]["summary"]
    assert run["verdict"] == "fail"  # and its race is still there
    assert result.code == 0, result.stdout


def test_redis_latency(run_cli: RunCli, redis_spec: str, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = run_cli(
        "run",
        *BOTH,
        "--workers",
        "2",
        "--fault",
        "redis-latency=5",
        "--redis",
        redis_spec,
        "--json",
        str(out),
    )
    runs = by_scenario(report(result, out))
    for run in runs.values():
        fault = run["fault"]
        assert fault["outcome"] == "added" and fault["latency_ms"] == 5
        assert fault["rtt_ms"] >= 5 > fault["direct_rtt_ms"]
    assert runs["atomic-lua"]["verdict"] == "pass", runs["atomic-lua"]["reason"]
    assert runs["drf-django-redis"]["verdict"] == "fail"
    assert result.code == 0, result.stdout


@pytest.mark.parametrize("fault", ["redis-restart", "redis-outage", "redis-latency=2"])
def test_faults_on_a_redis_the_harness_did_not_start_are_refused(
    run_cli: RunCli, redis_spec: str, fault: str
) -> None:
    with open_redis(redis_spec) as theirs:  # from the harness's point of view: a user's Redis
        result = run_cli(
            "run",
            "scenarios/atomic-lua.toml",
            "--workers",
            "1",
            "--fault",
            fault,
            "--redis",
            theirs.url,
        )
        with theirs.client() as client:
            assert client.dbsize() == 0  # nothing ran against it
    assert result.code == 2, result.stdout + result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "did not start" in line and fault.split("=")[0] in line


def _gate(run_cli: RunCli, redis_spec: str, out: Path, *args: str) -> CliResult:
    return run_cli("gate", *args, "--duration", "1", "--redis", redis_spec, "--json", str(out))


def test_gate_passes_a_clean_change(run_cli: RunCli, redis_spec: str, tmp_path: Path) -> None:
    out = tmp_path / "gate.json"
    result = _gate(
        run_cli,
        redis_spec,
        out,
        "scenarios/atomic-lua.toml",
        "--from",
        "1x2",
        "--to",
        "2x2",
        "--budget",
        "errors=0",
        "--budget",
        "rss=+500MB",
        "--arrival-rate",
        "200",
    )
    data = json.loads(out.read_text())
    assert result.code == 0, result.stdout + result.stderr
    assert data["load"]["rate"] == 200
    for shape in data["shapes"]:  # a fixed rate: 200 requests due in the measured second
        assert 190 <= shape["load"]["sent"] + shape["load"]["backlog"] <= 210
    assert data["ok"] is True and [s["shape"] for s in data["shapes"]] == ["1x2", "2x2"]
    for shape in data["shapes"]:
        assert shape["verdict"] == "pass"
        assert shape["throughput_rps"] > 0 and shape["error_rate"] == 0
        assert (
            0
            < shape["latency_ms"]["p50"]
            <= shape["latency_ms"]["p95"]
            <= shape["latency_ms"]["p99"]
        )
        assert shape["cpu_percent"] > 0 and shape["redis_ops_per_s"] > 0
        assert shape["redis_clients"] >= 1
        assert shape["rss_mb"]["total"] > shape["rss_mb"]["per_worker"] > 0
    one, two = data["shapes"]
    assert two["rss_mb"]["workers"] == 2 and one["rss_mb"]["workers"] == 1
    assert two["rss_mb"]["total"] > one["rss_mb"]["total"]  # a second worker costs memory
    assert all(b["ok"] for b in data["budgets"])
    assert "safe to ship" in result.stdout and "refused by the throttle" in result.stdout


def test_gate_blocks_a_throttle_violation(run_cli: RunCli, redis_spec: str, tmp_path: Path) -> None:
    out = tmp_path / "gate.json"
    result = _gate(
        run_cli, redis_spec, out, "scenarios/drf-locmem.toml", "--from", "1x1", "--to", "2x1"
    )
    data = json.loads(out.read_text())
    assert result.code == 1, result.stdout + result.stderr
    assert data["ok"] is False
    assert [s["verdict"] for s in data["shapes"]] == ["pass", "fail"]
    assert "blocked (1 throttle verdict(s) not as expected" in result.stdout


def test_gate_blocks_a_blown_budget(run_cli: RunCli, redis_spec: str, tmp_path: Path) -> None:
    out = tmp_path / "gate.json"
    md = tmp_path / "gate.md"
    result = _gate(
        run_cli,
        redis_spec,
        out,
        "scenarios/atomic-lua.toml",
        "--from",
        "1x1",
        "--to",
        "2x1",
        "--budget",
        "rss=+1MB",
        "--budget",
        "errors=0",
        "--markdown",
        str(md),
    )
    data = json.loads(out.read_text())
    assert result.code == 1, result.stdout + result.stderr
    assert [s["verdict"] for s in data["shapes"]] == ["pass", "pass"]
    rss, errors = data["budgets"]
    assert rss["metric"] == "rss" and rss["ok"] is False and rss["to"] > rss["allowed"]
    assert errors["ok"] is True
    assert "BREACHED" in md.read_text() and "| 1x1 | 2x1 | change |" in md.read_text()


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--from", "2", "--to", "2x2"], "WORKERSxTHREADS"),
        (["--from", "1x2", "--to", "2x2", "--budget", "p95=soon"], "--budget"),
        (["--from", "1x2", "--to", "2x2", "--duration", "0"], "--duration"),
        (["--from", "1x2", "--to", "2x2", "--load-path", "nope"], "--load-path"),
    ],
)
def test_gate_usage_errors(run_cli: RunCli, args: list[str], complaint: str) -> None:
    result = run_cli("gate", "scenarios/atomic-lua.toml", *args)
    assert result.code == 2, result.stdout + result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert complaint in line


def test_a_fault_on_redis_the_app_never_sees_is_reported_as_not_applied(
    run_cli: RunCli, redis_spec: str, tmp_path: Path
) -> None:
    # LocMemCache: the app never connects to REDIS_URL, so an outage there tells nothing.
    out = tmp_path / "r.json"
    result = run_cli(
        "run",
        "scenarios/drf-locmem.toml",
        "--workers",
        "1",
        "--fault",
        "redis-outage",
        "--redis",
        redis_spec,
        "--json",
        str(out),
    )
    (run,) = report(result, out)["runs"]
    assert run["fault"]["outcome"] == "not-applied" and run["as_expected"] is False
    assert "REDIS_URL" in run["fault"]["summary"]
    assert result.code == 1
