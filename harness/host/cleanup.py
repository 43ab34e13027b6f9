"""What the harness leaves on disk or in Docker is removed even if it is killed (SIGKILL).

The harness removes its temporary directories and containers itself, on success, failure and
Ctrl-C. For the one case it cannot handle, its own death, the first registration starts a
*reaper*: one small process (``python -m harness.host.cleanup``), in a session of its own so that a
Ctrl-C in the terminal does not reach it, reading lines from a pipe whose only writer is the
harness. Each thing to remove is registered (a line), and unregistered (a line) once the
harness has removed it itself. When the pipe reaches end-of-file, because the harness exited
in whatever way, the reaper removes whatever is still registered (nothing, after a normal exit)
and exits. A run that registers nothing (a usage error) starts no reaper.

Lines are JSON: ``["add"|"forget", "dir"|"container"|"project", target]`` (a project: a compose
project's containers, networks and volumes, found by compose's project label), each written with one
``write`` (pipes keep writes of up to 4 KiB whole, so a signal cannot split one).
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["on_death_remove_container", "on_death_remove_project", "temp_dir"]
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"

EXIT_WAIT_S = 30.0  # at exit, how long the harness waits for the reaper to finish
DIR_REMOVE_S = 5.0  # how long the reaper retries a directory a dying child still writes to
DOCKER_TIMEOUT_S = 30
_BOOTSTRAP = "import sys; sys.path.append(sys.argv[1]); import harness.host.cleanup as c; c.main()"
_HARNESS_ROOT = str(Path(__file__).resolve().parents[2])

_lock = threading.Lock()
_pipe: int | None = None  # the write end; None until the first registration
_reaper: subprocess.Popen[bytes] | None = None


@contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    """A new private directory (``tempfile.mkdtemp``), removed when the block exits, or by the
    reaper if the harness is killed before it does."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    unregister: Callable[[], None] | None = None
    try:
        unregister = _register("dir", str(path))
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        if unregister is not None and not os.path.lexists(path):
            unregister()  # else the reaper tries again once the harness exits


def on_death_remove_container(name: str) -> Callable[[], None]:
    """Have the reaper remove the Docker container ``name`` (forced, with its anonymous
    volumes) if the harness dies first; call the returned function once it has been removed."""
    return _register("container", name)


def on_death_remove_project(name: str) -> Callable[[], None]:
    """Have the reaper remove the compose project ``name`` (its containers, networks and
    volumes) if the harness dies first; call the returned function once it is down."""
    return _register("project", name)


def _register(kind: str, target: str) -> Callable[[], None]:
    _send("add", kind, target)
    forgotten = False

    def unregister() -> None:
        nonlocal forgotten
        if not forgotten:
            forgotten = True
            _send("forget", kind, target)

    return unregister


def _send(action: str, kind: str, target: str) -> None:
    line = (json.dumps([action, kind, target]) + "\n").encode()
    with _lock:
        global _pipe
        if _pipe is None:
            if action == "forget":
                return
            _pipe = _start_reaper()
        if _pipe < 0:  # no reaper (it could not start, or died): the harness cleans up alone
            return
        try:
            os.write(_pipe, line)
        except OSError:
            os.close(_pipe)
            _pipe = -1


def _start_reaper() -> int:
    global _reaper
    from harness.host.processes import PARENT_ENV  # tests find leftovers by it

    try:
        _reaper = subprocess.Popen(
            [sys.executable, "-P", "-c", _BOOTSTRAP, _HARNESS_ROOT],
            env={**os.environ, PARENT_ENV: str(os.getpid())},
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            bufsize=0,
        )
    except OSError:
        return -1
    assert _reaper.stdin is not None
    fd = os.dup(_reaper.stdin.fileno())  # non-inheritable, like the original
    _reaper.stdin.close()
    atexit.register(_close)
    return fd


def _close() -> None:
    """At exit: end the pipe and wait for the reaper, which removes what is left and exits."""
    global _pipe
    with _lock:
        if _pipe is not None and _pipe >= 0:
            os.close(_pipe)
        _pipe = -1
    if _reaper is not None:
        try:
            _reaper.wait(timeout=EXIT_WAIT_S)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            pass  # it finishes on its own


def main() -> None:
    """The reaper: keep the registrations read from stdin; at end-of-file, remove what is left."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # it exits when the harness does
    registered: dict[tuple[str, str], None] = {}  # ordered: removed in registration order
    for raw in sys.stdin.buffer:
        try:
            action, kind, target = json.loads(raw)
        except (ValueError, TypeError):
            continue
        if action == "add":
            registered[(kind, target)] = None
        else:
            registered.pop((kind, target), None)
    for path in [target for kind, target in registered if kind == "dir"]:
        _remove_dir(path)
    _remove_containers([target for kind, target in registered if kind == "container"])
    _remove_projects([target for kind, target in registered if kind == "project"])


def _remove_dir(path: str) -> None:
    if not os.path.isabs(path):
        return
    deadline = time.monotonic() + DIR_REMOVE_S
    while True:  # a child dying at the same moment may still write a file into it
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.lexists(path) or time.monotonic() > deadline:
            return
        time.sleep(0.1)


def _remove_containers(names: list[str]) -> None:
    if not names:
        return
    try:
        docker: Any = importlib.import_module("docker")
        client = docker.from_env(timeout=DOCKER_TIMEOUT_S)
    except Exception:  # no SDK or no engine: nothing to remove it with
        return
    try:
        for name in names:
            try:
                client.containers.get(name).remove(force=True, v=True)
            except Exception:
                pass
    finally:
        client.close()


def _remove_projects(names: list[str]) -> None:
    """Each compose project's containers (forced, with their anonymous volumes), then its
    networks and volumes, found by compose's project label."""
    if not names:
        return
    try:
        docker: Any = importlib.import_module("docker")
        client = docker.from_env(timeout=DOCKER_TIMEOUT_S)
    except Exception:
        return
    try:
        for name in names:
            label = {"label": f"{COMPOSE_PROJECT_LABEL}={name}"}
            _remove_each(
                client.containers.list, {"all": True, "filters": label}, {"force": True, "v": True}
            )
            _remove_each(client.networks.list, {"filters": label}, {})
            _remove_each(client.volumes.list, {"filters": label}, {})
    finally:
        client.close()


def _remove_each(
    listed: Callable[..., list[Any]], filters: dict[str, Any], how: dict[str, Any]
) -> None:
    try:
        found = listed(**filters)
    except Exception:
        return
    for item in found:
        try:
            item.remove(**how)
        except Exception:
            pass


if __name__ == "__main__":
    main()
