"""The fleet stage: the app served by real workers, behind the probe that stamps each request.

:class:`Fleet` is what the rest of the harness sees of a running fleet, :class:`FleetSpec` what
to serve, and :func:`start_fleet` starts one (local gunicorn processes,
:mod:`harness.fleet.process`, or containers of the team's image, :mod:`harness.fleet.image`);
a context manager that stops it on exit, whatever happens.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from harness.fleet.base import Fleet, FleetSpec, ImageInfo
from harness.fleet.compose import compose_fleet
from harness.fleet.image import image_fleet
from harness.fleet.process import gunicorn_fleet, ignored_user_config

__all__ = ["Fleet", "FleetSpec", "ImageInfo", "ignored_user_config", "start_fleet"]


def start_fleet(spec: FleetSpec) -> AbstractContextManager[Fleet]:
    """The fleet ``spec`` asks for: a compose file's service, containers of an image, else
    local gunicorn processes."""
    if spec.compose:
        return compose_fleet(spec)
    if spec.image:
        return image_fleet(spec)
    return gunicorn_fleet(spec)
