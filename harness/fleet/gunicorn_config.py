"""gunicorn's configuration under the harness (``-c python:harness.fleet.gunicorn_config``, or the
same module mounted into a container).

For local processes, naming a config module keeps gunicorn from reading the user's
``./gunicorn.conf.py`` (a ``daemon = True``, a pidfile or hooks there would otherwise apply
silently); the harness also drops ``GUNICORN_CMD_ARGS`` from gunicorn's environment. Everything
else comes as flags.

In a container of the team's image the team's configuration is part of what ships: when
``THROTTLE_HARNESS_USER_CONFIG`` names it (their ``-c`` value, ``python:MODULE`` or a file; or
``default``: ``./gunicorn.conf.py`` if the image has one) it is loaded here first, its hooks
kept, with daemonizing and a pid file turned off; the harness's flags still set the binding and
the worker shape, as gunicorn's command line wins over a config file.
"""

from __future__ import annotations

import importlib
import os
import socket
from pathlib import Path
from typing import Any

from .probe_protocol import (
    INSTANCE_ENV,
    INSTANCES_DIR,
    PORTS_ENV,
    PROBE_PATH,
    STATUS_DIR_ENV,
    USER_CONFIG_ENV,
)


def _user_config(name: str) -> dict[str, Any]:
    """The settings of the user's config: a ``python:MODULE`` or a file (``default``: gunicorn's
    own default file, when present)."""
    if name.startswith("python:"):
        module = importlib.import_module(name.removeprefix("python:"))
        return {k: v for k, v in vars(module).items() if not k.startswith("_")}
    path = "gunicorn.conf.py" if name == "default" else name
    if name == "default" and not os.path.exists(path):
        return {}
    namespace: dict[str, Any] = {"__file__": path, "__name__": "__config__"}
    with open(path, "rb") as fh:
        exec(compile(fh.read(), path, "exec"), namespace)
    return {k: v for k, v in namespace.items() if not k.startswith("_")}


def _claim_port(spec: str) -> socket.socket:
    """Replicas of one compose service run one command: each binds the first free port of
    ``HOST:FIRST:COUNT`` (a bind is atomic: two replicas never get the same), takes the
    instance number that port stands for, and leaves its pid namespace under the status dir,
    by which the harness tells which container holds which instance."""
    host, first, count = spec.rsplit(":", 2)
    for n in range(int(count)):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, int(first) + n))
            sock.listen(64)  # now no other replica can bind it, SO_REUSEADDR or not
        except OSError:
            sock.close()
            continue
        sock.set_inheritable(True)
        os.environ[INSTANCE_ENV] = str(n + 1)
        folder = Path(os.environ.get(STATUS_DIR_ENV, "."), INSTANCES_DIR)
        folder.mkdir(exist_ok=True)
        (folder / str(n + 1)).write_text(str(os.stat("/proc/self/ns/pid").st_ino))
        return sock
    raise SystemExit(f"throttle-harness: every port of {spec} is taken")


_theirs = _user_config(os.environ[USER_CONFIG_ENV]) if os.environ.get(USER_CONFIG_ENV) else {}
_ours = set(globals())  # their imports (os, socket…) must not replace this module's
_HOOKS = ("pre_request", "post_worker_init")  # ours, calling theirs
globals().update({k: v for k, v in _theirs.items() if k not in _HOOKS and k not in _ours})
if _theirs:
    daemon = False  # noqa: F811 - the harness watches and stops gunicorn itself
    pidfile = None
if os.environ.get(PORTS_ENV):
    _claimed = _claim_port(os.environ[PORTS_ENV])  # kept open: gunicorn listens on it
    bind = [f"fd://{_claimed.fileno()}"]


def pre_request(worker: Any, req: Any) -> None:
    """The harness's own probe requests must not count towards ``--max-requests``: gunicorn
    counts a request right after this hook, so take one off first. The user's hook, if any,
    runs for every other request."""
    if req.path == PROBE_PATH:
        worker.nr -= 1
    elif "pre_request" in _theirs:
        _theirs["pre_request"](worker, req)


def post_worker_init(worker: Any) -> None:
    """In a ``UvicornWorker``, the probe's requests must not count towards ``--max-requests``
    either (:func:`_uncount_probes_in_uvicorn`). The user's hook, if any, runs after."""
    _uncount_probes_in_uvicorn(worker)
    if "post_worker_init" in _theirs:
        _theirs["post_worker_init"](worker)


def _uncount_probes_in_uvicorn(worker: Any) -> None:
    """uvicorn counts every request (``ServerState.total_requests``) before any app or hook
    sees it, and recycles its worker at ``--max-requests``: in this worker process, the count
    it checks leaves out the probe requests the ASGI probe has answered. Nothing is changed
    for other workers, or where uvicorn's server keeps no such count."""
    if not hasattr(getattr(worker, "config", None), "limit_max_requests"):
        return  # not a UvicornWorker
    try:
        from uvicorn import server  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return
    if not hasattr(getattr(server, "ServerState", None), "__init__"):
        return
    from . import probe_asgi

    class ServerState(server.ServerState):  # type: ignore[misc, name-defined, unused-ignore]
        @property
        def total_requests(self) -> int:
            return int(self.__dict__.get("_counted", 0)) - probe_asgi.probes_answered

        @total_requests.setter
        def total_requests(self, value: int) -> None:
            self.__dict__["_counted"] = value + probe_asgi.probes_answered

    server.ServerState = ServerState  # type: ignore[misc, unused-ignore]
