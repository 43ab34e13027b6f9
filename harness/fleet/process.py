"""A gunicorn fleet: the user's app, behind the probe, served by M instances (gunicorn servers,
each on a port of its own, as hosts behind a load balancer) of N workers × T threads.

gunicorn always runs as a subprocess in its own session, bound to 127.0.0.1, with the harness's
own configuration (:mod:`harness.fleet.gunicorn_config`; the user's ``./gunicorn.conf.py`` and
``GUNICORN_CMD_ARGS`` are ignored and reported), and with connection limits, listen backlog and
file descriptors sized to the traffic. It is ready when every worker has answered the probe
(gunicorn's ``when_ready`` fires before workers exist) and every answering worker is a child of
this gunicorn. With several instances, each worker's id starts with its instance's number
(``2/PID.TOKEN``). Leaving the context stops every instance's whole process group, also on an
exception or Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import harness
from harness.errors import AppLoadError, FleetStartError
from harness.fleet.base import FleetSpec
from harness.fleet.probe_protocol import (
    APP_ERROR_FILE,
    INSTANCE_ENV,
    INTERFACE_ENV,
    STATUS_DIR_ENV,
    TARGET_ENV,
)
from harness.fleet.stamps import Stamp, StampFiles
from harness.fleet.usage import ProcessSampler, UsageMeter, children, metered
from harness.fleet.worker_classes import (
    check_installed,
    class_options,
    effective_class,
    interface,
    probe_module,
)
from harness.fleet.workers import probe_workers
from harness.host import processes
from harness.host.cleanup import temp_dir
from harness.host.ports import LOOPBACK, free_port, port_is_free
from harness.host.resources import listen_backlog

READY_TIMEOUT_S = 60.0
KEEP_ALIVE_S = 10  # the burst maps its connections first; they must stay open
USER_CONFIG_FILE = "gunicorn.conf.py"
USER_ARGS_ENV = "GUNICORN_CMD_ARGS"
_HARNESS_ROOT = str(Path(harness.__file__).resolve().parent.parent)


@dataclass
class ProcessFleet:
    """A running fleet of local gunicorn processes (a :class:`~harness.fleet.base.Fleet`): where
    to send traffic (one port per instance), the workers that answered at start, each
    instance's gunicorn (arbiter) pid, and the stamps its workers leave."""

    host: str
    ports: tuple[int, ...]
    worker_ids: frozenset[str]
    ready_s: float
    status_dirs: tuple[Path, ...]
    arbiters: tuple[int, ...] = ()
    image: None = None  # local processes: no image
    _stamps: StampFiles = field(init=False)

    def __post_init__(self) -> None:
        self._stamps = StampFiles(self.status_dirs)

    @property
    def port(self) -> int:
        return self.ports[0]

    def read_stamps(self) -> dict[str, Stamp]:
        return self._stamps.read()

    def kill_worker(self, worker: str) -> str:
        """SIGKILL ``worker``'s process, only while it is a child of this fleet's gunicorn (a
        pid the system has reused for another process is never signalled)."""
        pid = worker_pid(worker)
        if pid not in {c for arbiter in self.arbiters for c in children(arbiter)}:
            return f"worker {worker} was no longer a child of this fleet's gunicorn"
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError as exc:
            return f"worker {worker} could not be killed: {exc.strerror or exc}"
        return ""

    def metered(self, redis_url: str | None) -> AbstractContextManager[UsageMeter]:
        return metered(ProcessSampler(self.arbiters), redis_url)


def ignored_user_config(cwd: Path | None = None) -> list[str]:
    """The user's gunicorn configuration the harness does not apply, for the report."""
    found = []
    if ((cwd or Path.cwd()) / USER_CONFIG_FILE).exists():
        found.append(f"./{USER_CONFIG_FILE}")
    if os.environ.get(USER_ARGS_ENV):
        found.append(f"${USER_ARGS_ENV}")
    return found


def worker_pid(worker: str) -> int:
    """The pid in a worker id (``PID.TOKEN`` or ``INSTANCE/PID.TOKEN``)."""
    return int(worker.rpartition("/")[2].partition(".")[0])


@contextmanager
def gunicorn_fleet(spec: FleetSpec) -> Iterator[ProcessFleet]:
    """Start gunicorn for ``spec`` (each instance in turn), wait until every worker answers,
    stop every instance on exit."""
    started = time.monotonic()
    check_installed(effective_class(spec.worker_class, spec.threads))
    with ExitStack() as stack:
        ports: list[int] = []
        ids: set[str] = set()
        dirs: list[Path] = []
        pids: list[int] = []
        for n in range(1, spec.instances + 1):
            port = spec.port + n - 1 if spec.port is not None else free_port()
            if spec.port is not None and not port_is_free(port):
                raise FleetStartError(f"port {port} on {LOOPBACK} is in use")
            instance = str(n) if spec.instances > 1 else ""
            status_dir, proc, workers = stack.enter_context(_instance(spec, port, instance))
            ports.append(port)
            ids |= workers
            dirs.append(status_dir)
            pids.append(proc.pid)
        yield ProcessFleet(
            LOOPBACK,
            tuple(ports),
            frozenset(ids),
            time.monotonic() - started,
            tuple(dirs),
            tuple(pids),
        )


@contextmanager
def _instance(
    spec: FleetSpec, port: int, instance: str
) -> Iterator[tuple[Path, subprocess.Popen[bytes], frozenset[str]]]:
    """One gunicorn on ``port``, once every worker answers; stopped on exit."""
    with temp_dir("throttle-harness-fleet-") as status_dir:
        log = status_dir / "gunicorn.log"
        env = _environment(spec, status_dir)
        if instance:
            env[INSTANCE_ENV] = instance
        proc = processes.spawn(_argv(spec, port), env, log)
        try:
            yield status_dir, proc, _wait_for_workers(proc, port, spec, status_dir, log)
        finally:
            processes.stop(proc, sig=signal.SIGKILL)  # a test server: nothing to save


def _argv(spec: FleetSpec, port: int) -> list[str]:
    # The user's arguments come first: the ones after them (the harness's) win.
    worker_class = effective_class(spec.worker_class, spec.threads)
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        "python:harness.fleet.gunicorn_config",
        "--graceful-timeout",
        "2",
        "--log-level",
        "warning",
        *spec.gunicorn_args,
        "--bind",
        f"{LOOPBACK}:{port}",
        "--workers",
        str(spec.workers),
        *class_options(worker_class, spec.threads),
        *(["--no-control-socket"] if gunicorn_has_flag("--no-control-socket") else []),
        "--keep-alive",
        str(KEEP_ALIVE_S),
        "--worker-connections",
        str(max(1000, spec.connections + 64)),
        "--backlog",
        str(listen_backlog(spec.connections)),
        f"harness.fleet.{probe_module(worker_class)}:application",
    ]


@cache
def gunicorn_has_flag(flag: str) -> bool:
    """Whether the installed gunicorn (the one ``sys.executable -m gunicorn`` runs) takes
    ``flag``: ``--no-control-socket`` came in 25.1, with the control socket (``gunicorn.ctl``
    in the working directory, which parallel servers must not share)."""
    from gunicorn.config import KNOWN_SETTINGS  # type: ignore[import-untyped]

    return any(flag in known.cli for known in KNOWN_SETTINGS if known.cli)


def _environment(spec: FleetSpec, status_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != USER_ARGS_ENV}
    env.update(spec.env)
    path = [*spec.pythonpath, _HARNESS_ROOT, env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in path if p)
    env[TARGET_ENV] = spec.app
    env[INTERFACE_ENV] = interface(effective_class(spec.worker_class, spec.threads))
    env[STATUS_DIR_ENV] = str(status_dir)
    return env


def _wait_for_workers(
    proc: subprocess.Popen[bytes], port: int, spec: FleetSpec, status_dir: Path, log: Path
) -> frozenset[str]:
    """Probe with concurrent connections until ``spec.workers`` distinct workers of this
    gunicorn have answered."""
    seen: set[str] = set()
    deadline = time.monotonic() + READY_TIMEOUT_S
    round_size = 2 * spec.workers * spec.threads
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise _start_failure(spec, status_dir, log, proc.returncode)
        answered = probe_workers(LOOPBACK, port, round_size)
        strangers = {w: parent for w, parent in answered.items() if parent != str(proc.pid)}
        if strangers:
            worker, parent = next(iter(strangers.items()))
            raise FleetStartError(
                f"port {port} is answered by worker {worker} whose parent is pid {parent}, "
                f"not this gunicorn (pid {proc.pid}): a daemonized or foreign server?",
                detail=processes.log_tail(log),
            )
        seen |= set(answered)
        if len(seen) >= spec.workers:
            return frozenset(seen)
        if not answered:
            time.sleep(0.05)  # not listening yet
    raise FleetStartError(
        f"only {len(seen)} of {spec.workers} gunicorn workers answered within {READY_TIMEOUT_S:g}s",
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
