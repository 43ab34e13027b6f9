"""``--image``: each instance a container of the team's image, started and removed through
testcontainers, running the image's own gunicorn command (or ``--command``) reshaped by the
harness (:mod:`harness.fleet.container_fleet` says how the probe, networking and
environment work). The container's environment is the image's plus the run's and the
probe's; nothing of the harness's own environment leaks in.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import FleetStartError
from harness.fleet.base import FleetSpec
from harness.fleet.command import GunicornCommand
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
from harness.fleet.probe_protocol import INSTANCE_ENV
from harness.host.cleanup import on_death_remove_container, temp_dir
from harness.host.docker import (
    container_class,
    engine_is_local,
    engine_unavailable,
    one_line,
    reaper_missing,
    remove_container,
)
from harness.host.ports import LOOPBACK, free_port, port_is_free


@dataclass(frozen=True)
class _Run:
    """What one instance's container runs."""

    spec: FleetSpec
    image: Any  # the docker SDK image
    command: GunicornCommand
    app: str
    probe_dir: Path
    port: int
    instance: str

    @property
    def what(self) -> str:
        return f"the {self.spec.image} container"

    def argv(self) -> list[str]:
        return self.command.argv(harness_options(self.spec, self.port), probe_app(self.spec))

    def environment(self) -> dict[str, str]:
        env = probe_environment(self.spec, self.app, self.command, image_env(self.image))
        if self.spec.instances > 1:
            env[INSTANCE_ENV] = self.instance
        return env


@contextmanager
def image_fleet(spec: FleetSpec) -> Iterator[ContainerFleet]:
    """Start one container of ``spec.image`` per instance, wait until every worker answers,
    remove every container on exit (and, if the harness dies first, the reaper does)."""
    started = time.monotonic()
    why_not = "testcontainers is missing" if container_class() is None else engine_unavailable()
    if why_not is None and not engine_is_local():
        why_not = "host networking needs the Docker engine on this machine (DOCKER_HOST is remote)"
    if why_not is not None:
        raise FleetStartError(f"--image: {why_not}")
    image = local_or_pulled(spec.image or "", "--image")
    config = image.attrs.get("Config") or {}
    command = gunicorn_command(spec, config.get("Entrypoint") or (), config.get("Cmd") or ())
    app = the_app(spec, command)
    with ExitStack() as stack:
        probe_dir = stack.enter_context(temp_dir("throttle-harness-probe-"))
        write_probe(probe_dir)
        ports: list[int] = []
        instances: list[Instance] = []
        ids: set[str] = set()
        for n in range(1, spec.instances + 1):
            port = spec.port + n - 1 if spec.port is not None else free_port()
            if not port_is_free(port):
                raise FleetStartError(f"port {port} on {LOOPBACK} is in use")
            run = _Run(spec, image, command, app, probe_dir, port, str(n))
            instance, workers = stack.enter_context(_container(run))
            ports.append(port)
            instances.append(instance)
            ids |= workers
        yield ContainerFleet(
            LOOPBACK,
            tuple(ports),
            frozenset(ids),
            time.monotonic() - started,
            image_info(image, spec.image or ""),
            tuple(instances),
        )


@contextmanager
def _container(run: _Run) -> Iterator[tuple[Instance, frozenset[str]]]:
    """One instance's container, once every worker answers; removed on exit."""
    name = f"throttle-harness-app-{secrets.token_hex(6)}"
    forget = on_death_remove_container(name)
    with temp_dir("throttle-harness-fleet-") as private:
        status_dir = private / "status"  # writable by any user: kept in a private folder
        prepare_status_dir(status_dir)
        try:
            wrapped = _started(run, name, status_dir).get_wrapped_container()

            def alive() -> None:
                problem = exited(wrapped, run.app, status_dir, run.what)
                if problem is not None:
                    raise problem

            master, workers = wait_for_workers(run.spec, run.port, alive, run.what)
            yield Instance(wrapped, status_dir, master), workers
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
    container.with_kwargs(
        entrypoint=argv[:1], network_mode="host", labels={CONTAINER_LABEL: "image"}
    )
    try:
        container.start()
    except Exception as exc:
        why = reaper_missing() or one_line(exc)
        raise FleetStartError(f"{run.what} did not start: {why}") from None
    return container
