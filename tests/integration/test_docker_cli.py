"""The command line on a container Redis: same verdicts as on a local one, exit 3 when the
container cannot start or dies mid-run, and no container left after a run, an error or Ctrl-C."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import CliResult, finish, harness_process, wait_for_gunicorn
from harness.redis.providers.docker import CONTAINER_LABEL
from tests.integration.test_cli import one_line_error

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.serial]
RunCli = Callable[..., CliResult]
CONTROLS = [
    "scenarios/atomic-lua.toml",
    "scenarios/drf-django-redis.toml",
    "scenarios/drf-locmem.toml",
]


def verdicts(run_cli: RunCli, tmp_path: Path, redis: str, *extra: str) -> dict[str, Any]:
    out = tmp_path / f"{redis.replace(':', '_')}.json"
    result = run_cli(
        "run", *CONTROLS, "--workers", "2", "--redis", redis, "--json", str(out), *extra
    )
    assert result.code == 0, result.stdout + result.stderr
    return json.loads(out.read_text())


def test_controls_give_the_same_verdicts_on_a_container_as_on_local_redis(
    run_cli: RunCli, tmp_path: Path, engine: Any, no_leftovers: None
) -> None:
    docker = verdicts(run_cli, tmp_path, "docker")
    local = verdicts(run_cli, tmp_path, "local")
    assert docker["redis"]["provider"] == "docker" and local["redis"]["provider"] == "local"
    assert "image" in docker["redis"]["reason"]
    by_scenario = {r["scenario"]: r["verdict"] for r in docker["runs"]}
    assert by_scenario == {r["scenario"]: r["verdict"] for r in local["runs"]}
    assert by_scenario == {"atomic-lua": "pass", "drf-django-redis": "fail", "drf-locmem": "fail"}


def test_auto_prefers_docker_and_says_why(
    run_cli: RunCli, tmp_path: Path, engine: Any, no_leftovers: None
) -> None:
    report = verdicts(run_cli, tmp_path, "auto", "--require-docker")
    assert report["redis"]["provider"] == "docker"
    out = tmp_path / "auto.json"
    result = run_cli(
        "run", "scenarios/atomic-lua.toml", "--workers", "1", "--redis", "auto", "--json", str(out)
    )
    assert result.code == 0
    redis = json.loads(out.read_text())["redis"]
    assert redis["provider"] == "docker" and redis["reason"].startswith("auto: docker")


def test_without_an_engine_auto_falls_back_unless_docker_is_required(
    run_cli: RunCli, tmp_path: Path, engine: Any
) -> None:
    dead = {"DOCKER_HOST": "unix:///tmp/nonexistent.sock"}
    out = tmp_path / "fallback.json"
    result = run_cli(
        "run",
        "scenarios/atomic-lua.toml",
        "--workers",
        "1",
        "--redis",
        "auto",
        "--json",
        str(out),
        env=dead,
    )
    assert result.code == 0, result.stderr
    redis = json.loads(out.read_text())["redis"]
    assert redis["provider"] in ("local", "embedded")
    assert "no Docker engine answers" in redis["reason"]

    for how in (["--require-docker"], []):
        env = dead if how else {**dead, "THROTTLE_HARNESS_REQUIRE_DOCKER": "1"}
        result = run_cli("run", "scenarios/atomic-lua.toml", "--redis", "auto", *how, env=env)
        assert result.code == 3
        assert "no Docker engine answers" in one_line_error(result)


def test_a_missing_image_exits_3_with_one_line(
    run_cli: RunCli, engine: Any, no_leftovers: None
) -> None:
    result = run_cli(
        "run", "scenarios/atomic-lua.toml", "--redis", "docker:local/does-not-exist:nope"
    )
    assert result.code == 3
    assert "local/does-not-exist:nope" in one_line_error(result)


def harness_containers(engine: Any) -> list[Any]:
    """Containers of the docker provider, whichever process started them."""
    return list(
        engine.containers.list(all=True, filters={"label": CONTAINER_LABEL}, ignore_removed=True)
    )


def _wait_for_new_container(engine: Any, before: set[str], timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [
            c for c in harness_containers(engine) if c.status == "running" and c.id not in before
        ]
        if found:
            return found[0]
        time.sleep(0.05)
    pytest.fail("no Redis container started")


def test_a_container_that_dies_mid_run_exits_3(engine: Any, no_leftovers: None) -> None:
    before = {c.id for c in harness_containers(engine)}
    with harness_process("scenarios/atomic-lua.toml", "--redis", "docker") as proc:
        container = _wait_for_new_container(engine, before)
        assert proc.stdout is not None
        for line in proc.stdout:  # kill Redis once the first of the three runs is done
            if "atomic-lua 1x2" in line:
                container.kill()
                break
        _, stderr = finish(proc, timeout=60)
    assert proc.returncode == 3, stderr
    assert "Traceback" not in stderr
    assert stderr.startswith("throttle-harness: error: Redis (docker) stopped answering")
    assert not set(c.id for c in harness_containers(engine)) - before


def test_ctrl_c_removes_the_container(engine: Any, no_leftovers: None) -> None:
    before = {c.id for c in harness_containers(engine)}
    with harness_process(
        "scenarios/atomic-lua.toml",
        "--workers",
        "2",
        "--traffic",
        "sequential",
        "--requests",
        "100000",
        "--redis",
        "docker",
    ) as proc:
        _wait_for_new_container(engine, before)
        wait_for_gunicorn(proc.pid)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, stderr = finish(proc, timeout=60)
    assert proc.returncode == 130, stderr
    assert not set(c.id for c in harness_containers(engine)) - before


def test_faults_on_a_container_redis(
    run_cli: RunCli, tmp_path: Path, engine: Any, no_leftovers: None
) -> None:
    # The container is restarted (and keeps its published port) and cut off through the proxy.
    out = tmp_path / "faults.json"
    result = run_cli(
        "run",
        "scenarios/atomic-lua.toml",
        "--workers",
        "2",
        "--redis",
        "docker",
        "--fault",
        "redis-restart",
        "--fault",
        "redis-outage",
        "--json",
        str(out),
    )
    assert result.code == 0, result.stdout + result.stderr
    (run,) = json.loads(out.read_text())["runs"]
    restart, outage = run["faults"]
    assert restart["outcome"] == "reset" and restart["after"]["admitted"] == 100
    assert outage["outcome"] == "errors" and outage["recovered"] is True
    assert run["verdict"] == "pass", run["reason"]
