"""``--compose FILE --service NAME``: the team's compose file, brought up by the compose tool this
machine has (:mod:`harness.fleet.compose_tool`) under a project name of the harness's own; the
named service's containers are the fleet, scaled to ``--instances``.

1. The tool resolves the file (``config``): interpolation, ``env_file``, relative paths are
   compose's business. The harness writes the resolved project back with two changes: only
   the service and what it depends on (transitively) are kept (a proxy in front of it, or a
   Celery worker, is not what is measured), and the service is reshaped as ``--image`` would
   run it: its own gunicorn command with the harness's shape, the probe mounted, the host's
   network (:mod:`harness.fleet.container_fleet`).
2. ``up -d`` the dependencies (a database, a one-shot set-up job, their Redis); the harness
   waits until each runs (healthy, if it has a health check), and each one-shot job has
   exited 0.
3. The service runs in the host's network to keep each burst's source address, so it cannot
   resolve the project's service names itself: each dependency's name, container name and
   aliases are mapped to its address in the project's network (``extra_hosts``; a Linux host
   routes to its own bridge networks).
4. ``up -d --no-deps --scale SERVICE=M SERVICE``: one command for every replica, so the
   probe's gunicorn config claims the first free port of the harness's M ports itself (a bind
   is atomic), and the instance number that port stands for.
5. ``down -v --remove-orphans`` on exit, whatever happens; the reaper removes the project's
   containers, networks and volumes if the harness is killed first.

The app gets the harness's Redis in ``REDIS_URL`` (replacing the file's value), as everywhere.
"""

from __future__ import annotations

import json
import logging
import secrets
import shlex
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import FleetStartError, UsageError
from harness.fleet.base import FleetSpec
from harness.fleet.command import GunicornCommand
from harness.fleet.compose_dependencies import dependencies, hosts, wait_for_dependencies
from harness.fleet.compose_tool import ComposeTool, compose_tool
from harness.fleet.container_fleet import (
    CONTAINER_LABEL,
    PROBE_MOUNT,
    STATUS_MOUNT,
    ContainerFleet,
    Instance,
    exited,
    gunicorn_command,
    harness_options,
    image_env,
    image_info,
    local_or_pulled,
    prepare_status_dir,
    probe_app,
    probe_environment,
    the_app,
    wait_for_workers,
    write_probe,
)
from harness.fleet.probe_protocol import INSTANCES_DIR, INTERPRETER_FILE, PORTS_ENV
from harness.host.cleanup import COMPOSE_PROJECT_LABEL, on_death_remove_project, temp_dir
from harness.host.docker import engine_is_local, engine_unavailable, one_line, sdk_client
from harness.host.ports import LOOPBACK, free_port, port_is_free

SERVICE_LABEL = "com.docker.compose.service"
NUMBER_LABEL = "com.docker.compose.container-number"
# Keys of the service that cannot go with the host's network or with several replicas, or
# that would build or pull again what the harness already has (the image, by id).
DROPPED = {"networks", "ports", "links", "external_links", "container_name", "hostname"}
DROPPED |= {"domainname", "mac_address", "network_mode", "scale", "expose", "restart"}
DROPPED |= {"build", "pull_policy", "deploy"}
PID_NAMESPACE = "import os; print(os.stat('/proc/self/ns/pid').st_ino)"

_log = logging.getLogger(__name__)


@dataclass
class _Project:
    """The team's project, resolved, and the harness's version of it."""

    spec: FleetSpec
    name: str
    folder: Path  # the harness's: the project file, the probe, the status dir
    config: dict[str, Any]
    tool: ComposeTool
    built: str | None = None  # an image the harness had compose build and tag
    hosts: list[str] = field(default_factory=list)  # extra_hosts for the service

    @property
    def service(self) -> str:
        return self.spec.service or ""

    @property
    def file(self) -> Path:
        return self.folder / "compose.json"

    @property
    def status_dir(self) -> Path:
        return self.folder / "status"

    @property
    def probe_dir(self) -> Path:  # readable by any user; the folder (and its secrets) is not
        return self.folder / "probe"

    @property
    def what(self) -> str:
        return f"service {self.service} of {self.spec.compose}"

    def run(self, *args: str, timeout_s: float = 300.0) -> str:
        return self.tool.run(self.name, [self.file], args, timeout_s)

    def containers(self, service: str) -> list[Any]:
        client = sdk_client()
        try:
            labels = [f"{COMPOSE_PROJECT_LABEL}={self.name}", f"{SERVICE_LABEL}={service}"]
            found = client.containers.list(all=True, filters={"label": labels})
            return sorted(found, key=lambda c: int(c.labels.get(NUMBER_LABEL, "0")))
        finally:
            client.close()


@contextmanager
def compose_fleet(spec: FleetSpec) -> Iterator[ContainerFleet]:
    """Bring the project up with the service scaled to ``spec.instances``; down on exit."""
    started = time.monotonic()
    tool = compose_tool()
    why_not = engine_unavailable()
    if why_not is None and not engine_is_local():
        why_not = "host networking needs the Docker engine on this machine (DOCKER_HOST is remote)"
    if why_not is not None:
        raise FleetStartError(f"--compose: {why_not}")
    source = Path(spec.compose or "")
    if not source.is_file():
        raise UsageError(f"--compose {source}: no such file")
    name = f"throttle-harness-{secrets.token_hex(4)}"
    with ExitStack() as stack:
        folder = stack.enter_context(temp_dir("throttle-harness-compose-"))
        config = tool.config(name, [source.resolve()])
        project = _Project(spec, name, folder, config, tool)
        forget = on_death_remove_project(name)
        try:
            yield _up(project, started)
        finally:
            _down(project, forget)


def _up(project: _Project, started: float) -> ContainerFleet:
    spec = project.spec
    services = project.config.get("services") or {}
    if project.service not in services:
        raise UsageError(
            f"--service {project.service}: {spec.compose} has no such service "
            f"(it has: {', '.join(sorted(services))})"
        )
    service = services[project.service]
    deps = dependencies(services, project.service)
    image = _build_or_find_image(project, service)
    command = _command(spec, service, image)
    app = the_app(spec, command)
    first_port = _free_ports(spec)
    project.probe_dir.mkdir()
    write_probe(project.probe_dir)
    prepare_status_dir(project.status_dir)
    reshaped = _reshaped(project, service, image, command, app, first_port)
    _write(project, deps, reshaped)
    if deps:
        project.run("up", "-d", *deps)
        wait_for_dependencies(project.containers, deps, service)
        project.hosts = hosts(project.containers, deps)
        _write(project, deps, {**reshaped, "extra_hosts": _extra_hosts(service, project.hosts)})
    project.run(
        "up", "-d", "--no-deps", "--scale", f"{project.service}={spec.instances}", project.service
    )
    return _ready(project, app, first_port, image, started)


def _build_or_find_image(project: _Project, service: Mapping[str, Any]) -> Any:
    """The service's image: built by compose when the service says ``build`` (tagged by the
    harness unless the service names its image), else local or pulled."""
    if "build" in service:
        if not service.get("image"):
            project.built = f"{project.name}-{project.service}:harness"
        project.config["services"][project.service] = {
            **service,
            "image": service.get("image") or project.built,
        }
        _write(project, [], project.config["services"][project.service])
        project.run("build", project.service, timeout_s=1800)
        return local_or_pulled(str(service.get("image") or project.built), "--compose")
    return local_or_pulled(str(service.get("image", "")), f"--compose service {project.service}:")


def _command(spec: FleetSpec, service: Mapping[str, Any], image: Any) -> GunicornCommand:
    """As the container would run: the service's entrypoint, else the image's; the
    service's command, else (unless the service set an entrypoint) the image's."""
    config = image.attrs.get("Config") or {}
    entrypoint = _words(service.get("entrypoint"))
    cmd = _words(service.get("command"))
    if entrypoint is None:
        entrypoint = list(config.get("Entrypoint") or ())
        cmd = cmd if cmd is not None else list(config.get("Cmd") or ())
    return gunicorn_command(spec, entrypoint, cmd or [])


def _words(value: Any) -> list[str] | None:
    """A compose command: a list, or a string split as compose splits it (no shell)."""
    if value is None:
        return None
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def _free_ports(spec: FleetSpec) -> int:
    """The first of ``spec.instances`` free consecutive loopback ports."""
    for _ in range(50):
        first = spec.port if spec.port is not None else free_port()
        if all(port_is_free(first + n) for n in range(spec.instances)):
            return first
        if spec.port is not None:
            break
    raise FleetStartError(f"no {spec.instances} free consecutive ports on {LOOPBACK}")


def _reshaped(
    project: _Project,
    service: Mapping[str, Any],
    image: Any,
    command: GunicornCommand,
    app: str,
    first: int,
) -> dict[str, Any]:
    """The service as the harness runs it (see the module's docstring)."""
    spec = project.spec
    theirs = {k: str(v) for k, v in _mapping(service.get("environment")) if v is not None}
    ours = probe_environment(spec, app, command, {**image_env(image), **theirs})
    ours[PORTS_ENV] = f"{LOOPBACK}:{first}:{spec.instances}"
    # Compose interpolates the file again: a literal $ of the harness's (a password, say) is $$.
    env = {**theirs, **{k: v.replace("$", "$$") for k, v in ours.items()}}
    argv = command.argv(harness_options(spec, None), probe_app(spec))
    deploy = {k: v for k, v in (service.get("deploy") or {}).items() if k != "replicas"}
    mounts = [f"{project.probe_dir}:{PROBE_MOUNT}:ro", f"{project.status_dir}:{STATUS_MOUNT}:rw"]
    return {
        **{k: v for k, v in service.items() if k not in DROPPED},
        **({"deploy": deploy} if deploy else {}),  # its resource limits, not its replicas
        "image": image.id,
        "network_mode": "host",
        "entrypoint": argv[:1],
        "command": argv[1:],
        "environment": env,
        "volumes": [*(service.get("volumes") or []), *mounts],
        "labels": {**dict(_mapping(service.get("labels"))), CONTAINER_LABEL: "compose"},
        "restart": "no",
        "extra_hosts": _extra_hosts(service, []),
    }


def _mapping(value: Any) -> list[tuple[str, Any]]:
    """A compose mapping given as a dict or as a list of ``KEY=VALUE``."""
    if isinstance(value, dict):
        return list(value.items())
    return [(k, v) for k, _, v in (str(item).partition("=") for item in value or [])]


def _extra_hosts(service: Mapping[str, Any], ours: list[str]) -> list[str]:
    theirs = service.get("extra_hosts") or []
    if isinstance(theirs, dict):
        theirs = [f"{host}:{ip}" for host, ip in theirs.items()]
    return [*theirs, *ours]


def _write(project: _Project, deps: list[str], service: dict[str, Any]) -> None:
    """The harness's project file: the service (as given) and its dependencies, as resolved."""
    services = project.config["services"]
    kept = {name: services[name] for name in deps}
    config = {**project.config, "services": {**kept, project.service: service}}
    project.file.write_text(json.dumps(config, indent=2))


def _ready(project: _Project, app: str, first: int, image: Any, started: float) -> ContainerFleet:
    """Every replica's workers answering on its port: the fleet."""
    spec = project.spec
    containers = project.containers(project.service)

    def alive() -> None:
        for container in containers:
            problem = exited(container, app, project.status_dir, project.what)
            if problem is not None:
                raise problem

    masters: list[str] = []
    ids: set[str] = set()
    ports = tuple(first + n for n in range(spec.instances))
    for port in ports:
        master, workers = wait_for_workers(spec, port, alive, project.what)
        masters.append(master)
        ids |= workers
    by_instance = _by_instance(project, containers)
    instances = tuple(
        Instance(by_instance[n], project.status_dir, masters[n - 1])
        for n in range(1, spec.instances + 1)
    )
    built = f"built for service {project.service} of {spec.compose}"
    name = built if project.built else (image.tags[0] if image.tags else image.id)
    ready_s = time.monotonic() - started
    return ContainerFleet(
        LOOPBACK, ports, frozenset(ids), ready_s, image_info(image, name), instances
    )


def _by_instance(project: _Project, containers: list[Any]) -> dict[int, Any]:
    """Which container holds which instance: the pid namespace each instance's gunicorn wrote,
    against each container's (read from inside it)."""
    if len(containers) == 1:
        return {1: containers[0]}
    folder = project.status_dir / INSTANCES_DIR
    claimed = {int(p.name): p.read_text().strip() for p in folder.iterdir()}
    python = (project.status_dir / INTERPRETER_FILE).read_text().strip()
    found: dict[int, Any] = {}
    for container in containers:
        code, out = container.exec_run([python, "-c", PID_NAMESPACE])
        namespace = out.decode(errors="replace").strip()
        found |= {n: container for n, ns in claimed.items() if code == 0 and ns == namespace}
    if len(found) != len(containers):
        raise FleetStartError(f"--compose: could not tell which replica of {project.what} is which")
    return found


def _down(project: _Project, forget: Any) -> None:
    if not project.file.exists():
        forget()  # nothing was brought up
        return
    try:
        project.run("down", "-v", "--remove-orphans", "-t", "0")
    except FleetStartError as exc:  # the reaper tries again when the harness exits
        _log.warning("compose project %s: %s", project.name, exc.message)
        return
    if project.built:
        client = sdk_client()
        try:
            client.images.remove(project.built, force=True)
        except Exception as exc:
            _log.warning("could not remove the image %s: %s", project.built, one_line(exc))
        finally:
            client.close()
    forget()
