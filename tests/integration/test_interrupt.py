"""Ctrl-C (SIGINT) or SIGTERM while gunicorn and Redis run (and a fault's proxy, and the gate's
load generator): exit 130, nothing left behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from conftest import (
    cli_environment,
    finish,
    harness_process,
    leftovers,
    wait_for_gunicorn,
    wait_until,
)

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_stops_everything(sig: signal.Signals, redis_spec: str) -> None:
    # Sequential traffic of many requests keeps the run busy long enough to interrupt it.
    with harness_process(
        "scenarios/atomic-lua.toml",
        "--workers",
        "4",
        "--traffic",
        "sequential",
        "--requests",
        "100000",
        "--redis",
        redis_spec,
    ) as proc:
        wait_for_gunicorn(proc.pid)
        time.sleep(0.5)
        proc.send_signal(sig)
        _, stderr = finish(proc, timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert not leftovers(proc.pid)


def test_interrupt_with_a_fault_proxy_stops_it_too(redis_spec: str) -> None:
    # The proxy between the app and Redis (redis-latency) is a process of its own.
    with harness_process(
        "scenarios/atomic-lua.toml",
        "--workers",
        "2",
        "--traffic",
        "sequential",
        "--requests",
        "100000",
        "--fault",
        "redis-latency=1",
        "--redis",
        redis_spec,
    ) as proc:
        wait_for_gunicorn(proc.pid)
        assert any("harness.redis.proxy" in p for p in leftovers(proc.pid))
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, stderr = finish(proc, timeout=60)
    assert proc.returncode == 130, stderr
    assert not leftovers(proc.pid)


def _load_generator(parent: int) -> bool:
    """Whether a load generator runs under ``parent`` (children that exit meanwhile, or are
    zombies waiting to be reaped, do not count)."""
    for child in psutil.Process(parent).children(recursive=True):
        try:
            if "child_main" in " ".join(child.cmdline()):
                return True
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
    return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_during_the_gates_load_phase(sig: signal.Signals, redis_spec: str) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness",
            "gate",
            "scenarios/atomic-lua.toml",
            "--from",
            "1x1",
            "--to",
            "1x2",
            "--duration",
            "60",
            "--redis",
            redis_spec,
        ],
        cwd=ROOT,
        env=cli_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until(lambda: _load_generator(proc.pid), 120), "no load phase started"
        time.sleep(0.5)
        proc.send_signal(sig)
        _, stderr = finish(proc, timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert not leftovers(proc.pid)  # the load generator included (it carries PARENT_ENV)
