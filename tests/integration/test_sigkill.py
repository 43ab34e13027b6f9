"""SIGKILL, which the harness cannot catch: its gunicorn and Redis still die (parent-death
signal) and its temporary directories are still removed (the reaper, harness.host.cleanup)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conftest import harness_process, leftovers, wait_for_gunicorn, wait_until

pytestmark = pytest.mark.integration


def sigkill_mid_run(redis_spec: str, tmp: Path) -> int:
    """Start a long run, SIGKILL the harness once gunicorn serves; its pid."""
    with harness_process(
        "scenarios/atomic-lua.toml",
        "--workers",
        "2",
        "--traffic",
        "sequential",
        "--requests",
        "100000",
        "--redis",
        redis_spec,
    ) as proc:
        wait_for_gunicorn(proc.pid)
        assert list(tmp.glob("throttle-harness-redis-*")), "the Redis directory is elsewhere"
        time.sleep(0.5)
        proc.kill()
        proc.wait()
    return proc.pid


@pytest.fixture
def tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary directory of the harness's own (TMPDIR), so that other runs on this
    machine do not count."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    return tmp_path


def test_sigkill_leaves_no_process_and_no_redis_directory(redis_spec: str, tmp: Path) -> None:
    if redis_spec not in ("local", "embedded"):
        pytest.skip("only a redis-server binary has a directory")
    pid = sigkill_mid_run(redis_spec, tmp)
    assert wait_until(lambda: not leftovers(pid), 10), f"left running: {leftovers(pid)}"
    assert wait_until(lambda: not list(tmp.glob("throttle-harness-redis-*")), 10), list(
        tmp.iterdir()
    )


def test_sigkill_leaves_no_fleet_directory(redis_spec: str, tmp: Path) -> None:
    pid = sigkill_mid_run(redis_spec, tmp)
    assert wait_until(lambda: not leftovers(pid), 10), f"left running: {leftovers(pid)}"
    assert wait_until(lambda: not list(tmp.glob("throttle-harness-*")), 10), list(tmp.iterdir())
