"""A fleet of containers of the team's image, whichever way they were started (``--image``:
:mod:`harness.fleet.image`; ``--compose``: :mod:`harness.fleet.compose`), and what both ways
share: the probe mounted into an unchanged image, the gunicorn command reshaped, the
container's environment, and the wait until every worker answers.

The image is not changed. The probe (standard library only: :mod:`harness.fleet.probe`, its
protocol and the gunicorn config) is copied into a folder mounted read-only at
:data:`PROBE_MOUNT` and put first on ``PYTHONPATH``; gunicorn serves the probe, which imports
the team's app behind it. The probe's stamps come back through a mounted folder; containers
share the host's kernel, so ``time.monotonic_ns()`` is one clock inside and out.

Networking is the host's (``network_mode: host``): gunicorn binds 127.0.0.1 on a port of the
harness's, so each burst's own loopback source address reaches the app as it was sent (no
port-publishing proxy rewrites it, and :func:`check_source_address` measures it) and no packet
leaves loopback. The harness's Redis (or its fault proxy) is on loopback too.
"""

from __future__ import annotations

import secrets
import shlex
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import AppLoadError, FleetStartError, UsageError
from harness.fleet.base import FleetSpec, ImageInfo
from harness.fleet.command import CommandError, GunicornCommand, parse_command, without_owned
from harness.fleet.container_usage import ContainerSampler
from harness.fleet.gunicorn_options import value_of
from harness.fleet.probe_protocol import (
    APP_ERROR_FILE,
    INSTANCES_DIR,
    INTERFACE_ENV,
    INTERPRETER_FILE,
    STAMPS_DIR,
    STATUS_DIR_ENV,
    TARGET_ENV,
    USER_CONFIG_ENV,
)
from harness.fleet.stamps import Stamp, StampFiles
from harness.fleet.usage import UsageMeter, metered
from harness.fleet.worker_classes import (
    CLASS_NAMES,
    class_options,
    effective_class,
    interface,
    probe_module,
)
from harness.fleet.workers import address_seen, probe_workers
from harness.host.docker import logs, one_line, sdk_client
from harness.host.ports import LOOPBACK
from harness.host.resources import listen_backlog

PROBE_PACKAGE = "throttle_harness_probe"
PROBE_MOUNT = "/throttle-harness/probe"
STATUS_MOUNT = "/throttle-harness/status"
PROBE_FILES = ("probe.py", "probe_asgi.py", "probe_protocol.py", "gunicorn_config.py")
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
class Instance:
    """One gunicorn in one container: the container (docker SDK), where its probe writes, and
    gunicorn's pid inside the container (its workers' parent)."""

    wrapped: Any
    status_dir: Path
    master: str


@dataclass
class ContainerFleet:
    """A running container fleet (a :class:`~harness.fleet.base.Fleet`); instance N (from 1)
    is ``instances[N - 1]``, on ``ports[N - 1]``."""

    host: str
    ports: tuple[int, ...]
    worker_ids: frozenset[str]
    ready_s: float
    image: ImageInfo
    instances: tuple[Instance, ...]
    _stamps: StampFiles = field(init=False)

    def __post_init__(self) -> None:
        self._stamps = StampFiles(sorted({i.status_dir for i in self.instances}))

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


def gunicorn_command(
    spec: FleetSpec, entrypoint: Sequence[str], cmd: Sequence[str]
) -> GunicornCommand:
    """The command to reshape: ``spec.command`` (``--command``), else ``entrypoint`` + ``cmd``
    as the container would run them; UsageError in one line if it does not run gunicorn."""
    where = "--command" if spec.command else f"the command of {spec.image or spec.service}"
    try:
        command = parse_command(spec.command or [*entrypoint, *cmd])
    except CommandError as exc:
        raise UsageError(f"{where}: {exc}") from None
    theirs = value_of(command.owned, "worker_class")
    ours = effective_class(spec.worker_class, spec.threads)
    if theirs is not None and CLASS_NAMES.get(theirs) != ours:
        fits = CLASS_NAMES.get(theirs)
        hint = (
            f"pass --worker-class {fits}"
            if fits
            else "the harness serves sync, gthread, asgi, uvicorn"
        )
        raise UsageError(f"{where} runs gunicorn's worker class {theirs}, not {ours}: {hint}")
    return command


def harness_options(spec: FleetSpec, port: int | None) -> list[str]:
    """The gunicorn options the harness sets after the team's: its config, the binding (none:
    the config claims a port itself) and the shape, sized to the traffic."""
    return [
        *spec.gunicorn_args,
        *["--config", f"python:{PROBE_PACKAGE}.gunicorn_config"],
        *(["--bind", f"{LOOPBACK}:{port}"] if port is not None else []),
        *["--workers", str(spec.workers)],
        *class_options(effective_class(spec.worker_class, spec.threads), spec.threads),
        *["--keep-alive", str(KEEP_ALIVE_S)],
        *["--worker-connections", str(max(1000, spec.connections + 64))],
        *["--backlog", str(listen_backlog(spec.connections))],
    ]


def probe_app(spec: FleetSpec) -> str:
    """The probe's app for gunicorn, WSGI or ASGI as the worker class serves."""
    module = probe_module(effective_class(spec.worker_class, spec.threads))
    return f"{PROBE_PACKAGE}.{module}:application"


def probe_environment(
    spec: FleetSpec, app: str, command: GunicornCommand, env: Mapping[str, str]
) -> dict[str, str]:
    """What the container gets on top of ``env`` (the image's or the service's): the run's
    variables and the probe's, ``PYTHONPATH`` led by the probe, and ``GUNICORN_CMD_ARGS``
    (the run's, else the image's) without the options the harness owns; a config file named
    there is loaded by the probe's config, as gunicorn would load it."""
    merged = {**env, **spec.env}
    path = [PROBE_MOUNT, merged.get("PYTHONPATH", "")]
    cmd_args = merged.get("GUNICORN_CMD_ARGS", "")
    config = command.config or value_of(shlex.split(cmd_args), "config")
    added = {
        **spec.env,
        "PYTHONPATH": ":".join(p for p in path if p),
        TARGET_ENV: app,
        INTERFACE_ENV: interface(effective_class(spec.worker_class, spec.threads)),
        STATUS_DIR_ENV: STATUS_MOUNT,
        USER_CONFIG_ENV: config or "default",
    }
    if cmd_args:
        added["GUNICORN_CMD_ARGS"] = without_owned(cmd_args)
    return added


def image_env(image: Any) -> dict[str, str]:
    """An image's environment (``Config.Env``)."""
    config = image.attrs.get("Config") or {}
    return dict(e.partition("=")[::2] for e in config.get("Env") or [])


def image_info(image: Any, name: str) -> ImageInfo:
    """The image as reports name it: ``name``, and the registry's digest, else the image id."""
    return ImageInfo(name, (image.attrs.get("RepoDigests") or [image.id])[0])


def the_app(spec: FleetSpec, command: GunicornCommand) -> str:
    app = spec.app or command.app
    if not app:
        raise UsageError(
            f"the command of {spec.image or spec.service} names no app: pass --app MODULE:CALLABLE"
        )
    return app


def write_probe(folder: Path) -> None:
    """The probe as a package of its own (standard library only), readable by any user."""
    package = folder / PROBE_PACKAGE
    package.mkdir()
    (package / "__init__.py").write_text('"""throttle-harness\'s probe, mounted read-only."""\n')
    for name in PROBE_FILES:
        shutil.copyfile(Path(__file__).with_name(name), package / name)
    for path in [folder, package, *package.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def prepare_status_dir(status_dir: Path) -> None:
    """The folders the probe writes in, writable by the image's user, whoever it is."""
    for folder in (status_dir, status_dir / STAMPS_DIR, status_dir / INSTANCES_DIR):
        folder.mkdir(exist_ok=True)
        folder.chmod(0o777)


def wait_for_workers(
    spec: FleetSpec, port: int, alive: Callable[[], None], what: str
) -> tuple[str, frozenset[str]]:
    """Probe ``port`` until ``spec.workers`` distinct workers of one gunicorn answer: (its pid,
    their ids). ``alive()`` raises once a container has exited."""
    seen: dict[str, str] = {}
    deadline = time.monotonic() + READY_TIMEOUT_S
    round_size = 2 * spec.workers * spec.threads
    while time.monotonic() < deadline:
        alive()
        answered = probe_workers(LOOPBACK, port, round_size)
        seen |= answered
        parents = set(seen.values())
        if len(parents) > 1:
            raise FleetStartError(
                f"port {port} is answered by workers of {len(parents)} servers, not only "
                f"{what}'s gunicorn: another server on the port?"
            )
        if len(seen) >= spec.workers:
            check_source_address(port, what)
            return parents.pop(), frozenset(seen)
        if not answered:
            time.sleep(0.05)  # not listening yet
    raise FleetStartError(
        f"only {len(seen)} of {spec.workers} gunicorn workers of {what} answered within "
        f"{READY_TIMEOUT_S:g}s"
    )


def check_source_address(port: int, what: str) -> None:
    """The app must see each burst's own source address (an address-keyed throttle keys on
    it): ask the probe which address it sees for a connection from a fresh loopback one."""
    x, y, z = (secrets.randbelow(254) + 1 for _ in range(3))
    source = f"127.{x}.{y}.{z}"
    seen = address_seen(LOOPBACK, port, source)
    if seen != source:
        raise FleetStartError(
            f"the app in {what} sees a connection from {source} as coming from "
            f"{seen or 'nowhere'}: every client would be one to an address-keyed throttle"
        )


def exited(wrapped: Any, app: str, status_dir: Path, what: str) -> Exception | None:
    """Why the container has stopped (None while it runs): the app's import error if the
    probe left one, else its exit code and last log line."""
    wrapped.reload()
    if wrapped.status in ("created", "running"):
        return None
    tail = logs(wrapped, lines=40)
    app_error = status_dir / APP_ERROR_FILE
    if app_error.exists():
        reason = app_error.read_text().strip()
        return AppLoadError(f"app {app!r} failed to load: {reason}", detail=tail)
    code = (wrapped.attrs.get("State") or {}).get("ExitCode")
    last = next((ln for ln in reversed(tail.splitlines()) if ln.strip()), "no output")
    return FleetStartError(
        f"{what} exited with code {code} before serving: {one_line(last)}", detail=tail
    )


def local_or_pulled(name: str, flag: str) -> Any:
    """The image (docker SDK), pulled if it is not here; FleetStartError in one line if neither."""
    client = sdk_client()
    try:
        try:
            return client.images.get(name)
        except Exception as missing:
            if getattr(getattr(missing, "response", None), "status_code", None) != 404:
                raise FleetStartError(f"{flag} {name}: {one_line(missing)}") from None
        try:
            return client.images.pull(name)
        except Exception as exc:
            if getattr(getattr(exc, "response", None), "status_code", None) == 404:
                raise UsageError(f"{flag} {name}: no such image here or in its registry") from None
            raise FleetStartError(
                f"{flag} {name} is not present locally and could not be pulled ({one_line(exc)})"
            ) from None
    finally:
        client.close()
