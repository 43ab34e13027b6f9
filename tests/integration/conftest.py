"""Fixtures for the Docker-marked tests: an engine (skipped without one, unless
``THROTTLE_HARNESS_REQUIRE_DOCKER=1`` makes that a failure) and a check for leftover containers.

CI sets ``THROTTLE_HARNESS_REDIS_IMAGE=local/redis:ci TESTCONTAINERS_RYUK_DISABLED=true
TESTCONTAINERS_CONNECTION_MODE=docker_host`` after ``.ci/docker-setup.sh``; for local runs the
``docker_env`` fixture sets those that are unset (the image only when ``local/redis:ci`` exists).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from harness.cli import REQUIRE_DOCKER_ENV
from harness.redis.providers.docker import (
    CONTAINER_LABEL,
    IMAGE_ENV,
    DockerProvider,
    engine_unavailable,
)

REQUIRE_DOCKER = os.environ.get(REQUIRE_DOCKER_ENV) == "1"
CI_IMAGE = "local/redis:ci"


def _skip_or_fail(reason: str) -> None:
    if REQUIRE_DOCKER:
        pytest.fail(f"{reason} (THROTTLE_HARNESS_REQUIRE_DOCKER=1 forbids skipping)")
    pytest.skip(reason)


def _refresh_testcontainers_config() -> None:
    """testcontainers reads some settings when first imported: re-read them from the environment."""
    try:
        from testcontainers.core.config import (
            get_user_overwritten_connection_mode,
            testcontainers_config,
        )
    except ImportError:
        return
    testcontainers_config.connection_mode_override = get_user_overwritten_connection_mode()
    testcontainers_config.ryuk_disabled = os.environ.get(
        "TESTCONTAINERS_RYUK_DISABLED", ""
    ).lower() in ("yes", "true", "t", "y", "1")


@pytest.fixture(scope="session")
def docker_env() -> Iterator[None]:
    """The CI environment, for the variables a local run left unset."""
    patch = pytest.MonkeyPatch()
    patch.setenv(
        "TESTCONTAINERS_RYUK_DISABLED", os.environ.get("TESTCONTAINERS_RYUK_DISABLED", "true")
    )
    patch.setenv(
        "TESTCONTAINERS_CONNECTION_MODE",
        os.environ.get("TESTCONTAINERS_CONNECTION_MODE", "docker_host"),
    )
    if IMAGE_ENV not in os.environ and engine_unavailable() is None and _image_exists(CI_IMAGE):
        patch.setenv(IMAGE_ENV, CI_IMAGE)
    _refresh_testcontainers_config()
    yield
    patch.undo()
    _refresh_testcontainers_config()


@pytest.fixture(scope="session")
def engine(docker_env: None) -> Iterator[Any]:
    """A docker SDK client, once an engine answers and testcontainers is importable."""
    try:
        import docker
    except ImportError:
        _skip_or_fail("the docker SDK is not installed (pip install 'throttle-harness[docker]')")
    why_not = engine_unavailable()
    if why_not is not None:
        _skip_or_fail(f"no Docker engine: {why_not}")
    why_not = DockerProvider().unavailable()
    if why_not is not None:
        _skip_or_fail(f"the docker provider is unavailable: {why_not}")
    client = docker.from_env()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def provider(engine: Any) -> DockerProvider:
    return DockerProvider()


@pytest.fixture
def no_leftovers(engine: Any) -> Iterator[None]:
    """Fail the test if it leaves a container of this provider behind."""
    before = {c.id for c in ours(engine)}
    yield
    left = [c.name for c in ours(engine) if c.id not in before]
    assert not left, f"containers left behind: {left}"


def _image_exists(image: str) -> bool:
    import docker

    client = docker.from_env(timeout=5)
    try:
        client.images.get(image)
        return True
    except docker.errors.DockerException:
        return False
    finally:
        client.close()


def ours(client: Any) -> list[Any]:
    """This provider's containers started by this process (xdist workers each have their own)."""
    from testcontainers.core.labels import LABEL_SESSION_ID, SESSION_ID

    labels = [CONTAINER_LABEL, f"{LABEL_SESSION_ID}={SESSION_ID}"]
    return list(client.containers.list(all=True, filters={"label": labels}, ignore_removed=True))
