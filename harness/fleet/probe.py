"""The WSGI app gunicorn serves: the user's app, untouched, behind a thin probe.

Runs inside gunicorn. It imports the target named by ``THROTTLE_HARNESS_APP`` (``module:callable``)
and tags every response with the worker that served it (``PID.TOKEN``: a recycled pid is a new
worker; ``INSTANCE/PID.TOKEN`` when the harness runs several gunicorn instances). ``PROBE_PATH``
answers without calling the target, so the harness can map connections to workers and tell
when every worker is up. Requests carrying the harness's request id leave
stamps (entered, and left when the app returns its response; see
:mod:`harness.fleet.probe_protocol`): the server-side evidence of how many requests were inside the
app together. If the target fails to import, the reason is written to
``$THROTTLE_HARNESS_STATUS_DIR/app-error`` for the harness to show, and the worker fails to
boot as gunicorn expects.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .probe_protocol import (  # relative: the probe also runs mounted into a container
    APP_ERROR_FILE,
    INSTANCE_ENV,
    INTERFACE_ENV,
    INTERPRETER_FILE,
    PARENT_HEADER,
    PEER_HEADER,
    PROBE_PATH,
    REQUEST_HEADER,
    STAMPS_DIR,
    STATUS_DIR_ENV,
    TARGET_ENV,
    WORKER_HEADER,
)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_REQUEST_KEY = "HTTP_" + REQUEST_HEADER.upper().replace("-", "_")


def load_target(spec: str) -> WSGIApp:
    """Import ``module:callable`` (the attribute may be dotted, as gunicorn allows, or an app
    factory called with no arguments: ``module:create_app()``)."""
    module_name, _, attr = spec.partition(":")
    factory = attr.endswith("()")
    if "(" in attr and not factory:
        raise TypeError(f"{spec}: an app factory with arguments; name the app itself")
    obj: Any = importlib.import_module(module_name)
    for part in (attr.removesuffix("()") or "application").split("."):
        obj = getattr(obj, part)
    if factory:
        obj = obj()
    if not callable(obj):
        raise TypeError(f"{spec} is not callable")
    return obj  # type: ignore[no-any-return]


def is_asgi(app: Any) -> bool:
    """Whether ``app`` is an ASGI app (a coroutine function, or an object whose ``__call__``
    is one: FastAPI, Starlette, Django's ASGIHandler) rather than a WSGI one."""
    call = app if inspect.isroutine(app) else type(app).__call__
    return inspect.iscoroutinefunction(call)


_CLASSES = {"wsgi": "sync or gthread", "asgi": "asgi or uvicorn"}


def _load_or_report(spec: str) -> WSGIApp:
    """The target, checked against the interface the worker class serves; the reason it cannot
    be served is left in the status dir for the harness, and the worker fails to boot."""
    try:
        target = load_target(spec)
        served = os.environ.get(INTERFACE_ENV, "wsgi")
        kind = "asgi" if is_asgi(target) else "wsgi"
        if kind != served:
            article = "an" if kind == "asgi" else "a"
            raise TypeError(
                f"{spec} is {article} {kind.upper()} app: serve it with --worker-class "
                f"{_CLASSES[kind]}"
            )
        return target
    except BaseException as exc:
        report_app_error(f"{type(exc).__name__}: {exc}".splitlines()[0])
        raise


def report_app_error(reason: str) -> None:
    """Leave why the app cannot be served in the status dir: the harness says it in one line."""
    status_dir = os.environ.get(STATUS_DIR_ENV)
    if status_dir:
        Path(status_dir, APP_ERROR_FILE).write_text(reason)


class _Process:
    """This worker process: its id and its stamps file, made anew after a fork (``--preload``
    imports the probe in the arbiter)."""

    pid = -1
    worker = ""
    fd = -1
    lock = threading.Lock()

    @classmethod
    def current(cls) -> type[_Process]:
        if cls.pid != os.getpid():
            with cls.lock:  # a new worker's first requests may come on several threads
                if cls.pid != os.getpid():
                    pid = os.getpid()
                    instance = os.environ.get(INSTANCE_ENV)
                    cls.worker = f"{pid}.{secrets.token_hex(2)}"
                    if instance:
                        cls.worker = f"{instance}/{cls.worker}"
                    cls.fd = -1
                    status_dir = os.environ.get(STATUS_DIR_ENV)
                    if status_dir:
                        folder = Path(status_dir, STAMPS_DIR)
                        folder.mkdir(exist_ok=True)
                        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
                        cls.fd = os.open(folder / cls.worker.replace("/", "-"), flags)
                    cls.pid = pid  # last: other threads wait for the lock until it is all set
        return cls

    @classmethod
    def stamp(cls, line: str) -> None:
        if cls.fd >= 0:
            os.write(cls.fd, line.encode())


def _tell_interpreter() -> None:
    """Leave this worker's interpreter in the status dir: a container fleet runs it with
    ``docker exec`` to signal a worker from inside the container."""
    status_dir = os.environ.get(STATUS_DIR_ENV)
    if status_dir:
        with contextlib.suppress(OSError):
            Path(status_dir, INTERPRETER_FILE).write_text(sys.executable)


_tell_interpreter()
_target = _load_or_report(os.environ[TARGET_ENV])


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    process = _Process.current()
    worker = process.worker
    if environ.get("PATH_INFO") == PROBE_PATH:
        headers = [
            ("Content-Type", "text/plain"),
            (WORKER_HEADER, worker),
            (PARENT_HEADER, str(os.getppid())),
            (PEER_HEADER, str(environ.get("REMOTE_ADDR", ""))),
        ]
        start_response("200 OK", headers)
        return [worker.encode()]

    request = environ.get(_REQUEST_KEY)
    status: list[str] = []

    def tagged_start_response(code: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
        status[:] = [code]
        tags = [(WORKER_HEADER, worker), (PEER_HEADER, str(environ.get("REMOTE_ADDR", "")))]
        return start_response(code, [*headers, *tags], *exc_info)

    if not request:
        return _target(environ, tagged_start_response)
    process.stamp(f"> {request} {worker} {time.monotonic_ns()}\n")
    try:
        return _target(environ, tagged_start_response)
    finally:  # left once the app has decided, before its answer goes out
        code = status[0].split(" ", 1)[0] if status else "-"
        process.stamp(f"< {request} {code} {time.monotonic_ns()}\n")
