"""SIGKILL on a container Redis: the harness's reaper (harness.host.cleanup) removes the container,
even where testcontainers' own reaper is disabled (TESTCONTAINERS_RYUK_DISABLED=true, as in CI).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from conftest import harness_process, leftovers, wait_for_gunicorn
from tests.integration.test_docker_cli import _wait_for_new_container, harness_containers

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.serial]


def test_sigkill_removes_the_container(engine: Any) -> None:
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
        container = _wait_for_new_container(engine, before)
        wait_for_gunicorn(proc.pid)
        time.sleep(0.5)
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 40  # the reaper's docker client waits up to 30 s per call
    while time.monotonic() < deadline:
        if container.id not in {c.id for c in harness_containers(engine)}:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"container {container.name} outlived the SIGKILLed harness")
    deadline = time.monotonic() + 10
    while leftovers(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not leftovers(proc.pid)
