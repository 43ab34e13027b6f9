"""gunicorn's own flags from the command line (``--gunicorn-arg``), as a deployment passes them,
with the options the harness owns refused in one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness import cli
from harness.errors import EXIT_USAGE
from harness.scenario import load_scenarios

BASE = ["run", "--app", "m:app", "--rate", "1/s"]


def overrides(*extra: str) -> dict[str, object]:
    return cli._overrides(cli.build_parser().parse_args([*BASE, *extra]))


def test_gunicorn_args_as_a_deployment_passes_them() -> None:
    found = overrides(
        "--gunicorn-arg=--max-requests 1000 --max-requests-jitter 100",
        "--gunicorn-arg=--preload",
    )
    expected = ["--max-requests", "1000", "--max-requests-jitter", "100", "--preload"]
    assert found["gunicorn_args"] == expected
    (scenario,) = load_scenarios([], found)
    assert scenario.gunicorn_args == tuple(expected)
    assert "gunicorn_args" not in overrides()  # none given: the scenario file's stay


@pytest.mark.parametrize(
    "arg", ["--workers=3", "-w 3", "--bind 0.0.0.0:8000", "--daemon", "--threads=8"]
)
def test_what_the_harness_owns_is_refused_in_one_line(arg: str) -> None:
    code, err = harness(f"--gunicorn-arg={arg}")
    assert code == EXIT_USAGE
    assert "\n" not in err and "is not allowed: the harness owns" in err, err


def test_an_unsplittable_value_is_a_usage_error() -> None:
    code, err = harness("--gunicorn-arg=--name 'open")
    assert code == EXIT_USAGE
    assert "--gunicorn-arg: cannot split it" in err and "open" not in err, err


def harness(*extra: str) -> tuple[int, str]:
    """The command line's exit code and its stderr (nothing starts: the input is refused)."""
    done = subprocess.run(
        [sys.executable, "-m", "harness", *BASE, *extra], capture_output=True, text=True
    )
    return done.returncode, done.stderr.strip()
