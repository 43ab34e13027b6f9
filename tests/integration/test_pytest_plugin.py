"""The pytest plugin as a user's suite meets it: a test module of theirs, using
``throttle_check`` against the demo app, passing on the atomic throttle and failing on stock DRF
with the numbers in the message; serially and under pytest-xdist."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

USER_TESTS = '''
DEMO = dict(app="harness.demo.wsgi:application", path="/api/ping/", rate="100/hour",
            threads=2)


def test_the_atomic_throttle_holds(throttle_check, throttle_workers):
    r = throttle_check(**DEMO, workers=throttle_workers, env={"DEMO_THROTTLE": "atomic"})
    assert r.verdict == "pass", r.summary
    assert r.limit == 100 and r.accepted == 100 * len({x.identity for x in r.history})


def test_stock_drf_holds(throttle_check):
    r = throttle_check(**DEMO, workers=2, env={"DEMO_THROTTLE": "drf"})
    assert r.verdict == "pass", r.summary
'''


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_users_suite_with_the_plugin(
    pytester: pytest.Pytester, redis_spec: str, xdist: list[str]
) -> None:
    pytester.makepyfile(test_limits=USER_TESTS)
    result = pytester.runpytest_subprocess(
        "--throttle-redis", redis_spec, "--throttle-workers", "1,2", "-p", "no:cacheprovider",
        *xdist,
    )
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*AssertionError: throttle_check 2x2: fail - over-admission*"])


def test_a_bad_scenario_key_fails_the_test_with_one_line(
    pytester: pytest.Pytester, redis_spec: str
) -> None:
    pytester.makepyfile(test_bad="""
def test_bad_rate(throttle_check):
    throttle_check(app="harness.demo.wsgi:application", rate="100/fortnight")
""")
    result = pytester.runpytest_subprocess("--throttle-redis", redis_spec)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*throttle-harness: throttle_check: invalid rate*fortnight*"])
