"""The command line as CI uses it: exit codes, one-line errors, JSON, nothing left running."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import ROOT, CliResult, cli_environment
from harness.redis.providers import open_redis

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


@pytest.mark.serial  # a correct pass needs the CPU: see conftest.py
def test_demo_scenarios_end_to_end_with_json(
    run_cli: RunCli, redis_spec: str, tmp_path: Path
) -> None:
    out = tmp_path / "report.json"
    md = tmp_path / "summary.md"
    result = run_cli(
        "run",
        "scenarios/atomic-lua.toml",
        "scenarios/drf-django-redis.toml",
        "--workers",
        "2",
        "--redis",
        redis_spec,
        "--json",
        str(out),
        "--markdown",
        str(md),
    )
    assert result.code == 0, result.stdout + result.stderr
    summary = md.read_text()
    assert summary.startswith("## throttle-harness: 2 runs, every verdict as expected")
    rows = [
        ln
        for ln in summary.splitlines()
        if ln.startswith("| atomic-lua") or ln.startswith("| drf-django-redis")
    ]
    assert len(rows) == 2 and "| pass | exact | ok |" in rows[0]
    assert "| FAIL | violation | ok |" in rows[1] and "not atomic" in summary
    report = json.loads(out.read_text())
    assert report["ok"] is True and report["exit_code"] == 0
    runs = {r["scenario"]: r for r in report["runs"]}
    atomic, drf = runs["atomic-lua"], runs["drf-django-redis"]
    assert atomic["verdict"] == "pass"
    assert len(atomic["bursts"]) >= 3 and all(b["accepted"] == 100 for b in atomic["bursts"])
    assert drf["verdict"] == "fail" and len(drf["bursts"]) == 1  # proven: no more bursts
    identities = [i for r in report["runs"] for i in r["identities"]]
    assert len(set(identities)) == len(identities) >= 4  # a fresh client per burst
    for r in report["runs"]:
        assert all(i.startswith("127.") for i in r["identities"])
        assert r["workers"] == 2 and r["threads"] == 2 and r["limit"] == 100
        assert r["sent"] == r["accepted"] + r["rejected"] + r["errors"]
        assert r["bursts"][0]["sent"] == 400
        for b in r["bursts"]:
            assert b["sent"] == b["accepted"] + b["rejected"] + b["errors"]
            assert b["overlap"]["at_crossing"] >= 1
        assert r["workers_seen"] == 2
    for key in ("python", "django", "djangorestframework", "gunicorn", "redis-server"):
        assert report["versions"][key] not in ("", "not installed", "not started")
    assert report["redis"]["provider"] == redis_spec
    assert "throttle-harness results" in result.stdout


def test_a_violation_against_an_exact_claim_exits_1(run_cli: RunCli, redis_spec: str) -> None:
    result = run_cli(
        "run",
        "scenarios/drf-django-redis.toml",
        "--workers",
        "2",
        "--expect",
        "exact",
        "--redis",
        redis_spec,
    )
    assert result.code == 1
    assert "UNEXPECTED" in result.stdout and "over-admission" in result.stdout


@pytest.mark.serial  # a correct pass needs the CPU: see conftest.py
def test_own_app_from_the_command_line(run_cli: RunCli, redis_spec: str, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = run_cli(
        "run",
        "--app",
        "plain_wsgi:shared",
        "--pythonpath",
        str(APPS),
        "--env",
        "APP_LIMIT=20",
        "--rate",
        "20/min",
        "--workers",
        "1,2",
        "--redis",
        redis_spec,
        "--json",
        str(out),
    )
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
        (["--rate", "100/hour", "--markdown", "/nonexistent/dir/r.md"], "does not exist"),
        (["--rate", "100/hour", "--junit", "/nonexistent/dir/r.xml"], "does not exist"),
        (["--rate", "100/hour", "--html", "/tmp"], "--html /tmp: is a directory"),
        (
            ["--rate", "100/hour", "--json", "/tmp/r", "--html", "/tmp/r"],
            "--html /tmp/r: another report is written to that file",
        ),
        (["--rate", "100/hour", "--json", "/tmp"], "--json /tmp: is a directory"),
        (["--rate", "100/hour", "--port", "70000"], "port must be a TCP port, 1 to 65535"),
        (["--rate", "100/hour", "--port", "0"], "port must be a TCP port, 1 to 65535"),
        (["--rate", "100/hour", "--port", "-1"], "port must be a TCP port, 1 to 65535"),
        (["--rate", "100/hour", "--path", "/api/\u00fc/"], "such as /api/%C3%BC/"),
        (["--rate", "100/hour", "--path", "/a%zz"], "'%' must start an escape"),
        (["--rate", "100/hour", "--workers", "-1"], "workers must be a whole number of at least 1"),
        (["--rate", "100/hour", "--workers", "1,0"], "workers must be a whole number"),
        (["--rate", "100/hour", "--threads", "0"], "threads must be a whole number of at least 1"),
        (["--rate", "100/hour", "--requests", "-5"], "requests must be a whole number"),
        (["--rate", "100/hour", "--min-workers-seen", "0"], "min_workers_seen must be a whole"),
    ],
)
def test_bad_flags_exit_2_with_one_line(run_cli: RunCli, args: list[str], complaint: str) -> None:
    # PATH without redis-server: reaching Redis would be exit 3, so exit 2 shows nothing started.
    result = run_cli(
        "run",
        "--app",
        "plain_wsgi:shared",
        "--redis",
        "local",
        *args,
        env={"THROTTLE_HARNESS_REDIS_SERVER": "/nonexistent/redis-server"},
    )
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
    result = run_cli(
        "run",
        "--app",
        "broken_import:application",
        "--pythonpath",
        str(APPS),
        "--rate",
        "10/min",
        "--workers",
        "2",
        "--redis",
        redis_spec,
    )
    assert result.code == 2
    line = one_line_error(result)
    assert "app 'broken_import:application' failed to load" in line
    assert "ImportError: cannot import name 'Thing'" in line


def test_a_missing_app_module(run_cli: RunCli, redis_spec: str) -> None:
    result = run_cli(
        "run",
        "--app",
        "no_such_module_here:app",
        "--rate",
        "10/min",
        "--workers",
        "1",
        "--redis",
        redis_spec,
    )
    assert result.code == 2
    assert "ModuleNotFoundError: No module named 'no_such_module_here'" in one_line_error(result)


def test_django_settings_that_raise(run_cli: RunCli, redis_spec: str) -> None:
    result = run_cli(
        "run",
        "--app",
        "harness.demo.wsgi:application",
        "--pythonpath",
        str(APPS),
        "--env",
        "DJANGO_SETTINGS_MODULE=bad_settings",
        "--rate",
        "10/min",
        "--workers",
        "2",
        "--redis",
        redis_spec,
    )
    assert result.code == 2
    assert "settings exploded" in one_line_error(result)


def test_a_port_in_use(run_cli: RunCli, redis_spec: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(
            "run",
            "--app",
            "plain_wsgi:shared",
            "--pythonpath",
            str(APPS),
            "--rate",
            "10/min",
            "--workers",
            "1",
            "--port",
            str(port),
            "--redis",
            redis_spec,
        )
    assert result.code == 3
    assert f"port {port} on 127.0.0.1 is in use" in one_line_error(result)


def test_no_redis_binary(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli(
        "run",
        "--app",
        "plain_wsgi:shared",
        "--rate",
        "10/min",
        "--redis",
        "local",
        env={"PATH": str(tmp_path)},
    )
    assert result.code == 3
    assert "no redis-server on PATH" in one_line_error(result)


def test_nothing_listening_at_a_redis_url(run_cli: RunCli) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run_cli(
        "run",
        "--app",
        "plain_wsgi:shared",
        "--rate",
        "10/min",
        "--redis",
        f"redis://:secret@127.0.0.1:{port}/0",
    )
    assert result.code == 3
    line = one_line_error(result)
    assert "cannot reach Redis" in line and "secret" not in line


def test_no_scenario_and_no_app(run_cli: RunCli) -> None:
    result = run_cli("run", "--rate", "1/s")
    assert result.code == 2 and "no 'app' given" in one_line_error(result)


def test_a_nul_anywhere_is_a_usage_error() -> None:
    """argv cannot carry a NUL, but main() can be called with one, and a file can hold one."""
    code = textwrap.dedent("""
        import sys
        from harness import cli
        from harness.host import cleanup
        for extra in (["--path", "/a\\x00b"], ["--pythonpath", "/src\\x00"],
                      ["--env", "A=x\\x00y"], ["--env", "A\\x00=x"],
                      ["--json", "/tmp/r\\x00.json"]):
            print(cli.main(["run", "--app", "m:app", "--rate", "1/s", *extra]))
        sys.exit(cleanup._pipe is not None)  # nothing needed a temporary directory
    """)
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=cli_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2"] * 5
    lines = result.stderr.splitlines()
    assert len(lines) == 5 and all(ln.startswith("throttle-harness: error: ") for ln in lines)
    assert "NUL" in result.stderr and "Traceback" not in result.stderr


def test_nul_characters_in_a_scenario_file(run_cli: RunCli, tmp_path: Path) -> None:
    for line in ('path = "/a\\u0000b"', 'pythonpath = ["src\\u0000"]', '[env]\nA = "x\\u0000y"'):
        path = tmp_path / "s.toml"
        path.write_text(f'app = "m:app"\nrate = "1/s"\n{line}\n')
        result = run_cli("run", str(path))
        assert result.code == 2 and "must not contain a NUL character" in one_line_error(result)


def test_gunicorn_daemon_is_refused(run_cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "daemon.toml"
    path.write_text('app = "m:app"\nrate = "1/s"\ngunicorn_args = ["--preload", "--daemon"]\n')
    result = run_cli("run", str(path))
    assert result.code == 2
    assert "'--daemon' (gunicorn's --daemon) is not allowed" in one_line_error(result)


def test_a_scenario_name_is_text_not_markup(
    run_cli: RunCli, redis_spec: str, tmp_path: Path
) -> None:
    common = (
        f'app = "plain_wsgi:shared"\npythonpath = ["{APPS}"]\nrate = "10/min"\n'
        'workers = [1]\n[env]\nAPP_LIMIT = "10"\n'
    )
    named = tmp_path / "named.toml"
    named.write_text('name = "api[/v2]"\n' + common)
    stem = tmp_path / "api[v2].toml"
    stem.write_text(common)
    out = tmp_path / "r.json"
    result = run_cli("run", str(named), str(stem), "--redis", redis_spec, "--json", str(out))
    assert result.code == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout.count("api[/v2]") == 2 and result.stdout.count("api[v2]") == 2
    assert [r["scenario"] for r in json.loads(out.read_text())["runs"]] == ["api[/v2]", "api[v2]"]
    stem.write_text('name = "api[/v2]"\napp = "m:app"\nrate = "1/fortnight"\n')  # errors too
    result = run_cli("run", str(stem))
    assert result.code == 2 and f"{stem}: invalid rate" in one_line_error(result)


def test_the_app_gets_the_rate_in_the_form_drf_reads(
    run_cli: RunCli, redis_spec: str, tmp_path: Path
) -> None:
    out = tmp_path / "r.json"
    result = run_cli(
        "run",
        "scenarios/atomic-lua.toml",
        "--rate",
        "10/Min",
        "--workers",
        "1",
        "--redis",
        redis_spec,
        "--json",
        str(out),
    )
    # End to end; the env the app gets is unit-tested (test_scenario.py). DRF today reads
    # "10/Min" as a KeyError, a 500 for every request.
    assert result.code == 0, result.stdout + result.stderr
    (run,) = json.loads(out.read_text())["runs"]
    assert (run["rate"], run["verdict"], run["errors"]) == ("10/minute", "pass", 0)


@pytest.mark.parametrize(
    ("url", "code", "complaint", "shown"),
    [
        (
            "redis://default:s3cr3tpw@127.0.0.1:{port}/0",
            3,
            "cannot reach Redis",
            "redis://default:***@127.0.0.1:{port}/0",
        ),
        (
            "redis://127.0.0.1:{port}/0?password=s3cr3tpw",
            3,
            "cannot reach Redis",
            "redis://127.0.0.1:{port}/0?password=***",
        ),
        (
            "redis://127.0.0.1:{port}/0?db=0&PASSWORD=s3cr3tpw",
            2,
            "invalid Redis URL",
            "redis://127.0.0.1:{port}/0?db=0&PASSWORD=***",
        ),  # redis-py knows no PASSWORD=
    ],
)
def test_the_redis_password_is_never_shown(
    run_cli: RunCli, tmp_path: Path, url: str, code: int, complaint: str, shown: str
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "r.json"
    result = run_cli(
        "run",
        "--app",
        "plain_wsgi:shared",
        "--rate",
        "10/min",
        "--redis",
        url.format(port=port),
        "--json",
        str(out),
    )
    assert result.code == code
    line = one_line_error(result)
    assert complaint in line and shown.format(port=port) in line
    report = out.read_text()
    assert complaint in json.loads(report)["error"]
    for text in (result.stdout, result.stderr, report):
        assert "s3cr3tpw" not in text


def test_an_app_that_shows_the_redis_url_does_not_show_the_password(
    run_cli: RunCli, redis_spec: str, tmp_path: Path
) -> None:
    out = tmp_path / "r.json"
    args = (
        "--app",
        "leaky_import:application",
        "--pythonpath",
        str(APPS),
        "--rate",
        "10/min",
        "--workers",
        "1",
        "--json",
        str(out),
    )
    result = run_cli("run", *args, "--redis", redis_spec)  # the harness's own password
    assert result.code == 2
    assert "failed to load: ConnectionError: cannot connect to redis://:***@127.0.0.1:" in (
        one_line_error(result)
    )
    tail = [line for line in result.stderr.splitlines() if line.startswith("  | ")]
    assert any("redis://:***@" in line for line in tail)  # gunicorn's log tail, redacted
    report = json.loads(out.read_text())
    assert report["redis"]["url"].startswith("redis://:***@127.0.0.1:")
    assert not re.search("[0-9a-f]{32}", result.stdout + result.stderr + out.read_text())
    with open_redis(redis_spec) as users:  # a server of the user's, password in the URL
        url = users.url.replace("redis://:", "redis://default:")
        password = url.split(":")[2].split("@")[0]
        result = run_cli("run", *args, "--redis", url)
    assert result.code == 2
    assert "cannot connect to redis://default:***@127.0.0.1:" in one_line_error(result)
    assert password not in result.stdout + result.stderr + out.read_text()


def test_an_unwritable_report_is_one_line_and_exit_3(run_cli: RunCli, redis_spec: str) -> None:
    result = run_cli(
        "run",
        "--app",
        "plain_wsgi:shared",
        "--pythonpath",
        str(APPS),
        "--env",
        "APP_LIMIT=10",
        "--rate",
        "10/min",
        "--workers",
        "1",
        "--redis",
        redis_spec,
        "--json",
        "/dev/full",
    )  # writable, but no space
    assert result.code == 3, result.stdout + result.stderr
    assert "every verdict as expected" in result.stdout
    line = one_line_error(result)
    assert line == (
        "throttle-harness: error: cannot write the JSON report to /dev/full: "
        "No space left on device"
    )
