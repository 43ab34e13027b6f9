"""``docker[:IMAGE]``: a throwaway Redis container, started through testcontainers.

The container runs ``redis-server`` with a random password and no persistence, publishes its
port on 127.0.0.1 only (a random host port), and is removed (with its anonymous volumes) when
the context exits: normally, on an exception, or on KeyboardInterrupt. It carries a unique name
so that it can be removed even if a start was interrupted half-way.

The image is, in order: the one given (``--redis docker:IMAGE``), ``$THROTTLE_HARNESS_REDIS_IMAGE``,
or :data:`DEFAULT_IMAGE`, pulled when it is not present locally.

testcontainers' own configuration applies as is (``DOCKER_HOST``, ``TESTCONTAINERS_RYUK_DISABLED``,
``TESTCONTAINERS_CONNECTION_MODE``, ``TC_HOST``, ``~/.testcontainers.properties``). The harness only
talks to loopback addresses, so when testcontainers would reach the container any other way
(for instance through the bridge gateway, which it picks when it believes it runs inside a
container) the provider refuses with a hint instead of starting anything.

Every failure to start (no engine, image neither local nor pullable, container exits, Redis never
answers) is a :class:`~harness.errors.RedisUnavailable` with a one-line message (exit code 3);
the container's log tail, when there is one, goes in ``detail``.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import redis

from harness.errors import RedisUnavailable
from harness.host.cleanup import on_death_remove_container
from harness.host.docker import (
    CONNECTION_MODE_HINT,
    INSTALL_HINT,
    PING_TIMEOUT_S,
    container_class,
    engine_unavailable,
    logs,
    one_line,
    remove_container,
    ryuk_image,
)
from harness.host.ports import LOOPBACK, free_port
from harness.redaction import redact_secrets
from harness.redis.providers.base import RedisServer, server_version
from harness.redis.providers.redis_url import is_loopback

__all__ = ["DEFAULT_IMAGE", "IMAGE_ENV", "DockerProvider", "engine_unavailable"]

DEFAULT_IMAGE = "redis:7-alpine"
IMAGE_ENV = "THROTTLE_HARNESS_REDIS_IMAGE"
CONTAINER_LABEL = "org.throttle-harness.provider"
"""Label set on every container this provider starts (value ``docker``)."""

READY_TIMEOUT_S = 30.0
_REDIS_PORT = 6379
_POLL_S = 0.02


class DockerProvider:
    """Starts a private Redis container; see the module docstring."""

    name = "docker"

    def __init__(self, image: str | None = None) -> None:
        self._image = image or None

    @property
    def image(self) -> str:
        """The image :meth:`open` starts: explicit, else ``$THROTTLE_HARNESS_REDIS_IMAGE``, else
        :data:`DEFAULT_IMAGE`."""
        return self._image or os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE

    def unavailable(self) -> str | None:
        if container_class() is None:
            return f"testcontainers is not installed ({INSTALL_HINT})"
        why_not = engine_unavailable()
        if why_not is not None:
            return why_not
        try:
            client = _testcontainers_client()
        except Exception as exc:
            return f"no Docker engine answers: {one_line(exc)}"
        try:
            return _not_loopback(client)
        finally:
            client.client.close()

    def open(self) -> AbstractContextManager[RedisServer]:
        found = container_class()
        if found is None:
            raise RedisUnavailable(
                f"--redis docker: testcontainers is not installed ({INSTALL_HINT})"
            )
        return _running_container(found, self.image)


def _redis_argv(password: str) -> list[str]:
    """The container's command: a password, nothing written to disk."""
    return ["redis-server", "--requirepass", password, "--save", "", "--appendonly", "no"]


@contextmanager
def _running_container(container_class: type[Any], image: str) -> Iterator[RedisServer]:
    password = secrets.token_hex(16)
    name = f"throttle-harness-redis-{secrets.token_hex(6)}"
    container: Any = None
    forget = on_death_remove_container(name)  # removed even if the harness is killed
    try:
        try:
            container = container_class(image)
        except Exception as exc:  # constructing it asks the engine for its API version
            raise RedisUnavailable(
                f"--redis docker: no Docker engine answers: {one_line(exc)}"
            ) from None
        problem = _not_loopback(container.get_docker_client())
        if problem is not None:
            raise RedisUnavailable(f"--redis docker: {problem}")

        container.with_name(name)
        container.with_command(_redis_argv(password))
        container.with_kwargs(labels={CONTAINER_LABEL: "docker"})
        # Publish on 127.0.0.1 only (docker SDK binding syntax), on a free port chosen here:
        # one the engine picked would change when the container restarts (the redis-restart
        # fault), and the app's REDIS_URL with it.
        container.ports[str(_REDIS_PORT)] = (LOOPBACK, free_port())

        try:
            container.start()
        except Exception as exc:
            raise _start_failure(container, image, exc) from None

        url = _wait_ready(container, image, password)
        try:
            version = server_version(url)
        except redis.exceptions.RedisError as exc:
            raise RedisUnavailable(
                f"--redis docker: {image} stopped answering: {redact_secrets(str(exc), url)}",
                detail=logs(container.get_wrapped_container()),
            ) from None

        def restart() -> None:
            try:
                container.get_wrapped_container().restart(timeout=1)
            except Exception as exc:  # the docker SDK's and requests' errors alike
                raise RedisUnavailable(
                    f"--redis docker: {image} could not be restarted: {one_line(exc)}"
                ) from None
            if _wait_ready(container, image, password) != url:
                raise RedisUnavailable(
                    f"--redis docker: {image} came back on another port after a restart"
                )

        yield RedisServer(url=url, provider="docker", owned=True, version=version, restart=restart)
    finally:
        if container is not None:
            # Interrupted while the create request was in flight: the engine may still be
            # creating the container, so a first "no such container" is not the last word.
            in_flight = getattr(container, "_container", None) is None and isinstance(
                sys.exc_info()[1], KeyboardInterrupt
            )
            if remove_container(name, "Redis", attempts=4 if in_flight else 1):
                forget()
        else:
            forget()  # never created


def _wait_ready(container: Any, image: str, password: str) -> str:
    """The Redis URL once PING answers; RedisUnavailable if the container exits or never answers."""
    wrapped = container.get_wrapped_container()
    _check_running(wrapped, image)
    host = container.get_container_host_ip()
    if not is_loopback(host):
        raise RedisUnavailable(
            f"--redis docker: testcontainers reaches the container at {host}, not a loopback "
            f"address; {CONNECTION_MODE_HINT}"
        )
    try:
        port = int(container.get_docker_client().port(wrapped.id, _REDIS_PORT))
    except Exception as exc:
        _check_running(wrapped, image)
        raise RedisUnavailable(
            f"--redis docker: {image} published no port for {_REDIS_PORT}: {one_line(exc)}"
        ) from None
    url = f"redis://:{password}@{LOOPBACK}:{port}/0"
    # retry=None: this loop is the retry. (redis-py 8's Redis(host=...) retries a failed
    # connection, AuthenticationError included, with backoff for ~4 s per call by default.)
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1, retry=None)
    deadline = time.monotonic() + READY_TIMEOUT_S
    try:
        while True:
            try:
                if client.ping():
                    return url
            except redis.exceptions.AuthenticationError as exc:  # a ConnectionError subclass
                raise RedisUnavailable(
                    f"--redis docker: {image} did not accept the password it was started with: "
                    f"{one_line(exc)}",
                    detail=logs(wrapped),
                ) from None
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                pass  # not listening yet (docker-proxy accepts, then drops the connection)
            except redis.exceptions.RedisError as exc:
                raise RedisUnavailable(
                    f"--redis docker: {image} answered, but not as a Redis with our password: "
                    f"{one_line(exc)}",
                    detail=logs(wrapped),
                ) from None
            _check_running(wrapped, image)
            if time.monotonic() > deadline:
                raise RedisUnavailable(
                    f"--redis docker: {image} did not answer PING within {READY_TIMEOUT_S:.0f}s",
                    detail=logs(wrapped),
                )
            time.sleep(_POLL_S)
    finally:
        client.close()


def _check_running(wrapped: Any, image: str) -> None:
    wrapped.reload()
    if wrapped.status in ("created", "running", "restarting"):
        return
    code = wrapped.attrs.get("State", {}).get("ExitCode")
    tail = logs(wrapped)
    last = tail.strip().splitlines()[-1] if tail.strip() else "no output"
    raise RedisUnavailable(
        f"--redis docker: the {image} container {wrapped.status} (exit code {code}): "
        f"{one_line(last)}",
        detail=tail,
    )


def _start_failure(container: Any, image: str, exc: Exception) -> RedisUnavailable:
    reason = one_line(exc)
    wrapped = getattr(container, "_container", None)
    if wrapped is not None:  # created (and maybe started) before it failed
        try:
            _check_running(wrapped, image)
        except RedisUnavailable as exited:
            return exited
        except Exception:
            pass
        return RedisUnavailable(
            f"--redis docker: {image} did not start: {reason}", detail=logs(wrapped)
        )
    reaper = ryuk_image()  # testcontainers starts its reaper first, unless disabled
    if reaper is not None and not _image_present(container, reaper):
        return RedisUnavailable(
            f"--redis docker: testcontainers' reaper {reaper} did not start ({reason}); "
            "set TESTCONTAINERS_RYUK_DISABLED=true where it cannot be pulled"
        )
    if not _image_present(container, image):
        return RedisUnavailable(
            f"--redis docker: image {image} is not present locally and could not be pulled "
            f"({reason}); pull or build it, or name a local image with docker:IMAGE or {IMAGE_ENV}"
        )
    return RedisUnavailable(f"--redis docker: {image} did not start: {reason}")


def _not_loopback(tc_client: Any) -> str | None:
    """Why testcontainers would not reach a container over loopback (None when it would)."""
    get_mode = getattr(tc_client, "get_connection_mode", None)
    if get_mode is not None:  # older testcontainers lack it: checked after start instead
        mode = get_mode()
        if mode.value != "docker_host":
            return (
                f"testcontainers would reach the container through the Docker network "
                f"({mode.value} mode, as it believes it runs inside a container), not a loopback "
                f"address; {CONNECTION_MODE_HINT}"
            )
    host = tc_client.host()
    if host and not is_loopback(host):
        return (
            f"the Docker host {host} is not a loopback address (the harness only talks to "
            f"127.0.0.1/::1); use an engine on this machine or {CONNECTION_MODE_HINT}"
        )
    return None


def _image_present(container: Any, image: str) -> bool:
    try:
        container.get_docker_client().client.images.get(image)
        return True
    except Exception:
        return False


def _testcontainers_client() -> Any:
    from testcontainers.core.docker_client import DockerClient

    return DockerClient(timeout=PING_TIMEOUT_S)
