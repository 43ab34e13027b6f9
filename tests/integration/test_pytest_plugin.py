"""The pytest plugin as a user's suite meets it: a test module of theirs, using
``throttle_check`` against a small DRF app of their own, passing on an atomic throttle and
failing on stock DRF with the numbers in the message; serially and under pytest-xdist, with
pytest's JUnit file and the plugin's HTML report of the session."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

pytestmark = [pytest.mark.integration, pytest.mark.serial]  # see conftest.py
JUNIT_XSD = Path(__file__).parents[1] / "data" / "junit.xsd"

USER_APP = '''
"""An API with two endpoints: stock DRF's AnonRateThrottle on django-redis, and a throttle
counting in one Lua script (INCR + EXPIRE)."""
import os

import django
from django.conf import settings

REDIS_URL = os.environ["REDIS_URL"]
PREFIX = os.environ.get("THROTTLE_HARNESS_KEY_PREFIX", "")
settings.configure(
    SECRET_KEY="not-a-secret", ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__,
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"],
    CACHES={"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": REDIS_URL,
                        "KEY_PREFIX": PREFIX}},
    REST_FRAMEWORK={"DEFAULT_AUTHENTICATION_CLASSES": [], "DEFAULT_PERMISSION_CLASSES": [],
                    "DEFAULT_THROTTLE_RATES": {"anon": "100/hour"}},
)
django.setup()

import redis
from django.core.wsgi import get_wsgi_application
from django.urls import path
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, BaseThrottle
from rest_framework.views import APIView

COUNT = redis.Redis.from_url(REDIS_URL).register_script(
    "local n = redis.call('INCR', KEYS[1]) "
    "if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end return n")


class AtomicThrottle(BaseThrottle):
    def allow_request(self, request, view):
        return COUNT(keys=[PREFIX + "hits:" + self.get_ident(request)], args=[3600]) <= 100


class Stock(APIView):
    throttle_classes = [AnonRateThrottle]

    def get(self, request):
        return Response({"ok": True})


class Atomic(Stock):
    throttle_classes = [AtomicThrottle]


urlpatterns = [path("stock/", Stock.as_view()), path("atomic/", Atomic.as_view())]
application = get_wsgi_application()
'''

USER_TESTS = """
import os

API = dict(app="myapi:application", pythonpath=[os.path.dirname(__file__)], rate="100/hour",
           threads=2)


def test_the_atomic_throttle_holds(throttle_check, throttle_workers):
    r = throttle_check(**API, path="/atomic/", workers=throttle_workers)
    assert r.verdict == "pass", r.summary
    assert r.limit == 100 and r.accepted == 100 * len({x.identity for x in r.history})


def test_stock_drf_holds(throttle_check):
    r = throttle_check(**API, path="/stock/", workers=2)
    assert r.verdict == "pass", r.summary
"""


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_users_suite_with_the_plugin(
    pytester: pytest.Pytester, redis_spec: str, xdist: list[str]
) -> None:
    pytester.makepyfile(myapi=USER_APP, test_limits=USER_TESTS)
    junit, page = pytester.path / "junit.xml", pytester.path / "throttle.html"
    result = pytester.runpytest_subprocess(
        "--throttle-redis",
        redis_spec,
        "--throttle-workers",
        "1,2",
        "-p",
        "no:cacheprovider",
        f"--junitxml={junit}",
        f"--throttle-html={page}",
        *xdist,
    )
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: test_limits.py::test_stock_drf_holds 2x2: fail - over-admission: "
            "*admitted*100*"
        ]
    )

    xmlschema.XMLSchema(JUNIT_XSD).validate(str(junit))
    cases = {c.get("name"): c for c in ET.parse(junit).iter("testcase")}
    assert sorted(cases) == [
        "test_stock_drf_holds",
        "test_the_atomic_throttle_holds[1w]",
        "test_the_atomic_throttle_holds[2w]",
    ]
    failure = cases["test_stock_drf_holds"].find("failure")
    assert failure is not None
    message = failure.get("message") or ""
    assert "test_limits.py::test_stock_drf_holds 2x2: fail - over-admission: " in message
    assert re.search(r"admitted (\d+ of \d+, limit 100|more than 100 \(\d+)", message), message

    html = page.read_text()  # one report of the session in test order, whichever worker ran what
    assert html.count('<section id="run-') == 3 and html.count("<svg") >= 3
    names = [
        "test_limits.py::test_stock_drf_holds",
        "test_limits.py::test_the_atomic_throttle_holds[1w]",
        "test_limits.py::test_the_atomic_throttle_holds[2w]",
    ]
    assert [html.index(n + " —") for n in names] == sorted(html.index(n + " —") for n in names)
    assert "1 of 3 runs not as expected" in html and re.search(r"Redis \d", html)


def test_a_bad_scenario_key_fails_the_test_with_one_line(
    pytester: pytest.Pytester, redis_spec: str
) -> None:
    pytester.makepyfile(
        test_bad="""
def test_bad_rate(throttle_check):
    throttle_check(app="harness.demo.wsgi:application", rate="100/fortnight")
"""
    )
    result = pytester.runpytest_subprocess("--throttle-redis", redis_spec)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*throttle-harness: throttle_check: invalid rate*fortnight*"])
