"""gunicorn as a compose file's service (``--compose FILE --service NAME``), driven by the compose
tool this machine has (``docker compose``, else ``docker-compose``: Debian 12 ships 1.29). The
demo file, ``scenarios/compose/compose.yaml``, has the web service (the demo app's image and
its own command), a Redis and a one-shot set-up job that reaches Redis by its service name and
that web waits for; nginx in front of web is not started. The atomic throttle passes with web
scaled to 2 instances, stock DRF fails, and the project is gone afterwards, SIGKILL included."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, CliResult, finish, harness_process
from harness.host.cleanup import COMPOSE_PROJECT_LABEL
from tests.integration.conftest import REQUIRE_DOCKER
from tests.integration.test_cli import one_line_error

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.serial]
RunCli = Callable[..., CliResult]
COMPOSE_FILE = "scenarios/compose/compose.yaml"
WEB = ["--compose", COMPOSE_FILE, "--service", "web", "--path", "/api/ping/", "--threads", "2"]


@pytest.fixture(scope="module")
def images(engine: Any) -> dict[str, str]:
    """The images the demo file names, as CI has them (built here when missing)."""
    if (
        shutil.which("docker-compose") is None
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode
    ):
        if REQUIRE_DOCKER:
            pytest.fail("no compose tool (apt-get install docker-compose)")
        pytest.skip("no compose tool")
    app = os.environ.get("THROTTLE_HARNESS_APP_IMAGE", "local/throttle-demo:ci")
    subprocess.run([sys.executable, str(ROOT / ".ci" / "app_image.py"), app], check=True)
    redis = os.environ.get("THROTTLE_HARNESS_REDIS_IMAGE", "local/redis:ci")
    return {"APP_IMAGE": app, "REDIS_IMAGE": redis}


@pytest.fixture
def no_project_left(engine: Any) -> Iterator[None]:
    before = {c.id for c in projects(engine)}
    yield
    deadline = time.monotonic() + 40  # after a SIGKILL the reaper removes it
    while left := [c.name for c in projects(engine) if c.id not in before]:
        assert time.monotonic() < deadline, f"compose containers left behind: {left}"
        time.sleep(0.2)
    networks = engine.networks.list(filters={"label": COMPOSE_PROJECT_LABEL})
    assert not [n.name for n in networks if n.name.startswith("throttle-harness-")]


def projects(engine: Any) -> list[Any]:
    found = engine.containers.list(
        all=True, filters={"label": COMPOSE_PROJECT_LABEL}, ignore_removed=True
    )
    return [c for c in found if c.labels[COMPOSE_PROJECT_LABEL].startswith("throttle-harness-")]


def run_json(run_cli: RunCli, out: Path, env: dict[str, str], *args: str) -> dict[str, Any]:
    result = run_cli("run", "--redis", "local", "--json", str(out), *args, env=env)
    assert "Traceback" not in result.stderr, result.stderr
    assert out.exists(), result.stderr
    return dict(json.loads(out.read_text()))


@pytest.mark.parametrize("rate", ["100/hour", "5/second"])
def test_the_atomic_throttle_passes_with_the_service_scaled_to_two(
    run_cli: RunCli, tmp_path: Path, images: dict[str, str], no_project_left: None, rate: str
) -> None:
    env = {**images, "DEMO_THROTTLE": "atomic"}
    report = run_json(
        run_cli,
        tmp_path / "atomic.json",
        env,
        *WEB,
        "--rate",
        rate,
        "--workers",
        "1,2",
        "--instances",
        "2",
    )
    runs = report["runs"]
    assert [(r["shape"], r["verdict"]) for r in runs] == [("1x2@2", "pass"), ("2x2@2", "pass")], [
        r["reason"] for r in runs
    ]
    for r in runs:
        assert r["image"]["name"] == images["APP_IMAGE"]
        assert set(r["per_instance"]) == {"1", "2"}  # both replicas served


@pytest.mark.parametrize("rate", ["100/hour", "5/second"])
def test_stock_drf_fails_as_the_team_deploys_it(
    run_cli: RunCli, tmp_path: Path, images: dict[str, str], no_project_left: None, rate: str
) -> None:
    env = {**images, "DEMO_THROTTLE": "drf"}
    report = run_json(run_cli, tmp_path / "drf.json", env, *WEB, "--rate", rate, "--workers", "2")
    (run,) = report["runs"]
    assert run["verdict"] == "fail", run["reason"]
    assert max(b["accepted"] for b in run["bursts"]) > run["limit"]


def test_worker_kill_in_a_replica(
    run_cli: RunCli, tmp_path: Path, images: dict[str, str], no_project_left: None
) -> None:
    env = {**images, "DEMO_THROTTLE": "atomic"}
    report = run_json(
        run_cli,
        tmp_path / "kill.json",
        env,
        *WEB,
        "--rate",
        "5/second",
        "--workers",
        "2",
        "--instances",
        "2",
        "--fault",
        "worker-kill",
    )
    (run,) = report["runs"]
    (fault,) = run["faults"]
    assert fault["outcome"] == "killed", fault
    assert run["verdict"] == "pass", run["reason"]


@pytest.mark.parametrize("rate", ["100/hour", "5/second"])
def test_an_asgi_service_under_uvicorn(
    run_cli: RunCli, tmp_path: Path, images: dict[str, str], no_project_left: None, rate: str
) -> None:
    """The web service's command switched to the demo's FastAPI app under UvicornWorker: the
    read-await-increment limiter races inside one async worker, the atomic one holds with the
    service scaled to two."""
    asgi = [
        *("--compose", COMPOSE_FILE, "--service", "web", "--path", "/api/ping/"),
        *("--command", "python3 -m gunicorn -k uvicorn_worker.UvicornWorker harness.demo.asgi:app"),
        *("--worker-class", "uvicorn", "--concurrency", "10", "--rate", rate),
    ]
    racy = run_json(
        run_cli,
        tmp_path / "racy.json",
        images,
        *asgi,
        "--workers",
        "1",
        "--env",
        "DEMO_ASGI_LIMITER=read-await-incr",
    )
    (run,) = racy["runs"]
    assert (run["worker_class"], run["verdict"]) == ("uvicorn", "fail"), run["reason"]
    atomic = run_json(
        run_cli,
        tmp_path / "atomic.json",
        images,
        *asgi,
        "--workers",
        "2",
        "--instances",
        "2",
        "--env",
        "DEMO_ASGI_LIMITER=atomic",
    )
    (run,) = atomic["runs"]
    assert run["verdict"] == "pass", run["reason"]
    assert run["errors"] == 0, run["reason"]


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--service", "nope"], "--service nope: "),
        (["--compose", "no-such.yaml"], "compose: no such file"),
    ],
)
def test_bad_input_is_one_line(
    run_cli: RunCli, images: dict[str, str], no_project_left: None, args: list[str], complaint: str
) -> None:
    env = images
    result = run_cli("run", "--redis", "local", *WEB, "--rate", "5/second", *args, env=env)
    assert result.code == 2, result.stderr
    assert complaint in one_line_error(result)


def test_a_failing_setup_job_is_one_line(
    run_cli: RunCli, tmp_path: Path, images: dict[str, str], no_project_left: None
) -> None:
    broken = tmp_path / "compose.yaml"
    text = (ROOT / COMPOSE_FILE).read_text()
    broken.write_text(text.replace("set('setup', 'done')", "set('setup', 'done'); exit(3)"))
    result = run_cli(
        "run",
        "--redis",
        "local",
        *WEB,
        "--compose",
        str(broken),
        "--rate",
        "5/second",
        env=images,
    )
    assert result.code == 3, result.stderr
    assert "service setup exited with code 3" in one_line_error(result)


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_ctrl_c_and_sigkill_leave_no_project(
    engine: Any,
    images: dict[str, str],
    no_project_left: None,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    for key, value in images.items():
        monkeypatch.setenv(key, value)
    before = {c.id for c in projects(engine)}
    with harness_process(
        *WEB,
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
    ) as proc:
        deadline = time.monotonic() + 120
        while not [c for c in projects(engine) if c.id not in before and "web" in c.name]:
            assert time.monotonic() < deadline, "the web service never started"
            time.sleep(0.1)
        time.sleep(2)
        if how == "SIGINT":
            proc.send_signal(signal.SIGINT)
            _, stderr = finish(proc, timeout=120)
            assert proc.returncode == 130, stderr
        else:
            proc.kill()
            proc.wait()
