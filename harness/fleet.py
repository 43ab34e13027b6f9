"""A gunicorn fleet: the user's app, behind the probe, served by N workers × T threads.

gunicorn always runs as a subprocess in its own session, bound to 127.0.0.1. It is ready when
every worker has answered the probe (gunicorn's ``when_ready`` fires before workers exist), and
leaving the context stops the whole process group, also on an exception or Ctrl-C.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import harness
from harness import processes
from harness.errors import AppLoadError, FleetStartError
from harness.ports import LOOPBACK, free_port, port_is_free
from harness.probe_protocol import APP_ERROR_FILE, STATUS_DIR_ENV, TARGET_ENV
from harness.traffic.burst import probe_workers

READY_TIMEOUT_S = 60.0
_HARNESS_ROOT = str(Path(harness.__file__).resolve().parent.parent)


@dataclass(frozen=True)
class FleetSpec:
    """What to serve and how: ``app`` is ``module:callable``, as gunicorn takes it."""

    app: str
    workers: int
    threads: int
    pythonpath: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    port: int | None = None
    gunicorn_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Fleet:
    """A running fleet: where to send traffic and which worker pids answered at start."""

    host: str
    port: int
    worker_pids: frozenset[str]
    ready_s: float


@contextmanager
def gunicorn_fleet(spec: FleetSpec) -> Iterator[Fleet]:
    """Start gunicorn for ``spec``, wait until every worker answers, stop it on exit."""
    port = spec.port if spec.port is not None else free_port()
    if spec.port is not None and not port_is_free(port):
        raise FleetStartError(f"port {port} on {LOOPBACK} is in use")
    status_dir = Path(tempfile.mkdtemp(prefix="throttle-harness-fleet-"))
    log = status_dir / "gunicorn.log"
    started = time.monotonic()
    proc = processes.spawn(_argv(spec, port), _environment(spec, status_dir), log)
    try:
        pids = _wait_for_workers(proc, port, spec, status_dir, log)
        yield Fleet(LOOPBACK, port, pids, time.monotonic() - started)
    finally:
        processes.stop(proc)
        shutil.rmtree(status_dir, ignore_errors=True)


def _argv(spec: FleetSpec, port: int) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn",
        "--bind", f"{LOOPBACK}:{port}",
        "--workers", str(spec.workers),
        "--threads", str(spec.threads),
        "--worker-class", "gthread" if spec.threads > 1 else "sync",
        "--no-control-socket",
        "--graceful-timeout", "2",
        "--keep-alive", "10",  # the burst maps its connections first; they must stay open
        "--log-level", "warning",
        *spec.gunicorn_args,
        "harness.probe:application",
    ]


def _environment(spec: FleetSpec, status_dir: Path) -> dict[str, str]:
    env = {**os.environ, **spec.env}
    path = [*spec.pythonpath, _HARNESS_ROOT, env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in path if p)
    env[TARGET_ENV] = spec.app
    env[STATUS_DIR_ENV] = str(status_dir)
    return env


def _wait_for_workers(
    proc: subprocess.Popen[bytes], port: int, spec: FleetSpec, status_dir: Path, log: Path
) -> frozenset[str]:
    """Probe with concurrent connections until ``spec.workers`` distinct workers have answered."""
    seen: set[str] = set()
    deadline = time.monotonic() + READY_TIMEOUT_S
    round_size = 2 * spec.workers * spec.threads
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise _start_failure(spec, status_dir, log, proc.returncode)
        answered = probe_workers(LOOPBACK, port, round_size)
        seen |= answered
        if len(seen) >= spec.workers:
            return frozenset(seen)
        if not answered:
            time.sleep(0.05)  # not listening yet
    raise FleetStartError(
        f"only {len(seen)} of {spec.workers} gunicorn workers answered within "
        f"{READY_TIMEOUT_S:g}s",
        detail=processes.log_tail(log),
    )


def _start_failure(spec: FleetSpec, status_dir: Path, log: Path, code: int) -> Exception:
    tail = processes.log_tail(log)
    app_error = status_dir / APP_ERROR_FILE
    if app_error.exists():
        reason = app_error.read_text().strip()
        return AppLoadError(f"app {spec.app!r} failed to load: {reason}", detail=tail)
    last = next((ln for ln in reversed(tail.splitlines()) if ln.strip()), "no output")
    return FleetStartError(f"gunicorn exited with code {code} before serving: {last}", detail=tail)
