"""The gunicorn command line the fleet builds, against the gunicorn that is installed."""

from __future__ import annotations

from importlib.metadata import version

from packaging.version import Version

from harness.fleet import FleetSpec, _argv, gunicorn_knows


def test_the_control_socket_is_turned_off_only_where_gunicorn_has_one() -> None:
    """gunicorn 25.1 added a control socket (``gunicorn.ctl`` in the working directory, which
    parallel servers would share) and ``--no-control-socket``; older releases refuse the flag,
    and the harness supports gunicorn from 23 on (tox -e oldest runs 23.0.0)."""
    has_one = Version(version("gunicorn")) >= Version("25.1")
    assert gunicorn_knows("control_socket") == has_one
    argv = _argv(FleetSpec(app="app:application", workers=2, threads=2), 8000)
    assert ("--no-control-socket" in argv) == has_one
    assert not gunicorn_knows("no_such_setting")
