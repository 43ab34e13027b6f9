"""gunicorn's configuration under the harness (``-c python:harness.fleet.gunicorn_config``, or the
same module mounted into a container).

Naming a config module keeps gunicorn from reading the user's ``./gunicorn.conf.py`` (a
``daemon = True``, a pidfile or hooks there would otherwise apply silently); the harness also
drops ``GUNICORN_CMD_ARGS`` from gunicorn's environment. Everything else comes as flags.

In a container of the team's image the team's configuration is part of what ships: when
``THROTTLE_HARNESS_USER_CONFIG`` names it (their ``-c`` value, ``python:MODULE`` or a file; or
``default``: ``./gunicorn.conf.py`` if the image has one) it is loaded here first, its hooks
kept, with daemonizing and a pid file turned off; the harness's flags still set the binding and
the worker shape, as gunicorn's command line wins over a config file.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from .probe_protocol import PROBE_PATH, USER_CONFIG_ENV


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


_theirs = _user_config(os.environ[USER_CONFIG_ENV]) if os.environ.get(USER_CONFIG_ENV) else {}
globals().update({k: v for k, v in _theirs.items() if k != "pre_request"})
if _theirs:
    daemon = False  # noqa: F811 - the harness watches and stops gunicorn itself
    pidfile = None


def pre_request(worker: Any, req: Any) -> None:
    """The harness's own probe requests must not count towards ``--max-requests``: gunicorn
    counts a request right after this hook, so take one off first. The user's hook, if any,
    runs for every other request."""
    if req.path == PROBE_PATH:
        worker.nr -= 1
    elif "pre_request" in _theirs:
        _theirs["pre_request"](worker, req)
