"""The gunicorn command line the fleet builds, against the gunicorn that is installed."""

from __future__ import annotations

from importlib.metadata import version

import pytest
from gunicorn.config import Config
from packaging.version import Version

from harness.fleet import FleetSpec
from harness.fleet.process import _argv, gunicorn_has_flag


@pytest.mark.parametrize("shape", [(1, 1), (2, 2)])
def test_the_installed_gunicorn_takes_every_argument_the_fleet_passes(
    shape: tuple[int, int],
) -> None:
    """Parsed by gunicorn's own parser (which exits 2 on a flag it lacks, as every run did on
    gunicorn 23-25.0 when ``--no-control-socket`` was passed unconditionally); tox -e oldest runs
    this on the floor, gunicorn 23."""
    workers, threads = shape
    spec = FleetSpec(
        app="app:application",
        workers=workers,
        threads=threads,
        gunicorn_args=("--max-requests", "150", "--preload"),
    )
    argv = _argv(spec, 8000)
    assert argv[1:3] == ["-m", "gunicorn"]
    parsed = Config().parser().parse_args(argv[3:])
    assert (parsed.workers, parsed.threads, parsed.bind) == (workers, threads, ["127.0.0.1:8000"])
    assert (parsed.max_requests, parsed.preload_app) == (150, True)


def test_the_control_socket_is_turned_off_where_gunicorn_has_one() -> None:
    has_one = gunicorn_has_flag("--no-control-socket")
    assert (
        "--no-control-socket" in _argv(FleetSpec(app="a:b", workers=1, threads=1), 1)
    ) == has_one
    if Version(version("gunicorn")) >= Version("25.1"):  # where gunicorn has a control socket
        assert has_one
    assert not gunicorn_has_flag("--no-such-flag")
