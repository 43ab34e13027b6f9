"""No secret anywhere: a real run with secrets planted where a user's would be (the Redis URL's
password, API tokens in an identity file, a header value, a token in a Redis key name), whose
verdict fails with a reason naming a client, leaves none of them in the console, the JSON,
HTML, JUnit or Markdown report, or the pytest plugin's assertion message."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import CliResult
from harness.redaction import client_name, key_name
from harness.redis.providers import open_redis

pytestmark = [pytest.mark.integration, pytest.mark.serial]  # see conftest.py
APPS = Path(__file__).resolve().parent / "apps"
RunCli = Callable[..., CliResult]
REPORTS = ("json", "html", "junit", "markdown")


def planted(label: str) -> tuple[str, str]:
    """A secret and the random core that no escaping (JSON, HTML, XML, Markdown) alters."""
    core = secrets.token_hex(8)
    return f"{label}_{core}", core


def leaks(texts: dict[str, str], cores: dict[str, str]) -> list[str]:
    return [
        f"{what} in {where}" for where, t in texts.items() for what, c in cores.items() if c in t
    ]


def test_no_secret_reaches_the_console_or_any_report(
    run_cli: RunCli, redis_spec: str, tmp_path: Path
) -> None:
    tokens = [planted("tok") for _ in range(40)]
    (tmp_path / "tokens.txt").write_text("".join(f"{t}\n" for t, _ in tokens))
    header, header_core = planted("hdr")
    key, key_core = planted("key")
    reports = {kind: tmp_path / f"report.{kind}" for kind in REPORTS}
    with open_redis(redis_spec) as users:  # a server of the user's, its password in the URL
        url = users.url.replace("redis://:", "redis://default:")
        password = url.split(":")[2].split("@")[0]
        with users.client() as client:
            client.set(f"sessions:{key}", 1)  # never expires: the Redis-state line shows it
        result = run_cli(
            "run",
            "--app",
            "shared_budget_app:application",  # one budget for every client: a failure
            "--pythonpath",
            str(APPS),
            "--rate",
            "20/hour",
            "--workers",
            "2",
            "--threads",
            "2",
            "--path",
            "/limited/",
            "--header",
            "X-Client: {identity}",
            "--header",
            f"Authorization: Bearer {header}",
            "--identities",
            "4",
            "--identity-file",
            str(tmp_path / "tokens.txt"),
            "--bursts",
            "1",
            "--redis-keys",
            "*",
            "--redis",
            url,
            *(arg for kind, path in reports.items() for arg in (f"--{kind}", str(path))),
        )
    texts = {kind: path.read_text() for kind, path in reports.items()}
    texts["console"] = result.stdout + result.stderr
    cores = {"the Redis password": password, "the header value": header_core}
    cores |= {"the key name": key_core}
    cores |= {f"token {n}": core for n, (_, core) in enumerate(tokens)}
    assert not leaks(texts, cores), leaks(texts, cores)
    # The run failed, naming a client of the burst by the digest of its token, and the key
    # that never expires by the digest of its name.
    assert result.code == 1, result.stdout + result.stderr
    named = re.search(r"under-admission: client (id:[0-9a-f]{6}) of burst 1", result.stdout)
    assert named, result.stdout
    assert named[1] in {client_name(t) for t, _ in tokens[:4]}
    assert all(named[1] in text for text in texts.values())
    assert key_name(f"sessions:{key}") in result.stdout


PLUGIN_TESTS = """
from pathlib import Path

APPS = {apps!r}
HEADER = Path("header.txt").read_text()  # not in the source, which pytest shows on a failure


def test_each_client_has_its_own_budget(throttle_check):
    r = throttle_check(
        app="shared_budget_app:application", pythonpath=[APPS], rate="20/hour", workers=2,
        threads=2, path="/limited/", headers=["X-Client: {{identity}}", HEADER],
        identities=4, identity_file="tokens.txt", bursts=1,
    )
    assert r.verdict == "pass", r.summary
"""


def test_no_secret_reaches_a_pytest_assertion_message(
    pytester: pytest.Pytester, redis_spec: str
) -> None:
    tokens = [planted("tok") for _ in range(40)]
    (pytester.path / "tokens.txt").write_text("".join(f"{t}\n" for t, _ in tokens))
    header, header_core = planted("hdr")
    (pytester.path / "header.txt").write_text(f"X-Api-Key: {header}")
    pytester.makepyfile(test_limits=PLUGIN_TESTS.format(apps=str(APPS)))
    reports = {kind: pytester.path / f"throttle.{kind}" for kind in ("json", "html", "markdown")}
    result = pytester.runpytest_subprocess(
        "--throttle-redis",
        redis_spec,
        "-p",
        "no:cacheprovider",
        *(f"--throttle-{kind}={path}" for kind, path in reports.items()),
    )
    result.assert_outcomes(failed=1)
    texts = {kind: path.read_text() for kind, path in reports.items()}
    texts["pytest's output"] = result.stdout.str() + result.stderr.str()
    cores = {"the header value": header_core}
    cores |= {f"token {n}": core for n, (_, core) in enumerate(tokens)}
    assert not leaks(texts, cores), leaks(texts, cores)
    result.stdout.fnmatch_lines(
        ["*AssertionError: *: fail - under-admission: client id:* of burst 1*"]
    )
