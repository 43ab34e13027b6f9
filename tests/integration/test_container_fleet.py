"""gunicorn in containers of the team's own image (``--image``): the demo app's image, built
locally as CI builds it (``.ci/app_image.py``: no registry), runs its own gunicorn command with
``--max-requests 1000 --preload`` kept and the shape set by the harness. The atomic throttle
passes at 1, 2 and 4 workers; stock DRF fails with its numbers; the app sees each burst's own
address; faults, the gate and errors work as on local processes; no container is left behind,
Ctrl-C and SIGKILL included."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, CliResult, finish, harness_process
from harness.fleet import FleetSpec, start_fleet
from harness.fleet.container_fleet import CONTAINER_LABEL
from harness.fleet.workers import address_seen
from harness.host.ports import LOOPBACK
from tests.integration.test_cli import one_line_error

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.serial]
RunCli = Callable[..., CliResult]
IMAGE_ENV = "THROTTLE_HARNESS_APP_IMAGE"
APP = ["--path", "/api/ping/", "--env", "DEMO_CACHE=django-redis"]  # the gate's shapes say threads
DEMO = [*APP, "--threads", "2"]
ATOMIC = [*DEMO, "--env", "DEMO_THROTTLE=atomic"]


@pytest.fixture(scope="module")
def image(engine: Any) -> str:
    """The demo app's image: ``$THROTTLE_HARNESS_APP_IMAGE`` (CI builds it), else built here
    the same way (a few seconds; nothing when it is up to date)."""
    name = os.environ.get(IMAGE_ENV, "local/throttle-demo:ci")
    subprocess.run([sys.executable, str(ROOT / ".ci" / "app_image.py"), name], check=True)
    return name


@pytest.fixture
def no_fleet_left(engine: Any) -> Iterator[None]:
    before = {c.id for c in fleet_containers(engine)}
    yield
    left = [c.name for c in fleet_containers(engine) if c.id not in before]
    assert not left, f"app containers left behind: {left}"


def fleet_containers(engine: Any) -> list[Any]:
    found = engine.containers.list(
        all=True, filters={"label": CONTAINER_LABEL}, ignore_removed=True
    )
    return list(found)


def run_json(run_cli: RunCli, out: Path, *args: str) -> tuple[CliResult, dict[str, Any]]:
    result = run_cli("run", "--redis", "local", "--json", str(out), *args)
    assert "Traceback" not in result.stderr, result.stderr
    return result, json.loads(out.read_text()) if out.exists() else {}


@pytest.mark.parametrize("rate", ["100/hour", "5/second"])
def test_the_atomic_throttle_passes_at_1_2_and_4_workers_in_the_teams_image(
    run_cli: RunCli, tmp_path: Path, image: str, no_fleet_left: None, rate: str
) -> None:
    result, report = run_json(
        run_cli,
        tmp_path / "atomic.json",
        "--image",
        image,
        "--rate",
        rate,
        "--workers",
        "1,2,4",
        *ATOMIC,
    )
    runs = report["runs"]
    assert [(r["workers"], r["verdict"]) for r in runs] == [
        (1, "pass"),
        (2, "pass"),
        (4, "pass"),
    ], [r["reason"] for r in runs]
    assert result.code == 0
    for r in runs:
        assert r["image"]["name"] == image and r["image"]["digest"].startswith("sha256:")
        assert r["workers_seen"] == r["workers"]
    assert f"served by containers of {image}" in result.stdout


@pytest.mark.parametrize("rate", ["100/hour", "5/second"])
def test_stock_drf_fails_in_the_teams_image_with_its_numbers(
    run_cli: RunCli, tmp_path: Path, image: str, no_fleet_left: None, rate: str
) -> None:
    _, report = run_json(
        run_cli,
        tmp_path / "drf.json",
        "--image",
        image,
        "--rate",
        rate,
        "--workers",
        "2",
        *DEMO,
    )
    (run,) = report["runs"]
    assert run["verdict"] == "fail", run["reason"]
    limit = run["limit"]
    assert max(b["accepted"] for b in run["bursts"]) > limit  # DRF's race, in numbers


def test_the_image_command_is_kept_and_the_app_sees_each_clients_address(
    image: str, redis_url: str, no_fleet_left: None
) -> None:
    spec = FleetSpec(
        app="",  # the image's command names it
        workers=2,
        threads=2,
        env={"REDIS_URL": redis_url, "DEMO_CACHE": "django-redis"},
        image=image,
    )
    with start_fleet(spec) as fleet:
        assert len(fleet.worker_ids) == 2
        for source in ("127.0.0.1", "127.3.4.5", "127.200.1.9"):
            assert address_seen(LOOPBACK, fleet.port, source) == source
        container = fleet.instances[0].wrapped  # type: ignore[attr-defined]
        container.reload()
        args = container.attrs["Args"]
        assert container.attrs["HostConfig"]["NetworkMode"] == "host"
    joined = " ".join(args)
    assert "--max-requests 1000 --max-requests-jitter 100 --preload" in joined  # the team's
    assert (
        f"--bind {LOOPBACK}:{fleet.port} --workers 2 --worker-class gthread --threads 2" in joined
    )
    assert "0.0.0.0:8000" not in joined and "--workers 1" not in joined
    assert args[-1] == "throttle_harness_probe.probe:application"


@pytest.fixture
def redis_url() -> Iterator[str]:
    from harness.redis.providers import open_redis

    with open_redis("local", require_docker=False) as redis:
        yield redis.url


def test_faults_reach_inside_the_container_and_its_redis(
    run_cli: RunCli, tmp_path: Path, image: str, no_fleet_left: None
) -> None:
    # worker-kill signals a worker from inside its container; redis-outage cuts the app (in the
    # host's network) off through the harness's proxy on loopback: django-redis answers 500s.
    _, report = run_json(
        run_cli,
        tmp_path / "faults.json",
        "--image",
        image,
        "--rate",
        "5/second",
        "--workers",
        "2",
        "--fault",
        "worker-kill",
        "--fault",
        "redis-outage",
        *ATOMIC,
    )
    (run,) = report["runs"]
    outcomes = {f["kind"]: f["outcome"] for f in run["faults"]}
    assert outcomes == {"worker-kill": "killed", "redis-outage": "errors"}, run["faults"]
    assert run["verdict"] == "pass", run["reason"]


def test_the_gate_meters_the_containers_cgroups(
    run_cli: RunCli, tmp_path: Path, image: str, no_fleet_left: None
) -> None:
    out = tmp_path / "gate.json"
    result = run_cli(
        "gate",
        "--image",
        image,
        "--rate",
        "100/hour",
        "--from",
        "1x2",
        "--to",
        "2x2",
        "--duration",
        "2",
        "--redis",
        "local",
        "--json",
        str(out),
        *APP,
        "--env",
        "DEMO_THROTTLE=atomic",
    )
    assert result.code == 0, result.stdout + result.stderr
    shapes = json.loads(out.read_text())["shapes"]
    for shape in shapes:
        assert shape["image"]["name"] == image
        assert shape["cpu_percent"] > 0 and shape["rss_mb"]["total"] > 20, shape
        assert shape["rss_mb"]["per_worker"] is None  # a cgroup knows its total only


@pytest.mark.parametrize(
    ("args", "code", "complaint"),
    [
        (["--app", "no_such_module:app"], 2, "app 'no_such_module:app' failed to load"),
        (["--command", "python3 -c pass"], 2, "--command: the command (python3 -c pass) does not"),
        (["--pythonpath", "."], 2, "pythonpath is for local processes"),
    ],
)
def test_bad_input_is_one_line_and_leaves_no_container(
    run_cli: RunCli, image: str, no_fleet_left: None, args: list[str], code: int, complaint: str
) -> None:
    result = run_cli(
        "run",
        "--image",
        image,
        "--rate",
        "5/second",
        "--workers",
        "1",
        "--redis",
        "local",
        *DEMO,
        *args,
    )
    assert result.code == code, result.stderr
    assert complaint in one_line_error(result)


def test_a_missing_image_is_one_line(run_cli: RunCli, engine: Any, no_fleet_left: None) -> None:
    result = run_cli(
        "run",
        "--image",
        "local/no-such-image:x",
        "--rate",
        "5/second",
        "--redis",
        "local",
        *DEMO,
    )
    assert result.code == 3
    assert "--image local/no-such-image:x is not present locally" in one_line_error(result)


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_ctrl_c_and_sigkill_leave_no_container(engine: Any, image: str, how: str) -> None:
    before = {c.id for c in fleet_containers(engine)}
    with harness_process(
        "--image",
        image,
        "--rate",
        "100/hour",
        "--workers",
        "2",
        "--traffic",
        "sequential",
        "--requests",
        "100000",
        "--redis",
        "local",
        *ATOMIC,
    ) as proc:
        deadline = time.monotonic() + 60
        while not [c for c in fleet_containers(engine) if c.id not in before]:
            assert time.monotonic() < deadline, "no app container started"
            time.sleep(0.05)
        time.sleep(2)  # serving
        if how == "SIGINT":
            proc.send_signal(signal.SIGINT)
            _, stderr = finish(proc, timeout=60)
            assert proc.returncode == 130, stderr
        else:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 40  # the reaper's docker client waits up to 30 s per call
    while {c.id for c in fleet_containers(engine)} - before:
        assert time.monotonic() < deadline, "an app container outlived the harness"
        time.sleep(0.2)


@pytest.fixture
def throttle_redis() -> Iterator[Any]:
    """The plugin's Redis for this test only: the session's would outlive it, and the
    leftover checks of later tests would find it running."""
    from harness.redis.providers import open_redis

    with open_redis("local") as redis:
        yield redis


def test_the_pytest_plugin_runs_the_teams_image(
    throttle_check: Callable[..., Any], image: str, no_fleet_left: None
) -> None:
    common = dict(image=image, path="/api/ping/", rate="5/second", threads=2, workers=2)
    atomic = throttle_check(**common, env={"DEMO_CACHE": "django-redis", "DEMO_THROTTLE": "atomic"})
    assert atomic.verdict == "pass", atomic.summary
    stock = throttle_check(**common, env={"DEMO_CACHE": "django-redis"})
    assert stock.verdict == "fail", stock.summary


@pytest.mark.parametrize("rate", ["100/hour", "5/second"])
def test_an_asgi_app_in_the_image_races_with_one_async_worker(
    run_cli: RunCli, tmp_path: Path, image: str, no_fleet_left: None, rate: str
) -> None:
    asgi = ["--app", "harness.demo.asgi:app", "--path", "/api/ping/", "--rate", rate]
    _, report = run_json(
        run_cli,
        tmp_path / "asgi.json",
        "--image",
        image,
        *asgi,
        "--worker-class",
        "uvicorn",
        "--workers",
        "1",
        "--env",
        "DEMO_ASGI_LIMITER=read-await-incr",
    )
    (run,) = report["runs"]
    assert (run["worker_class"], run["verdict"]) == ("uvicorn", "fail"), run["reason"]
    # The image's own class is not replaced behind the user's back.
    command = (
        "python3 -m gunicorn -k uvicorn_worker.UvicornWorker --max-requests 1000 "
        "harness.demo.asgi:app"
    )
    result = run_cli(
        "run", "--image", image, *asgi, "--redis", "local", "--workers", "1", "--command", command
    )
    assert result.code == 2
    assert "worker class uvicorn_worker.UvicornWorker, not sync: pass --worker-class uvicorn" in (
        one_line_error(result)
    )
    # Its command as it ships, class named: the atomic limiter holds, a worker killed included.
    _, report = run_json(
        run_cli,
        tmp_path / "atomic.json",
        *("--image", image, "--command", command, "--worker-class", "uvicorn"),
        *asgi[2:],
        *("--workers", "1,2", "--fault", "worker-kill", "--env", "DEMO_ASGI_LIMITER=atomic"),
    )
    runs = report["runs"]
    assert [r["verdict"] for r in runs] == ["pass", "pass"], [r["reason"] for r in runs]
    assert all(r["fault"]["outcome"] == "killed" and r["errors"] == 0 for r in runs), runs
