"""Hints for statuses that are neither admissions nor refusals."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from harness.verdict.hints import error_hint


def tally(*samples: str) -> Any:
    return SimpleNamespace(error_samples=list(samples))


def test_500s_with_several_requests_in_a_worker_point_at_the_apps_pool() -> None:
    hint = error_hint(tally("HTTP 500"), per_worker=10)
    assert "up to 10 requests were in flight in one worker" in hint and "--concurrency" in hint
    assert error_hint(tally("HTTP 500"), per_worker=1) == ""  # one at a time: not a pool
    assert "ALLOWED_HOSTS" in error_hint(tally("HTTP 400", "HTTP 500"), per_worker=10)
