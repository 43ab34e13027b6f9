"""Requests as real clients send them, with real servers: a POST limited per posted field, a
token limiter that refuses with 403, DRF's UserRateThrottle behind header authentication, and
bad request flags refused before anything starts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import CliResult
from harness.redaction import client_name

pytestmark = [pytest.mark.integration, pytest.mark.serial]  # see conftest.py
APPS = Path(__file__).resolve().parent / "apps"
RunCli = Callable[..., CliResult]


def run_app(
    run_cli: RunCli, redis_spec: str, tmp_path: Path, app: str, *args: str
) -> tuple[CliResult, dict[str, Any]]:
    out = tmp_path / "r.json"
    result = run_cli(
        "run",
        "--app",
        app,
        "--pythonpath",
        str(APPS),
        "--rate",
        "100/hour",
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
    assert "Traceback" not in result.stderr, result.stderr
    (run,) = json.loads(out.read_text())["runs"]
    return result, run


def test_a_login_limited_per_posted_username(
    run_cli: RunCli, redis_spec: str, tmp_path: Path
) -> None:
    """Failed logins (401) are admitted requests; each burst posts its own user name."""
    args = [
        "--path",
        "/login/",
        "--method",
        "POST",
        "--data",
        "username={identity}&password=wrong",
        "--accept-status",
        "200,401",
    ]
    result, run = run_app(run_cli, redis_spec, tmp_path, "login_app:application", *args)
    assert run["verdict"] == "pass", run["reason"]
    assert run["request"] == {"method": "POST", "path": "/login/", "header_names": [], "body": True}
    assert run["statuses"] == {"accept": [200, 401], "reject": [429]}
    clients = [b["client"] for b in run["bursts"]]
    assert len(set(clients)) == len(clients) >= 3
    # Without --accept-status every failed login is an error, and the hint says what to do.
    result, run = run_app(run_cli, redis_spec, tmp_path, "login_app:application", *args[:-2])
    assert run["verdict"] == "error" and "--accept-status" in run["hint"]


def test_a_token_limiter_refusing_with_403(
    run_cli: RunCli, redis_spec: str, tmp_path: Path
) -> None:
    args = [
        "--path",
        "/limited/",
        "--header",
        "Authorization: Bearer {identity}",
        "--reject-status",
        "403",
    ]
    result, run = run_app(run_cli, redis_spec, tmp_path, "token_app:application", *args)
    assert run["verdict"] == "pass", run["reason"]
    assert run["request"]["header_names"] == ["Authorization"]
    assert "Bearer" not in json.dumps(run)  # header values stay out of the report
    result, run = run_app(
        run_cli, redis_spec, tmp_path, "token_app:application", *args, "--env", "TOKEN_PATTERN=racy"
    )
    assert run["verdict"] == "fail", run["reason"]  # read, compare, then INCR: a narrow race


@pytest.mark.parametrize(("throttle", "verdict"), [("drf", "fail"), ("atomic", "pass")])
def test_drf_user_rate_throttle_behind_header_authentication(
    run_cli: RunCli, redis_spec: str, tmp_path: Path, throttle: str, verdict: str
) -> None:
    result, run = run_app(
        run_cli,
        redis_spec,
        tmp_path,
        "drf_user_app:application",
        "--path",
        "/limited/",
        "--header",
        "Authorization: Token {identity}",
        "--env",
        f"DRF_USER_THROTTLE={throttle}",
    )
    assert run["verdict"] == verdict, run["reason"]
    if verdict == "fail":
        assert "not atomic" in run["hint"]


@pytest.mark.parametrize(
    ("env", "bypass_check", "verdict"),
    [("TRUST_XFF=1", True, "fail"), ("TRUST_XFF=1", False, "pass"), ("TRUST_XFF=0", True, "pass")],
)
def test_a_throttle_trusting_x_forwarded_for_is_caught_by_the_bypass_check(
    run_cli: RunCli, redis_spec: str, tmp_path: Path, env: str, bypass_check: bool, verdict: str
) -> None:
    """Stock DRF keys AnonRateThrottle on X-Forwarded-For while NUM_PROXIES is unset."""
    result, run = run_app(
        run_cli,
        redis_spec,
        tmp_path,
        "xff_app:application",
        "--path",
        "/limited/",
        "--env",
        env,
        *(["--bypass-check"] if bypass_check else []),
    )
    assert run["verdict"] == verdict, run["reason"]
    bypass = {b["header"]: b for b in run["bursts"][-1]["bypass"]}
    if verdict == "fail":
        assert "bypass" in run["reason"] and "X-Forwarded-For" in run["reason"]
        assert bypass["X-Forwarded-For"]["admitted"] == 3
        assert "NUM_PROXIES" in run["hint"]
    if bypass_check and verdict == "pass":
        assert len(bypass) == 6 and not any(b["admitted"] for b in bypass.values())
        assert "X-Forwarded-For from 127.0.0.1" in bypass  # as a proxy on the same host
        assert (
            "no bypass through 5 client-address headers, nor X-Forwarded-For from a"
            in (run["reason"])
        )


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--header", "NoColon"], "expected 'Name: value'"),
        (["--method", "FETCH"], "unknown method 'FETCH'"),
        (["--data", "@/nonexistent/body.txt"], "no such file"),
        (["--accept-status", "429", "--reject-status", "429"], "must not overlap"),
        (["--header", "X-User: {user}"], "unknown placeholder {user}"),
        (["--reject-status", "7"], "not an HTTP status"),
    ],
)
def test_bad_request_flags_exit_2_before_anything_starts(
    run_cli: RunCli, args: list[str], complaint: str
) -> None:
    result = run_cli(
        "run",
        "--app",
        "plain_wsgi:shared",
        "--rate",
        "10/min",
        *args,
        "--redis",
        "local",
        env={"PATH": "/nonexistent"},
    )  # nothing could start
    assert result.code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and complaint in lines[0], result.stderr


def test_the_apps_redis_keys_are_reported_with_their_ttl(
    run_cli: RunCli, redis_spec: str, tmp_path: Path
) -> None:
    """As the team behind this project checked by hand: which keys, what TTL against the
    window, and a limiter whose keys never expire flagged."""
    result, run = run_app(
        run_cli,
        redis_spec,
        tmp_path,
        "handrolled_app:application",
        "--path",
        "/limited/",
        "--env",
        "PATTERN=incr-then-check",
    )
    state = run["redis_state"]
    assert state["pattern"] == "*" and state["keys"] == len(run["bursts"])  # one per client
    assert state["no_ttl_count"] == 0 and state["ttl_far_count"] == 0
    assert 3500 < state["ttl_range_s"][0] <= state["ttl_range_s"][1] <= 3600
    assert "redis keys '*'" in result.stdout
    result, run = run_app(
        run_cli,
        redis_spec,
        tmp_path,
        "handrolled_app:application",
        "--path",
        "/limited/",
        "--env",
        "PATTERN=no-expiry",
        "--redis-keys",
        "*handrolled:forever:*",
    )
    state = run["redis_state"]
    assert state["no_ttl_count"] == state["keys"] >= 3
    assert "never expire" in result.stdout


@pytest.mark.parametrize(("shared", "verdict"), [("1", "fail"), ("0", "pass")])
def test_clients_sharing_one_budget_are_caught(
    run_cli: RunCli, redis_spec: str, tmp_path: Path, shared: str, verdict: str
) -> None:
    """Every burst is a fresh client: a throttle keyed on a constant (ignoring the client's
    header) refuses the second one from its first request."""
    result, run = run_app(
        run_cli,
        redis_spec,
        tmp_path,
        "shared_budget_app:application",
        "--path",
        "/limited/",
        "--header",
        "X-Client: {identity}",
        "--env",
        f"SHARED_KEY={shared}",
    )
    assert run["verdict"] == verdict, run["reason"]
    if verdict == "fail":
        assert [b["accepted"] for b in run["bursts"]] == [100, 0]  # and no more bursts
        assert "share one budget" in run["hint"]


def test_a_hundred_identities_on_two_workers_are_each_exact(
    run_cli: RunCli, redis_spec: str, tmp_path: Path
) -> None:
    out = tmp_path / "r.json"
    result = run_cli(
        "run",
        "scenarios/atomic-lua.toml",
        "--workers",
        "2",
        "--rate",
        "20/hour",
        "--requests",
        "30",
        "--identities",
        "100",
        "--redis",
        redis_spec,
        "--json",
        str(out),
    )
    assert result.code == 0, result.stdout + result.stderr
    (run,) = json.loads(out.read_text())["runs"]
    assert run["verdict"] == "pass", run["reason"]
    clients = run["bursts"]
    assert len(clients) >= 100 and all(c["accepted"] == 20 for c in clients)
    assert (
        len({c["identity"] for c in clients}) == len({c["client"] for c in clients}) == len(clients)
    )
    assert "20-20 (" in result.stdout  # the table sums many clients up


def test_a_shared_budget_is_caught_with_several_identities_in_one_burst(
    run_cli: RunCli, redis_spec: str, tmp_path: Path
) -> None:
    args = ["--path", "/limited/", "--header", "X-Client: {identity}", "--bursts", "1"]
    result, run = run_app(
        run_cli, redis_spec, tmp_path, "shared_budget_app:application", *args, "--identities", "4"
    )
    assert run["verdict"] == "fail", run["reason"]
    assert sum(c["accepted"] for c in run["bursts"][:4]) == 100  # one budget, four clients
    assert "the 4 clients of burst 1 were admitted 100 together" in run["hint"]
    # One client alone sees an exact limit. It passes, unless the harness needed a second
    # burst (its first did not overlap at the limit): then that fresh client tells the truth.
    result, run = run_app(
        run_cli, redis_spec, tmp_path, "shared_budget_app:application", *args, "--identities", "1"
    )
    assert run["bursts"][0]["accepted"] == 100
    if len(run["bursts"]) == 1:
        assert run["verdict"] == "pass", run["reason"]
    else:
        assert run["verdict"] == "fail" and "share one budget" in run["hint"]


def test_identity_values_come_from_a_file_in_order(
    run_cli: RunCli, redis_spec: str, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("\n".join(f"tok-{i}" for i in range(12)) + "\n\n")
    result, run = run_app(
        run_cli,
        redis_spec,
        tmp_path,
        "token_app:application",
        "--path",
        "/limited/",
        "--header",
        "Authorization: Bearer {identity}",
        "--reject-status",
        "403",
        "--identities",
        "2",
        "--identity-file",
        str(tokens),
    )
    assert run["verdict"] == "pass", run["reason"]
    clients = [c["client"] for c in run["bursts"]]  # named by a digest, never by the token
    assert clients == [client_name(f"tok-{i}") for i in range(len(clients))]


@pytest.mark.parametrize(
    ("content", "identities", "complaint"),
    [
        ("", 1, "holds no values"),
        ("a\nb\n", 3, "holds 2 values, fewer than the 3"),
        (None, 1, "no such file"),
    ],
)
def test_bad_identity_files_exit_2(
    run_cli: RunCli, tmp_path: Path, content: str | None, identities: int, complaint: str
) -> None:
    path = tmp_path / "ids.txt"
    if content is not None:
        path.write_text(content)
    result = run_cli(
        "run",
        "--app",
        "plain_wsgi:shared",
        "--rate",
        "10/min",
        "--identities",
        str(identities),
        "--identity-file",
        str(path),
        "--redis",
        "local",
        env={"PATH": "/nonexistent"},
    )
    assert result.code == 2
    assert complaint in result.stderr and len(result.stderr.strip().splitlines()) == 1
