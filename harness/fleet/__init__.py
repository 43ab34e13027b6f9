"""The fleet stage: the app served by real workers, behind the probe that stamps each request.

:class:`Fleet` is what the rest of the harness sees of a running fleet, :class:`FleetSpec` what
to serve, and :func:`start_fleet` starts one (today: local gunicorn processes,
:mod:`harness.fleet.process`); a context manager that stops it on exit, whatever happens.
"""

from __future__ import annotations

from harness.fleet.base import Fleet, FleetSpec
from harness.fleet.process import gunicorn_fleet as start_fleet
from harness.fleet.process import ignored_user_config

__all__ = ["Fleet", "FleetSpec", "ignored_user_config", "start_fleet"]
