"""Ctrl-C (SIGINT) or SIGTERM while gunicorn and Redis run: exit 130, nothing left behind."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from conftest import finish, harness_process, leftovers, wait_for_gunicorn

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_stops_everything(sig: signal.Signals, redis_spec: str) -> None:
    # Sequential traffic of many requests keeps the run busy long enough to interrupt it.
    with harness_process("scenarios/atomic-lua.toml", "--workers", "4", "--traffic", "sequential",
                         "--requests", "100000", "--redis", redis_spec) as proc:
        wait_for_gunicorn(proc.pid)
        time.sleep(0.5)
        proc.send_signal(sig)
        _, stderr = finish(proc, timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert not leftovers(proc.pid)
