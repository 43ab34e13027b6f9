"""What every fleet is, whatever runs it: the app served by N workers × T threads on M instances,
reachable on loopback ports, with the probe in front of the app.

:class:`FleetSpec` says what to serve; :class:`Fleet` is a running one, as the rest of the
harness sees it: where to send traffic, the workers that answered at start, the probe's stamps
so far, a worker to kill (the ``worker-kill`` fault), and its CPU and memory while the gate's load
runs. Two implement it: local gunicorn processes (:mod:`harness.fleet.process`) and containers
of the team's image (:mod:`harness.fleet.container_fleet`); nothing outside ``harness/fleet/`` knows
which one runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

from harness.fleet.stamps import Stamp
from harness.fleet.usage import UsageMeter


@dataclass(frozen=True)
class FleetSpec:
    """What to serve and how: ``app`` is ``module:callable``, as gunicorn takes it (with an
    ``image``, "" means the one its command names); ``connections`` is the most connections
    the traffic opens at once; ``instances`` gunicorn servers of ``workers`` × ``threads``
    each (on ``port``, ``port + 1``, … when one is given)."""

    app: str
    workers: int
    threads: int
    pythonpath: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    port: int | None = None
    gunicorn_args: tuple[str, ...] = ()
    connections: int = 1000
    instances: int = 1
    image: str | None = None  # run in containers of this image (else local processes)
    command: tuple[str, ...] = ()  # the image's gunicorn command, when not its own
    compose: str | None = None  # a compose file: its service's containers are the fleet
    worker_class: str = ""  # sync, gthread, asgi, uvicorn ("": gthread when threads > 1, else sync)
    service: str | None = None  # the compose file's service that runs gunicorn


@dataclass(frozen=True)
class ImageInfo:
    """The image a container fleet runs: as named, and its content digest (the registry's
    ``name@sha256:…`` when it has one, else the local image id)."""

    name: str
    digest: str


class Fleet(Protocol):
    """A running fleet, ready: every worker has answered the probe."""

    host: str
    ports: tuple[int, ...]  # one per instance
    worker_ids: frozenset[str]  # the workers that answered at start (``[INSTANCE/]PID.TOKEN``)
    ready_s: float  # from the start to every worker answering

    @property
    def port(self) -> int:
        """The first instance's port."""
        ...

    @property
    def image(self) -> ImageInfo | None:
        """The image a container fleet runs (None: local processes)."""
        ...

    def read_stamps(self) -> dict[str, Stamp]:
        """Every stamp the probe has written so far, by request id."""
        ...

    def kill_worker(self, worker: str) -> str:
        """Kill ``worker`` at once (SIGKILL), as a crash would; "" once done, else why not."""
        ...

    def metered(self, redis_url: str | None) -> AbstractContextManager[UsageMeter]:
        """A started meter of the fleet's CPU and memory (and the Redis's load)."""
        ...
