"""gunicorn's configuration under the harness (``-c python:harness.fleet.gunicorn_config``).

Naming a config module keeps gunicorn from reading the user's ``./gunicorn.conf.py`` (a
``daemon = True``, a pidfile or hooks there would otherwise apply silently); the harness also
drops ``GUNICORN_CMD_ARGS`` from gunicorn's environment. Everything else comes as flags.
"""

from __future__ import annotations

from typing import Any

from harness.fleet.probe_protocol import PROBE_PATH


def pre_request(worker: Any, req: Any) -> None:
    """The harness's own probe requests must not count towards ``--max-requests``: gunicorn
    counts a request right after this hook, so take one off first."""
    if req.path == PROBE_PATH:
        worker.nr -= 1
