"""The window's start as a second critical point, with real servers: a counter initialised by a
plain ``set`` (not ``add``) before ``incr`` over-admits only where a client's window starts; the
fleet can be warmed before the first burst (``--warm-up``), every burst's first requests enter
the app together, and a pass needs overlap there as well as at the limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_trust import RunCli, app_args, runs

pytestmark = [pytest.mark.integration, pytest.mark.serial]  # see conftest.py


def test_a_set_initialised_counter_is_caught_at_2x2_and_4x2(
    run_cli: RunCli, redis_spec: str, tmp_path: Path
) -> None:
    out = tmp_path / "r.json"
    result = run_cli(
        *app_args(
            "handrolled_app:application",
            "100/hour",
            "--workers",
            "2,4",
            "--threads",
            "2",
            "--env",
            "PATTERN=set-then-incr",
            "--warm-up",
            "--redis",
            redis_spec,
            "--json",
            str(out),
        )
    )
    for run in runs(result, out):
        assert run["verdict"] == "fail", run["reason"]
        assert run["reason"].startswith("over-admission"), run["reason"]
        assert run["accepted"] > 100 * len(run["bursts"])
    assert result.code == 1


@pytest.mark.parametrize(("rate", "requests"), [("100/hour", "400"), ("5/second", "40")])
def test_a_correct_counter_passes_with_overlap_at_the_start_and_the_limit(
    run_cli: RunCli, redis_spec: str, tmp_path: Path, rate: str, requests: str
) -> None:
    out = tmp_path / "r.json"
    result = run_cli(
        *app_args(
            "handrolled_app:application",
            rate,
            "--workers",
            "2",
            "--threads",
            "2",
            "--requests",
            requests,
            "--env",
            "PATTERN=incr-then-check",
            "--redis",
            redis_spec,
            "--json",
            str(out),
        )
    )
    (run,) = runs(result, out)
    assert run["verdict"] == "pass", run["reason"]
    ov = run["overlap"]
    assert ov["at_start"] >= 2 and ov["start_workers"] == 2, ov
    assert ov["at_crossing"] >= 2 and ov["crossing_workers"] == 2, ov
    assert "at the window's start" in run["reason"]
    assert result.code == 0, result.stderr
