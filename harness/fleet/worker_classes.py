"""gunicorn's worker classes as the harness serves them: ``sync`` and ``gthread`` (WSGI, behind
:mod:`harness.fleet.probe`), ``asgi`` (gunicorn's own, from 24) and ``uvicorn`` (the
``uvicorn-worker`` package's ``UvicornWorker``), both ASGI, behind
:mod:`harness.fleet.probe_asgi`. An async worker has no threads: what ``--threads`` is to
gthread, ``--concurrency`` is to it (requests in flight in one worker), and the harness's
traffic keeps at most that many in each.
"""

from __future__ import annotations

import importlib
import importlib.util

from harness.errors import UsageError

WORKER_CLASSES = ("sync", "gthread", "asgi", "uvicorn")
ASYNC_CLASSES = frozenset({"asgi", "uvicorn"})
DEFAULT_CONCURRENCY = 10  # requests in flight in one async worker
_GUNICORN_NAME = {
    "sync": "sync",
    "gthread": "gthread",
    "asgi": "asgi",
    "uvicorn": "uvicorn_worker.UvicornWorker",
}


# What an image's ``-k`` may say, as the class the harness serves it with.
CLASS_NAMES = {
    "sync": "sync",
    "gthread": "gthread",
    "asgi": "asgi",
    "uvicorn": "uvicorn",
    "uvicorn_worker.UvicornWorker": "uvicorn",
    "uvicorn.workers.UvicornWorker": "uvicorn",
    "gunicorn.workers.sync.SyncWorker": "sync",
    "gunicorn.workers.gthread.ThreadWorker": "gthread",
}


def effective_class(worker_class: str, threads: int) -> str:
    """The class given, else gthread when threads > 1, else sync (gunicorn's own choice)."""
    return worker_class or ("gthread" if threads > 1 else "sync")


def interface(worker_class: str) -> str:
    """``asgi`` or ``wsgi``: what the class serves."""
    return "asgi" if worker_class in ASYNC_CLASSES else "wsgi"


def probe_module(worker_class: str) -> str:
    """The probe's module (within its package) for the class."""
    return "probe_asgi" if worker_class in ASYNC_CLASSES else "probe"


def class_options(worker_class: str, threads: int) -> list[str]:
    """gunicorn's flags for the class: the class, and threads for WSGI classes (an async
    worker's concurrency is bounded by the traffic, not by gunicorn)."""
    options = ["--worker-class", _GUNICORN_NAME[worker_class]]
    if worker_class not in ASYNC_CLASSES:
        options += ["--threads", str(threads)]
    return options


def check_installed(worker_class: str) -> None:
    """UsageError in one line if this environment's gunicorn cannot run the class."""
    if worker_class == "uvicorn" and importlib.util.find_spec("uvicorn_worker") is None:
        raise UsageError(
            "--worker-class uvicorn needs the uvicorn-worker package "
            "(pip install 'throttle-harness[asgi]')"
        )
    if worker_class == "asgi":
        workers = importlib.import_module("gunicorn.workers")
        if "asgi" not in getattr(workers, "SUPPORTED_WORKERS", {}):
            version = importlib.import_module("gunicorn").__version__
            raise UsageError(f"--worker-class asgi needs gunicorn >= 24 (this one is {version})")
