"""The command line as CI uses it: exit codes, one-line errors, JSON, nothing left running."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import CliResult

pytestmark = pytest.mark.integration
APPS = Path(__file__).resolve().parent / "apps"
RunCli = Callable[..., CliResult]


def one_line_error(result: CliResult) -> str:
    """The error line; anything after it must be the indented log tail, never a traceback."""
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert lines and lines[0].startswith("throttle-harness: error: "), result.stderr
    assert all(ln.startswith("  | ") for ln in lines[1:]), result.stderr
    return lines[0]


def test_demo_scenarios_end_to_end_with_json(
    run_cli: RunCli, redis_spec: str, tmp_path: Path
) -> None:
    out = tmp_path / "report.json"
    result = run_cli("run", "scenarios/atomic-lua.toml", "scenarios/drf-django-redis.toml",
                     "--workers", "2", "--redis", redis_spec, "--json", str(out))
    assert result.code == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    assert report["ok"] is True and report["exit_code"] == 0
    runs = {r["scenario"]: r for r in report["runs"]}
    assert runs["atomic-lua"]["verdict"] == "pass" and runs["atomic-lua"]["accepted"] == 100
    assert runs["drf-django-redis"]["verdict"] == "fail"
    assert len({r["identity"] for r in report["runs"]}) == 2  # a fresh client per run
    for r in report["runs"]:
        assert r["identity"].startswith("127.")
        assert r["workers"] == 2 and r["threads"] == 2 and r["limit"] == 100
        assert r["sent"] == r["accepted"] + r["rejected"] + r["errors"] == 400
        assert r["workers_seen"] == 2
    for key in ("python", "django", "djangorestframework", "gunicorn", "redis-server"):
        assert report["versions"][key] not in ("", "not installed", "not started")
    assert report["redis"]["provider"] == redis_spec
    assert "throttle-harness results" in result.stdout


def test_a_violation_against_an_exact_claim_exits_1(run_cli: RunCli, redis_spec: str) -> None:
    result = run_cli("run", "scenarios/drf-django-redis.toml", "--workers", "2",
                     "--expect", "exact", "--redis", redis_spec)
    assert result.code == 1
    assert "UNEXPECTED" in result.stdout and "over-admission" in result.stdout


def test_own_app_from_the_command_line(run_cli: RunCli, redis_spec: str, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = run_cli("run", "--app", "plain_wsgi:shared", "--pythonpath", str(APPS),
                     "--env", "APP_LIMIT=20", "--rate", "20/min", "--workers", "1,2",
                     "--redis", redis_spec, "--json", str(out))
    assert result.code == 0, result.stdout + result.stderr
    assert [r["verdict"] for r in json.loads(out.read_text())["runs"]] == ["pass", "pass"]


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--rate", "100/fortnight"], "unknown period 'fortnight'"),
        (["--rate", "abc"], "expected N/PERIOD"),
        (["--rate", "100/hour", "--workers", "0"], "workers must be a whole number of at least 1"),
        (["--rate", "100/hour", "--workers", "two"], "--workers 'two'"),
        (["--rate", "100/hour", "--env", "NOEQUALS"], "expected KEY=VALUE"),
        (["--rate", "100/hour", "--redis", "memcached"], "unknown --redis 'memcached'"),
        (["--rate", "100/hour", "--redis", "redis://192.168.1.9:6379"], "not a loopback"),
        (["--rate", "100/hour", "--threads", "x"], "invalid int value"),
        (["--rate", "100/hour", "--json", "/nonexistent/dir/r.json"], "does not exist"),
    ],
)
def test_bad_flags_exit_2_with_one_line(run_cli: RunCli, args: list[str], complaint: str) -> None:
    result = run_cli("run", "--app", "plain_wsgi:shared", *args)
    assert result.code == 2
    if "invalid int value" in complaint:  # argparse's own error, kept to one line
        assert result.stderr.count("\n") == 1 and complaint in result.stderr
    else:
        assert complaint in one_line_error(result)


def test_malformed_and_unknown_scenario_files(run_cli: RunCli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('app = "x:y"\nrate = \n')
    result = run_cli("run", str(bad))
    assert result.code == 2 and "malformed TOML" in one_line_error(result)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('app = "x:y"\nrate = "1/s"\nworker = 2\n')
    result = run_cli("run", str(unknown))
    assert result.code == 2 and "unknown key 'worker'" in one_line_error(result)


def test_an_app_that_does_not_import(run_cli: RunCli, redis_spec: str) -> None:
    result = run_cli("run", "--app", "broken_import:application", "--pythonpath", str(APPS),
                     "--rate", "10/min", "--workers", "2", "--redis", redis_spec)
    assert result.code == 2
    line = one_line_error(result)
    assert "app 'broken_import:application' failed to load" in line
    assert "ImportError: cannot import name 'Thing'" in line


def test_a_missing_app_module(run_cli: RunCli, redis_spec: str) -> None:
    result = run_cli("run", "--app", "no_such_module_here:app", "--rate", "10/min",
                     "--workers", "1", "--redis", redis_spec)
    assert result.code == 2
    assert "ModuleNotFoundError: No module named 'no_such_module_here'" in one_line_error(result)


def test_django_settings_that_raise(run_cli: RunCli, redis_spec: str) -> None:
    result = run_cli("run", "--app", "harness.demo.wsgi:application", "--pythonpath", str(APPS),
                     "--env", "DJANGO_SETTINGS_MODULE=bad_settings", "--rate", "10/min",
                     "--workers", "2", "--redis", redis_spec)
    assert result.code == 2
    assert "settings exploded" in one_line_error(result)


def test_a_port_in_use(run_cli: RunCli, redis_spec: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("run", "--app", "plain_wsgi:shared", "--pythonpath", str(APPS),
                         "--rate", "10/min", "--workers", "1", "--port", str(port),
                         "--redis", redis_spec)
    assert result.code == 3
    assert f"port {port} on 127.0.0.1 is in use" in one_line_error(result)


def test_no_redis_binary(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("run", "--app", "plain_wsgi:shared", "--rate", "10/min",
                     "--redis", "local", env={"PATH": str(tmp_path)})
    assert result.code == 3
    assert "no redis-server on PATH" in one_line_error(result)


def test_nothing_listening_at_a_redis_url(run_cli: RunCli) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run_cli("run", "--app", "plain_wsgi:shared", "--rate", "10/min",
                     "--redis", f"redis://:secret@127.0.0.1:{port}/0")
    assert result.code == 3
    line = one_line_error(result)
    assert "cannot reach Redis" in line and "secret" not in line


def test_no_scenario_and_no_app(run_cli: RunCli) -> None:
    result = run_cli("run", "--rate", "1/s")
    assert result.code == 2 and "no 'app' given" in one_line_error(result)
