"""The Docker engine as testcontainers finds it: is one there, a docker SDK client for it, its
errors in one line, and removing a container by name (also from the reaper). Used by every
stage that starts containers: the Redis container and the container fleet.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import time
from typing import Any

INSTALL_HINT = "pip install 'throttle-harness[docker]'"
PING_TIMEOUT_S = 3.0
REMOVE_TIMEOUT_S = 30.0
MESSAGE_LIMIT = 300
LOG_TAIL_LINES = 20
CONNECTION_MODE_HINT = (
    "set TESTCONTAINERS_CONNECTION_MODE=docker_host if the engine publishes ports on this machine"
)

_log = logging.getLogger(__name__)


def engine_unavailable(timeout_s: float = PING_TIMEOUT_S) -> str | None:
    """Why no Docker engine can be used right now (None when one answers a ping).

    The engine is found the way testcontainers finds it (``DOCKER_HOST``, testcontainers'
    ``tc.host`` property, the current docker context), else the docker SDK's default socket.
    """
    if importlib.util.find_spec("docker") is None:
        return f"the docker SDK is not installed ({INSTALL_HINT})"
    host = docker_host()
    try:
        client = sdk_client(timeout_s)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # the SDK raises DockerException, requests and OS errors alike
        return f"no Docker engine answers at {host or 'the default socket'}: {one_line(exc)}"
    return None


def engine_is_local() -> bool:
    """Whether the engine runs on this machine (a unix socket, or a loopback address): host
    networking puts containers on this machine's loopback only then."""
    host = docker_host() or ""
    if not host or host.startswith(("unix://", "npipe://")):
        return True
    netloc = host.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    return netloc in ("localhost", "127.0.0.1", "::1")


def sdk_client(timeout_s: float = REMOVE_TIMEOUT_S) -> Any:
    """A docker SDK client for the engine testcontainers would use."""
    docker: Any = importlib.import_module("docker")
    host = docker_host()
    if host:
        return docker.DockerClient(
            base_url=host, timeout=timeout_s, use_ssh_client=host.startswith("ssh://")
        )
    return docker.from_env(timeout=timeout_s)


def docker_host() -> str | None:
    try:
        from testcontainers.core.docker_client import get_docker_host
    except ImportError:
        return os.environ.get("DOCKER_HOST") or None
    return get_docker_host()


def container_class() -> type[Any] | None:
    """testcontainers' plain container (in every 4.x at the same place)."""
    try:
        from testcontainers.core.container import DockerContainer
    except ImportError:
        return None
    return DockerContainer


def ryuk_image() -> str | None:
    """The reaper image testcontainers starts before any container (None when disabled)."""
    try:
        from testcontainers.core.config import testcontainers_config
    except ImportError:
        return None
    if testcontainers_config.ryuk_disabled:
        return None
    return str(testcontainers_config.ryuk_image)


def reaper_missing() -> str | None:
    """Why testcontainers' own reaper (Ryuk) cannot start here, which it starts before any
    container: its image is neither present nor pullable. None when disabled or present."""
    image = ryuk_image()
    if image is None:
        return None
    client = sdk_client(PING_TIMEOUT_S)
    try:
        client.images.get(image)
        return None
    except Exception:
        return (
            f"testcontainers' reaper {image} is not present here; "
            "set TESTCONTAINERS_RYUK_DISABLED=true where it cannot be pulled"
        )
    finally:
        client.close()


def remove_container(name: str, what: str, attempts: int = 1) -> bool:
    """Remove the container ``name`` (force: it is killed first) with its anonymous volumes;
    whether it is gone (False: the reaper tries again when the harness exits). A client of its
    own: an interrupt may have left the container's client mid-request; with ``attempts`` > 1
    a first "no such container" is retried (a create request may still be in flight)."""
    client = sdk_client(REMOVE_TIMEOUT_S)
    try:
        for attempt in range(attempts):
            if attempt:
                time.sleep(0.25)
            try:
                client.api.remove_container(name, force=True, v=True)
                return True
            except Exception as exc:
                if getattr(getattr(exc, "response", None), "status_code", None) != 404:
                    _log.warning("could not remove %s container %s: %s", what, name, one_line(exc))
                    return False
        return True  # "no such container", every time
    finally:
        client.close()


def logs(wrapped: Any, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` of a (docker SDK) container's output, "" if unreadable."""
    try:
        return str(wrapped.logs(tail=lines).decode("utf-8", "replace"))
    except Exception:
        return ""


def one_line(exc: BaseException | str, limit: int = MESSAGE_LIMIT) -> str:
    """A Docker (or requests) error as one line of at most ``limit`` characters."""
    text = exc if isinstance(exc, str) else (getattr(exc, "explanation", None) or str(exc))
    text = " ".join(str(text or type(exc).__name__).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
