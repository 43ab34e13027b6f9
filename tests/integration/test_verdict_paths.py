"""Every verdict path with real servers, at an hour window and at a per-second rate: the bounds,
chances and follow-up checks that hold at 100/hour must hold at 5/second too.

Paths tested elsewhere at both rates: a race caught (``test_trust``: read-compare-increment at
100/hour and 5/second), a bypass (``test_requests`` at 100/hour, ``test_trust`` at 10/second).
No recovery is a per-second path only (``test_trust``): the harness does not wait an hour.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_trust import RunCli, app_args, runs

pytestmark = [pytest.mark.integration, pytest.mark.serial]  # see conftest.py

RATES = {"hour": ("100/hour", "400"), "second": ("5/second", "40")}
PATHS = {
    # path: (app, its arguments, requests (None: as the rate says), verdict, in the reason)
    "held": ("handrolled_app", ["--env", "PATTERN=incr-then-check"], None, "pass", "exact: "),
    "no-throttle": ("handrolled_app", ["--env", "PATTERN=none"], None, "fail", "over-admission"),
    "shared-budget": (
        "handrolled_app",
        ["--env", "PATTERN=constant-key"],
        None,
        "fail",
        "under-admission",
    ),
    "server-errors": ("plain_wsgi", [], None, "error", "requests failed"),
    "never-limited": (
        "handrolled_app",
        ["--env", "PATTERN=incr-then-check"],
        "3",
        "inconclusive",
        "never reach the limit",
    ),
    "one-at-a-time": (  # one worker: sequential traffic may stay on one of two
        "handrolled_app",
        ["--env", "PATTERN=incr-then-check", "--traffic", "sequential", "--workers", "1"],
        None,
        "inconclusive",
        "never overlapped",
    ),
}


@pytest.mark.parametrize("rate", list(RATES))
@pytest.mark.parametrize("path", list(PATHS))
def test_each_verdict_path_at_an_hour_and_at_a_second(
    run_cli: RunCli, redis_spec: str, tmp_path: Path, path: str, rate: str
) -> None:
    app, args, requests, verdict, reason = PATHS[path]
    text, default_requests = RATES[rate]
    out = tmp_path / "r.json"
    callable_ = "server_error" if app == "plain_wsgi" else "application"
    result = run_cli(
        *app_args(
            f"{app}:{callable_}",
            text,
            "--workers",
            "2",
            "--threads",
            "2",
            "--requests",
            requests or default_requests,
            *args,
            "--redis",
            redis_spec,
            "--json",
            str(out),
        )
    )
    (run,) = runs(result, out)
    assert run["verdict"] == verdict, run["reason"]
    assert reason in run["reason"], run["reason"]
    assert result.code == (0 if verdict == "pass" else 1), result.stderr  # unexpected: 1
