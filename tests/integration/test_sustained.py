"""Sustained traffic with real servers: a limiter that never lets a client back in is caught
(and passed by bursts alone), correct limiters pass at twice the rate and at half of it, and a
period too long to sustain says what was tested instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_trust import RunCli, app_args, runs

pytestmark = [pytest.mark.integration, pytest.mark.serial]  # see conftest.py


def sustained_run(
    run_cli: RunCli, redis_spec: str, tmp_path: Path, rate: str, *args: str
) -> dict[str, object]:
    out = tmp_path / "r.json"
    result = run_cli(
        *app_args(
            "handrolled_app:application",
            rate,
            "--workers",
            "2",
            "--threads",
            "2",
            *args,
            "--redis",
            redis_spec,
            "--json",
            str(out),
        )
    )
    (run,) = runs(result, out)
    return run


def test_a_log_of_refused_hits_is_caught_by_sustained_traffic_not_by_bursts(
    run_cli: RunCli, redis_spec: str, tmp_path: Path
) -> None:
    args = ("--env", "PATTERN=log-of-hits")
    html = tmp_path / "r.html"
    run = sustained_run(
        run_cli,
        redis_spec,
        tmp_path,
        "5/second",
        *args,
        "--traffic",
        "sustained",
        "--html",
        str(html),
    )
    assert run["verdict"] == "fail", run["reason"]
    assert "admitted in each period of sustained traffic" in html.read_text()
    assert str(run["reason"]).startswith("not let back in"), run["reason"]
    (client,) = run["bursts"]  # type: ignore[misc]
    assert client["per_period"][0] == 5 and client["unjustified"] > 0
    run = sustained_run(run_cli, redis_spec, tmp_path, "5/second", *args, "--requests", "40")
    assert run["verdict"] == "pass", run["reason"]


@pytest.mark.parametrize("pace", ["2x", "0.5x"])
@pytest.mark.parametrize(
    "pattern", ["incr-then-check", "clock-window", "sliding-log", "token-bucket"]
)
def test_correct_limiters_pass_sustained_traffic(
    run_cli: RunCli, redis_spec: str, tmp_path: Path, pattern: str, pace: str
) -> None:
    run = sustained_run(
        run_cli,
        redis_spec,
        tmp_path,
        "5/second",
        "--env",
        f"PATTERN={pattern}",
        "--traffic",
        "sustained",
        "--pace",
        pace,
    )
    assert run["verdict"] == "pass", run["reason"]
    (client,) = run["bursts"]  # type: ignore[misc]
    assert client["unjustified"] == 0 and len(client["per_period"]) >= 2


def test_a_period_too_long_to_sustain_says_what_is_tested_instead(
    run_cli: RunCli, redis_spec: str, tmp_path: Path
) -> None:
    run = sustained_run(
        run_cli,
        redis_spec,
        tmp_path,
        "100/hour",
        "--env",
        "PATTERN=incr-then-check",
        "--traffic",
        "sustained",
    )
    assert run["verdict"] == "pass", run["reason"]
    assert "bursts were sent instead" in str(run["reason"]), run["reason"]
