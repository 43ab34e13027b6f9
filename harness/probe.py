"""The WSGI app gunicorn serves: the user's app, untouched, behind a thin probe.

Runs inside gunicorn. It imports the target named by ``THROTTLE_HARNESS_APP`` (``module:callable``)
and tags every response with the pid of the worker that served it. ``PROBE_PATH`` answers without
calling the target, so the harness can tell when every worker is up. If the target fails to
import, the reason is written to ``$THROTTLE_HARNESS_STATUS_DIR/app-error`` for the harness to
show, and the worker fails to boot as gunicorn expects.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from harness.probe_protocol import (
    APP_ERROR_FILE,
    PROBE_PATH,
    STATUS_DIR_ENV,
    TARGET_ENV,
    WORKER_HEADER,
)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def load_target(spec: str) -> WSGIApp:
    """Import ``module:callable`` (the attribute may be dotted, as gunicorn allows)."""
    module_name, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in (attr or "application").split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{spec} is not callable")
    return obj  # type: ignore[no-any-return]


def _load_or_report(spec: str) -> WSGIApp:
    try:
        return load_target(spec)
    except BaseException as exc:
        status_dir = os.environ.get(STATUS_DIR_ENV)
        if status_dir:
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
            Path(status_dir, APP_ERROR_FILE).write_text(reason)
        raise


_target = _load_or_report(os.environ[TARGET_ENV])


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    worker = str(os.getpid())
    if environ.get("PATH_INFO") == PROBE_PATH:
        start_response("200 OK", [("Content-Type", "text/plain"), (WORKER_HEADER, worker)])
        return [worker.encode()]

    def tagged_start_response(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
        return start_response(status, [*headers, (WORKER_HEADER, worker)], *exc_info)

    return _target(environ, tagged_start_response)
