"""Real Redis, real gunicorn: the harness passes a correct throttle and catches broken ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import live_children
from harness.redis.providers import open_redis
from harness.runner import MatrixReport, RunResult, SilentObserver, run_matrix
from harness.scenario import load_scenarios

pytestmark = [pytest.mark.integration, pytest.mark.serial]  # see conftest.py
ROOT = Path(__file__).resolve().parents[2]
APPS = Path(__file__).resolve().parent / "apps"


def run(redis_spec: str, files: list[str], **overrides: Any) -> list[RunResult]:
    scenarios = load_scenarios([ROOT / "scenarios" / f for f in files], overrides)
    with open_redis(redis_spec) as redis:
        report = run_matrix(scenarios, redis, SilentObserver(), MatrixReport())
    left = live_children("gunicorn", "redis-server")
    assert not left, f"left running: {left}"
    return report.runs


def test_atomic_throttle_passes_at_1_2_and_4_workers(redis_spec: str) -> None:
    runs = run(redis_spec, ["atomic-lua.toml"])
    assert [(r.workers, r.verdict.kind) for r in runs] == [(1, "pass"), (2, "pass"), (4, "pass")]
    for r in runs:
        bursts = r.verdict.bursts
        # At least the planned 3 (more when a burst's crossing did not overlap), each from a
        # fresh client.
        assert len(bursts) >= 3 and len(set(r.identities)) == len(bursts)
        assert all(b.tally.accepted == 100 for b in bursts)
        first = bursts[0].tally
        assert (first.sent, first.accepted, first.rejected, first.errors) == (400, 100, 300, 0)
        assert r.verdict.tally.workers_seen == r.workers


def test_stock_drf_on_django_redis_is_caught_at_2x2(redis_spec: str) -> None:
    (r,) = run(redis_spec, ["drf-django-redis.toml"], workers=[2])
    assert (r.workers, r.threads) == (2, 2)
    assert r.verdict.kind == "fail", r.verdict.reason
    assert r.verdict.tally.accepted > 100
    assert "not atomic" in r.verdict.hint
    assert r.as_expected


def test_the_naive_counter_control_is_caught(redis_spec: str) -> None:
    """A read-compare-increment counter: a race of a fraction of a millisecond."""
    for r in run(redis_spec, ["naive-counter.toml"], workers=[2, 4]):
        assert r.verdict.kind == "fail", r.verdict.reason
        assert r.verdict.overlap.at_crossing and r.verdict.overlap.at_crossing >= 2
        assert "not atomic" in r.verdict.hint


def test_locmem_is_caught_with_several_workers(redis_spec: str) -> None:
    runs = run(redis_spec, ["drf-locmem.toml"], workers=[2, 4])
    for r in runs:
        assert r.verdict.kind == "fail", r.verdict.reason
        assert r.verdict.tally.accepted > 100
        assert "per process" in r.verdict.hint


def test_a_run_served_by_one_worker_is_inconclusive_not_pass(redis_spec: str) -> None:
    # One keep-alive connection on gthread workers stays on one worker: nothing shows sharing.
    (r,) = run(
        redis_spec, ["atomic-lua.toml"], workers=[2], traffic="sequential", requests=150, bursts=1
    )
    assert r.verdict.tally.accepted == 100
    assert r.verdict.tally.workers_seen == 1
    assert r.verdict.kind == "inconclusive"
    assert not r.as_expected


def plain(redis_spec: str, app: str, workers: list[int], threads: int = 1) -> list[RunResult]:
    """A plain WSGI app from tests/integration/apps at 50/hour, 200 requests per run."""
    scenario = load_scenarios(
        [],
        {
            "app": f"plain_wsgi:{app}",
            "pythonpath": [str(APPS)],
            "rate": "50/hour",
            "env": {"APP_LIMIT": "50"},
            "workers": workers,
            "threads": threads,
            "requests": 200,
        },
    )
    with open_redis(redis_spec) as redis:
        return run_matrix(scenario, redis, SilentObserver(), MatrixReport()).runs


def test_any_wsgi_app_per_process_counter_is_caught(redis_spec: str) -> None:
    (r,) = plain(redis_spec, "per_process", [2])
    assert r.verdict.kind == "fail"
    assert "per process" in r.verdict.hint


def test_any_wsgi_app_with_an_atomic_shared_counter_passes(redis_spec: str) -> None:
    # gthread: two sync workers with a check this fast start a window together in about a
    # quarter of bursts, so a pass there is left inconclusive now and then (measured: 12 of 12
    # passed locally after up to 9 bursts; on CI, two runs of this file had one inconclusive).
    runs = plain(redis_spec, "shared", [1, 2], threads=2)
    assert [r.verdict.kind for r in runs] == ["pass", "pass"], [r.verdict.reason for r in runs]


def test_server_errors_give_an_error_verdict(redis_spec: str) -> None:
    (r,) = plain(redis_spec, "server_error", [1])
    assert r.verdict.kind == "error"
    assert r.verdict.tally.errors == r.verdict.tally.sent == 200


def test_a_users_redis_with_an_app_that_ignores_the_prefix(redis_spec: str) -> None:
    """Runs on a Redis the harness did not start stay independent (each run has its own client
    address) and the server's other keys survive."""
    with open_redis(redis_spec) as users_redis:
        with users_redis.client() as client:
            client.set("precious", "1")
        runs = plain(users_redis.url, "shared_unprefixed", [1, 2], threads=2)  # see above
        assert [r.verdict.kind for r in runs] == ["pass", "pass"], [r.verdict.reason for r in runs]
        with users_redis.client() as client:
            assert client.get("precious") == b"1"
            assert {i for r in runs for i in r.identities} == {
                k.decode().removeprefix("hits:") for k in client.keys("hits:*")
            }
