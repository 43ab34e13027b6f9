"""What a compose service depends on: which services, transitively, in the order to start them;
when they are ready (running, healthy if they have a health check, a one-shot job exited 0);
and the ``NAME:ADDRESS`` lines that let a service in the host's network reach them by name."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from harness.errors import FleetStartError
from harness.host.docker import logs, one_line

DEPENDENCY_TIMEOUT_S = 120.0
Containers = Callable[[str], list[Any]]  # a service's containers (docker SDK), by its name


def dependencies(services: Mapping[str, Any], name: str) -> list[str]:
    """What ``name`` depends on, transitively, in the order to start them."""
    found: list[str] = []

    def visit(service: str) -> None:
        for dep in services[service].get("depends_on") or {}:
            if dep not in found and dep in services:
                visit(dep)
                found.append(dep)

    visit(name)
    return found


def wait_for_dependencies(
    containers: Containers, deps: list[str], service: Mapping[str, Any]
) -> None:
    """Until every dependency runs (healthy, if it has a health check) and every one-shot job
    the service waits for has exited 0."""
    conditions = service.get("depends_on") or {}
    deadline = time.monotonic() + DEPENDENCY_TIMEOUT_S
    waiting = list(deps)
    while waiting:
        name = waiting[0]
        condition = (
            conditions.get(name, {}).get("condition") if isinstance(conditions, dict) else None
        )
        if _dependency_ready(containers, name, condition):
            waiting.pop(0)
            continue
        if time.monotonic() > deadline:
            raise FleetStartError(
                f"--compose: service {name} was not ready within {DEPENDENCY_TIMEOUT_S:g}s"
            )
        time.sleep(0.1)


def _dependency_ready(containers: Containers, name: str, condition: str | None) -> bool:
    found = containers(name)
    if not found:
        return False
    for container in found:
        state = container.attrs.get("State") or {}
        if state.get("Status") == "exited":
            if state.get("ExitCode") != 0:
                tail = logs(container)
                last = next((ln for ln in reversed(tail.splitlines()) if ln.strip()), "no output")
                raise FleetStartError(
                    f"--compose: service {name} exited with code {state.get('ExitCode')}: "
                    f"{one_line(last)}",
                    detail=tail,
                )
            continue
        if condition == "service_completed_successfully":
            return False
        health = (state.get("Health") or {}).get("Status")
        if health not in (None, "healthy") or state.get("Status") != "running":
            return False
    return True


def hosts(containers: Containers, deps: list[str]) -> list[str]:
    """``NAME:ADDRESS`` for each running dependency's service name, container name and
    aliases, at its address in the project's network."""
    hosts: list[str] = []
    for name in deps:
        for container in containers(name):
            networks = (container.attrs.get("NetworkSettings") or {}).get("Networks") or {}
            for network in networks.values():
                address = network.get("IPAddress")
                if not address:
                    continue
                names = {name, container.name, *(network.get("Aliases") or [])}
                hosts += [f"{n}:{address}" for n in sorted(names)]
                break
    return hosts
