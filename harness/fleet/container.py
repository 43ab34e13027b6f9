"""A container fleet: each instance a container of the team's own image (started and removed
through testcontainers), running the image's own gunicorn command reshaped by the harness.

The image is not changed. The probe (standard library only: :mod:`harness.fleet.probe`, its
protocol and the gunicorn config) is copied into a folder mounted read-only at
:data:`PROBE_MOUNT` and put first on ``PYTHONPATH``; gunicorn serves the probe, which imports
the team's app behind it. The probe's stamps come back through a mounted folder; containers
share the host's kernel, so ``time.monotonic_ns()`` is one clock inside and out.

Networking is the host's (``network_mode: host``): gunicorn binds 127.0.0.1 on a port of the
harness's, so each burst's own loopback source address reaches the app as it was sent (no
port-publishing proxy rewrites it) and no packet leaves loopback. The harness's Redis (or its
fault proxy) is on loopback too, where the app's ``REDIS_URL`` names it.

The container's environment is the image's, plus the run's (``REDIS_URL``, the key prefix, the
rate, ``--env``) and the probe's; nothing of the harness's own environment leaks in.
"""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import AppLoadError, FleetStartError, UsageError
from harness.fleet.base import FleetSpec, ImageInfo
from harness.fleet.command import CommandError, GunicornCommand, parse_command, without_owned
from harness.fleet.container_usage import ContainerSampler
from harness.fleet.probe_protocol import (
    APP_ERROR_FILE,
    INSTANCE_ENV,
    INTERPRETER_FILE,
    STAMPS_DIR,
    STATUS_DIR_ENV,
    TARGET_ENV,
    USER_CONFIG_ENV,
)
from harness.fleet.stamps import Stamp, StampFiles
from harness.fleet.usage import UsageMeter, metered
from harness.fleet.workers import address_seen, probe_workers
from harness.host.cleanup import on_death_remove_container, temp_dir
from harness.host.docker import (
    container_class,
    engine_unavailable,
    logs,
    one_line,
    reaper_missing,
    remove_container,
    sdk_client,
)
from harness.host.ports import LOOPBACK, free_port, port_is_free
from harness.host.resources import listen_backlog

PROBE_PACKAGE = "throttle_harness_probe"
PROBE_MOUNT = "/throttle-harness/probe"
STATUS_MOUNT = "/throttle-harness/status"
PROBE_FILES = ("probe.py", "probe_protocol.py", "gunicorn_config.py")
CONTAINER_LABEL = "org.throttle-harness.fleet"
READY_TIMEOUT_S = 60.0
KEEP_ALIVE_S = 10
KILL_SCRIPT = (
    "import os, sys\n"
    "pid, master = int(sys.argv[1]), sys.argv[2]\n"
    "try:\n"
    "    stat = open(f'/proc/{pid}/stat').read()\n"
    "except OSError:\n"
    "    sys.exit('gone')\n"
    "if stat[stat.rindex(')') + 2 :].split()[1] != master:\n"
    "    sys.exit('no longer a child of this gunicorn')\n"
    "os.kill(pid, 9)\n"
)


@dataclass
class _Instance:
    name: str  # the container's
    status_dir: Path
    master: str  # gunicorn's pid inside the container (the workers' parent)
    wrapped: Any  # the docker SDK container


@dataclass
class ContainerFleet:
    """A running container fleet (a :class:`~harness.fleet.base.Fleet`)."""

    host: str
    ports: tuple[int, ...]
    worker_ids: frozenset[str]
    ready_s: float
    image: ImageInfo
    instances: tuple[_Instance, ...]
    _stamps: StampFiles = field(init=False)

    def __post_init__(self) -> None:
        self._stamps = StampFiles([i.status_dir for i in self.instances])

    @property
    def port(self) -> int:
        return self.ports[0]

    def read_stamps(self) -> dict[str, Stamp]:
        return self._stamps.read()

    def kill_worker(self, worker: str) -> str:
        """SIGKILL ``worker`` from inside its container (``docker exec`` of the worker's own
        interpreter), only while it is a child of that container's gunicorn."""
        number, _, rest = worker.rpartition("/")
        instance = self.instances[int(number) - 1 if number else 0]
        pid = rest.partition(".")[0]
        try:
            python = (instance.status_dir / INTERPRETER_FILE).read_text().strip()
            argv = [python, "-c", KILL_SCRIPT, pid, instance.master]
            code, out = instance.wrapped.exec_run(argv)
        except Exception as exc:
            return f"worker {worker} could not be killed: {one_line(exc)}"
        if code != 0:
            return f"worker {worker} was not killed: {one_line(out.decode(errors='replace'))}"
        return ""

    def metered(self, redis_url: str | None) -> AbstractContextManager[UsageMeter]:
        sampler = ContainerSampler([i.wrapped for i in self.instances], len(self.worker_ids))
        return metered(sampler, redis_url)


@contextmanager
def container_fleet(spec: FleetSpec) -> Iterator[ContainerFleet]:
    """Start one container of ``spec.image`` per instance, wait until every worker answers,
    remove every container on exit (and, if the harness dies first, the reaper does)."""
    started = time.monotonic()
    if container_class() is None or engine_unavailable() is not None:
        raise FleetStartError(f"--image: {engine_unavailable() or 'testcontainers is missing'}")
    client = sdk_client()
    try:
        image = _image(client, spec.image or "")
    finally:
        client.close()
    config = image.attrs.get("Config") or {}
    command = _command(spec, config)
    app = spec.app or command.app
    if not app:
        raise UsageError(f"the command of {spec.image} names no app: pass --app MODULE:CALLABLE")
    with ExitStack() as stack:
        probe_dir = stack.enter_context(temp_dir("throttle-harness-probe-"))
        _write_probe(probe_dir)
        ports: list[int] = []
        instances: list[_Instance] = []
        ids: set[str] = set()
        for n in range(1, spec.instances + 1):
            port = spec.port + n - 1 if spec.port is not None else free_port()
            if not port_is_free(port):
                raise FleetStartError(f"port {port} on {LOOPBACK} is in use")
            run = _Run(spec, image, config, command, app, probe_dir, port, str(n))
            instance, workers = stack.enter_context(_container(run))
            ports.append(port)
            instances.append(instance)
            ids |= workers
        digest = (image.attrs.get("RepoDigests") or [image.id])[0]
        yield ContainerFleet(
            LOOPBACK,
            tuple(ports),
            frozenset(ids),
            time.monotonic() - started,
            ImageInfo(spec.image or "", digest),
            tuple(instances),
        )


@dataclass(frozen=True)
class _Run:
    """What one instance's container runs."""

    spec: FleetSpec
    image: Any
    config: dict[str, Any]
    command: GunicornCommand
    app: str
    probe_dir: Path
    port: int
    instance: str

    def argv(self) -> list[str]:
        spec = self.spec
        options = [
            *spec.gunicorn_args,
            *["--config", f"python:{PROBE_PACKAGE}.gunicorn_config"],
            *["--bind", f"{LOOPBACK}:{self.port}"],
            *["--workers", str(spec.workers), "--threads", str(spec.threads)],
            *["--worker-class", "gthread" if spec.threads > 1 else "sync"],
            *["--keep-alive", str(KEEP_ALIVE_S)],
            *["--worker-connections", str(max(1000, spec.connections + 64))],
            *["--backlog", str(listen_backlog(spec.connections))],
        ]
        return self.command.argv(options, f"{PROBE_PACKAGE}.probe:application")

    def environment(self) -> dict[str, str]:
        image_env = dict(e.partition("=")[::2] for e in self.config.get("Env") or [])
        path = [PROBE_MOUNT, image_env.get("PYTHONPATH", "")]
        env = {
            **self.spec.env,
            "PYTHONPATH": ":".join(p for p in path if p),
            TARGET_ENV: self.app,
            STATUS_DIR_ENV: STATUS_MOUNT,
            USER_CONFIG_ENV: self.command.config or "default",
        }
        if self.spec.instances > 1:
            env[INSTANCE_ENV] = self.instance
        if image_env.get("GUNICORN_CMD_ARGS"):
            env["GUNICORN_CMD_ARGS"] = without_owned(image_env["GUNICORN_CMD_ARGS"])
        return env


@contextmanager
def _container(run: _Run) -> Iterator[tuple[_Instance, frozenset[str]]]:
    """One instance's container, once every worker answers; removed on exit."""
    name = f"throttle-harness-app-{secrets.token_hex(6)}"
    forget = on_death_remove_container(name)
    with temp_dir("throttle-harness-fleet-") as status_dir:
        (status_dir / STAMPS_DIR).mkdir()
        for folder in (status_dir, status_dir / STAMPS_DIR):
            folder.chmod(0o777)  # the image's user, whoever it is, writes here
        try:
            container = _started(run, name, status_dir)
            wrapped = container.get_wrapped_container()
            master, workers = _wait_for_workers(run, wrapped, status_dir)
            _check_source_address(run)
            yield _Instance(name, status_dir, master, wrapped), workers
        finally:
            if remove_container(name, "app", attempts=2):
                forget()


def _started(run: _Run, name: str, status_dir: Path) -> Any:
    container_type = container_class()
    assert container_type is not None
    container = container_type(run.image.id)
    argv = run.argv()
    container.with_name(name)
    container.with_command(argv[1:])
    for key, value in run.environment().items():
        container.with_env(key, value)
    container.with_volume_mapping(str(run.probe_dir), PROBE_MOUNT, "ro")
    container.with_volume_mapping(str(status_dir), STATUS_MOUNT, "rw")
    container.with_kwargs(entrypoint=argv[:1], network_mode="host", labels={CONTAINER_LABEL: "app"})
    try:
        container.start()
    except Exception as exc:
        why = reaper_missing() or one_line(exc)
        raise FleetStartError(f"the {run.spec.image} container did not start: {why}") from None
    return container


def _wait_for_workers(run: _Run, wrapped: Any, status_dir: Path) -> tuple[str, frozenset[str]]:
    """Probe until ``workers`` distinct workers of one gunicorn answer: (its pid, their ids)."""
    seen: dict[str, str] = {}
    deadline = time.monotonic() + READY_TIMEOUT_S
    round_size = 2 * run.spec.workers * run.spec.threads
    while time.monotonic() < deadline:
        wrapped.reload()
        if wrapped.status not in ("created", "running"):
            raise _start_failure(run, wrapped, status_dir)
        answered = probe_workers(LOOPBACK, run.port, round_size)
        seen |= answered
        parents = set(seen.values())
        if len(parents) > 1:
            raise FleetStartError(
                f"port {run.port} is answered by workers of {len(parents)} servers, not only "
                f"this container's gunicorn: another server on the port?",
                detail=logs(wrapped),
            )
        if len(seen) >= run.spec.workers:
            return parents.pop(), frozenset(seen)
        if not answered:
            time.sleep(0.05)  # not listening yet
    raise FleetStartError(
        f"only {len(seen)} of {run.spec.workers} gunicorn workers of the {run.spec.image} "
        f"container answered within {READY_TIMEOUT_S:g}s",
        detail=logs(wrapped),
    )


def _check_source_address(run: _Run) -> None:
    """The app must see each burst's own source address (an address-keyed throttle keys on
    it): ask the probe which address it sees for a connection from a fresh loopback one."""
    source = (
        f"127.{secrets.randbelow(254) + 1}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"
    )
    seen = address_seen(LOOPBACK, run.port, source)
    if seen != source:
        raise FleetStartError(
            f"the app in the {run.spec.image} container sees a connection from {source} as "
            f"coming from {seen or 'nowhere'}: every client would be one to an address-keyed "
            "throttle"
        )


def _start_failure(run: _Run, wrapped: Any, status_dir: Path) -> Exception:
    tail = logs(wrapped, lines=40)
    app_error = status_dir / APP_ERROR_FILE
    if app_error.exists():
        reason = app_error.read_text().strip()
        return AppLoadError(f"app {run.app!r} failed to load: {reason}", detail=tail)
    code = (wrapped.attrs.get("State") or {}).get("ExitCode")
    last = next((ln for ln in reversed(tail.splitlines()) if ln.strip()), "no output")
    return FleetStartError(
        f"the {run.spec.image} container exited with code {code} before serving: {one_line(last)}",
        detail=tail,
    )


def _image(client: Any, name: str) -> Any:
    """The image, pulled if it is not here; FleetStartError in one line if neither."""
    try:
        return client.images.get(name)
    except Exception as missing:
        if getattr(getattr(missing, "response", None), "status_code", None) != 404:
            raise FleetStartError(f"--image {name}: {one_line(missing)}") from None
    try:
        return client.images.pull(name)
    except Exception as exc:
        raise FleetStartError(
            f"--image {name} is not present locally and could not be pulled ({one_line(exc)})"
        ) from None


def _command(spec: FleetSpec, config: dict[str, Any]) -> GunicornCommand:
    argv: Sequence[str] = spec.command or [
        *(config.get("Entrypoint") or ()),
        *(config.get("Cmd") or ()),
    ]
    try:
        return parse_command(argv)
    except CommandError as exc:
        where = "--command" if spec.command else f"the image {spec.image}"
        raise UsageError(f"{where}: {exc}") from None


def _write_probe(folder: Path) -> None:
    """The probe as a package of its own (standard library only), readable by any user."""
    package = folder / PROBE_PACKAGE
    package.mkdir()
    (package / "__init__.py").write_text('"""throttle-harness\'s probe, mounted read-only."""\n')
    for name in PROBE_FILES:
        shutil.copyfile(Path(__file__).with_name(name), package / name)
    for path in [folder, package, *package.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
