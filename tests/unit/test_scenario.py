from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import EXIT_USAGE, ScenarioError
from harness.fleet.gunicorn_options import FALLBACK_OPTIONS as _FALLBACK_OPTIONS
from harness.fleet.gunicorn_options import gunicorn_options as _gunicorn_options
from harness.runner import fleet_spec
from harness.scenario import load_scenarios

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


BASE = 'app = "m:app"\nrate = "100/hour"\n'


def test_bundled_scenarios_load_with_their_expectations() -> None:
    scenarios = {s.name: s for s in load_scenarios(sorted((ROOT / "scenarios").glob("*.toml")), {})}
    matrix = {
        "atomic-lua",
        "drf-django-redis",
        "drf-django-rediscache",
        "drf-locmem",
        "naive-counter",
    }
    assert set(scenarios) >= matrix | {"xff-bypass", "xff-bypass-closed"}
    locmem = scenarios["drf-locmem"]
    assert [locmem.expectation(w) for w in locmem.workers] == ["exact", "violation", "violation"]
    assert all(scenarios[name].workers == (1, 2, 4) for name in matrix)
    assert scenarios["atomic-lua"].expectation(4) == "exact"
    assert scenarios["xff-bypass"].bypass_check and scenarios["xff-bypass"].expect == "violation"
    assert scenarios["xff-bypass-closed"].env["DEMO_NUM_PROXIES"] == "0"
    racy = scenarios["asgi-read-await-incr"]
    assert (racy.worker_class, racy.threads, racy.expect) == ("uvicorn", 10, "violation")
    assert scenarios["asgi-atomic"].workers == (1, 2, 4)


def test_defaults_and_relative_pythonpath(tmp_path: Path) -> None:
    (s,) = load_scenarios([write(tmp_path, BASE + 'pythonpath = ["src"]\n')], {})
    assert s.name == "s"
    assert s.pythonpath == (str(tmp_path / "src"),)
    assert s.request_count == 400  # 4 x the limit
    assert (s.workers, s.threads, s.traffic, s.expect) == ((1, 2, 4), 1, "burst", "exact")


def test_command_line_overrides_file_values_and_merges_env(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + 'workers = [1, 2]\n[env]\nA = "1"\nB = "2"\n')
    (s,) = load_scenarios([path], {"workers": [4], "rate": "5/s", "env": {"B": "3"}})
    assert s.workers == (4,)
    assert s.rate.limit == 5
    assert dict(s.env) == {"A": "1", "B": "3"}


def test_command_line_alone_needs_app_and_rate() -> None:
    with pytest.raises(ScenarioError, match="no 'app' given"):
        load_scenarios([], {"rate": "1/s"})
    with pytest.raises(ScenarioError, match="no 'rate' given"):
        load_scenarios([], {"app": "m:app"})


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        (BASE + "colour = 'red'\n", "unknown key 'colour'"),
        (BASE + "workers = [0]\n", "workers must be a whole number of at least 1"),
        (BASE + "workers = []\n", "workers must be a list (not empty)"),
        (BASE + "threads = 'two'\n", "threads must be a whole number"),
        (BASE + "expect = 'maybe'\n", "expect must be one of exact, violation"),
        ('app = "m:app"\nrate = "100/fortnight"\n', "unknown period 'fortnight'"),
        ('app = "nocolon"\nrate = "1/s"\n', "app must be MODULE:CALLABLE"),
        (BASE + "path = 'api'\n", "path must be an absolute URL path"),
        (BASE + "[expect_by_workers]\nx = 'exact'\n", "key 'x' is not a worker count"),
        ("app = \n", "malformed TOML"),
    ],
)
def test_bad_files_are_one_line_usage_errors(tmp_path: Path, text: str, complaint: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as caught:
        load_scenarios([path], {})
    assert complaint in caught.value.message
    assert str(path) in caught.value.message
    assert "\n" not in caught.value.message
    assert caught.value.exit_code == EXIT_USAGE


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenarios([tmp_path / "nope.toml"], {})


@pytest.mark.parametrize("port", [0, -1, 65536, 70000, True, "80"])
def test_ports_outside_1_to_65535_are_refused(tmp_path: Path, port: object) -> None:
    with pytest.raises(ScenarioError, match="port must be a TCP port, 1 to 65535"):
        load_scenarios([], {"app": "m:app", "rate": "1/s", "port": port})


@pytest.mark.parametrize("port", [1, 8000, 65535])
def test_ports_in_range_are_kept(port: int) -> None:
    (s,) = load_scenarios([], {"app": "m:app", "rate": "1/s", "port": port})
    assert s.port == port


@pytest.mark.parametrize(
    ("path", "complaint"),
    [
        ("/api/\u00fc/", "has the character '\u00fc'"),
        ("/api/\u00fc/", "such as /api/%C3%BC/"),  # the percent-encoded form to use instead
        ("/a\x00b", "must not contain a NUL character"),
        ("/a\x7fb", "has the character '\\x7f'"),
        ("/a\x1bb", "has the character '\\x1b'"),
        ("/a b", "absolute URL path"),
        ("/a\tb", "absolute URL path"),
        ("/a%zz", "'%' must start an escape"),
        ("/a%2", "'%' must start an escape"),
        ("api/", "absolute URL path"),
    ],
)
def test_paths_must_be_printable_ascii(path: str, complaint: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenarios([], {"app": "m:app", "rate": "1/s", "path": path})
    assert complaint in caught.value.message
    assert "\n" not in caught.value.message and "\x00" not in caught.value.message


@pytest.mark.parametrize("path", ["/api/%C3%BC/", "/api/items/?page=2&x=%20", "/a/~b!$'()*+,;=:@"])
def test_percent_encoded_and_reserved_characters_are_fine(path: str) -> None:
    (s,) = load_scenarios([], {"app": "m:app", "rate": "1/s", "path": path})
    assert s.path == path


def test_a_nul_in_a_path_from_a_file(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + 'path = "/a\\u0000b"\n')
    with pytest.raises(ScenarioError, match="path must not contain a NUL character"):
        load_scenarios([path], {})


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"pythonpath": ["/src\x00evil"]}, "pythonpath must not contain a NUL"),
        ({"env": {"A": "x\x00y"}}, "env.A must not contain a NUL"),
        ({"env": {"A\x00": "x"}}, "env must not contain a NUL"),
        ({"env": {"A=B": "x"}}, "'A=B' is not a valid variable name"),
        ({"env": {"": "x"}}, "'' is not a valid variable name"),
        ({"app": "m:a\x00pp"}, "app must not contain a NUL"),
        ({"gunicorn_args": ["--name", "a\x00"]}, "gunicorn_args must not contain a NUL"),
    ],
)
def test_what_reaches_a_subprocess_has_no_nul(overrides: dict[str, object], complaint: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenarios([], {"app": "m:app", "rate": "1/s", **overrides})
    assert complaint in caught.value.message
    assert caught.value.exit_code == EXIT_USAGE


def test_the_rate_is_canonical_and_the_given_spelling_kept() -> None:
    (s,) = load_scenarios([], {"app": "m:app", "rate": "100/Hour"})
    assert (s.rate.text, s.rate.given, s.rate.period_s) == ("100/hour", "100/Hour", 3600)


def test_the_app_is_handed_the_canonical_rate_and_its_redis() -> None:
    """What the app's environment holds is the harness's rule, not what DRF would make of the
    user's spelling (DRF reads ``period[0]`` case-sensitively today; a later release may not)."""
    (s,) = load_scenarios([], {"app": "m:app", "rate": "10/Min", "env": {"A": "1"}})
    spec = fleet_spec(s, 2, "redis://:pw@127.0.0.1:1/0", "prefix:", connections=8)
    assert dict(spec.env) == {
        "A": "1",
        "REDIS_URL": "redis://:pw@127.0.0.1:1/0",
        "THROTTLE_HARNESS_KEY_PREFIX": "prefix:",
        "THROTTLE_HARNESS_RATE": "10/minute",
    }
    assert (spec.workers, spec.connections) == (2, 8)


@pytest.mark.parametrize(
    ("args", "culprit", "option"),
    [
        (["-D"], "-D", "--daemon"),
        (["--daemon"], "--daemon", "--daemon"),
        (["--daemon=true"], "--daemon=true", "--daemon"),
        (["--daem"], "--daem", "--daemon"),  # argparse takes unambiguous abbreviations
        (["-RD"], "-RD", "--daemon"),  # -R takes no value: -D follows it in the same word
        (["--preload", "--max-requests", "50", "-D"], "-D", "--daemon"),
        (["-c", "gunicorn.conf.py"], "-c", "--config"),
        (["--config=x.py"], "--config=x.py", "--config"),
        (["-b", "0.0.0.0:80"], "-b", "--bind"),
        (["--bind", ":80"], "--bind", "--bind"),
        (["-b:80"], "-b:80", "--bind"),
        (["-w", "4"], "-w", "--workers"),
        (["--workers=4"], "--workers=4", "--workers"),
        (["-w4"], "-w4", "--workers"),
        (["--threads", "8"], "--threads", "--threads"),
        (["--thr", "8"], "--thr", "--threads"),
        (["-k", "gevent"], "-k", "--worker-class"),
        (["--worker-class=gevent"], "--worker-class=gevent", "--worker-class"),
        (["-p", "g.pid"], "-p", "--pid"),
        (["--pid", "g.pid"], "--pid", "--pid"),
    ],
)
def test_gunicorn_options_the_harness_owns_are_refused(
    args: list[str], culprit: str, option: str
) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenarios([], {"app": "m:app", "rate": "1/s", "gunicorn_args": args})
    message = caught.value.message
    assert f"gunicorn_args: {culprit!r} (gunicorn's {option}) is not allowed" in message
    assert "the harness owns gunicorn's binding, worker shape and daemonizing" in message
    assert caught.value.exit_code == EXIT_USAGE and "\n" not in message


def test_the_owned_options_are_read_from_the_installed_gunicorns_parser() -> None:
    """The refusals above mirror gunicorn's own argparse (abbreviations, clusters): that holds
    only while the harness reads gunicorn's option table, not its short fallback table, which
    it takes when gunicorn's internals move. If this fails, they moved: mend the reader."""
    options = _gunicorn_options()
    assert len(options) > len(_FALLBACK_OPTIONS)
    assert options["--max-requests"] == ("max_requests", False)
    assert options["--preload"] == ("preload_app", True)


def test_gunicorn_options_from_a_file_and_from_gunicorn_cmd_args(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + 'gunicorn_args = ["--preload", "--daemon"]\n')
    with pytest.raises(ScenarioError, match=r"'--daemon' \(gunicorn's --daemon\)") as caught:
        load_scenarios([path], {})
    assert str(path) in caught.value.message
    path = write(tmp_path, BASE + '[env]\nGUNICORN_CMD_ARGS = "--preload --workers 3"\n')
    with pytest.raises(ScenarioError, match="env.GUNICORN_CMD_ARGS: '--workers'"):
        load_scenarios([path], {})


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--preload"],
        ["--max-requests", "50", "--timeout=30"],
        ["--name", "my-app"],
        ["--worker-connections", "50"],
        ["--", "-D"],
    ],
)
def test_other_gunicorn_options_pass(args: list[str]) -> None:
    (s,) = load_scenarios([], {"app": "m:app", "rate": "1/s", "gunicorn_args": args})
    assert s.gunicorn_args == tuple(args)


def test_a_scenario_name_with_markup_is_kept_as_text(tmp_path: Path) -> None:
    (named,) = load_scenarios([write(tmp_path, BASE + 'name = "api[/v2]"\n')], {})
    (stem,) = load_scenarios([write(tmp_path, BASE, name="api[v2].toml")], {})
    assert (named.name, stem.name) == ("api[/v2]", "api[v2]")


def test_a_directory_is_not_a_scenario_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="is a directory"):
        load_scenarios([tmp_path], {})


@pytest.mark.parametrize(("given", "pace"), [("2x", 2.0), ("0.5x", 0.5), (3, 3.0), ("1.5", 1.5)])
def test_sustained_pace_is_a_multiple_of_the_rate(given: object, pace: float) -> None:
    (s,) = load_scenarios(
        [], {"app": "m:app", "rate": "5/second", "traffic": "sustained", "pace": given}
    )
    assert s.pace == pace and s.periods == 3
    assert s.claim(2).sustained and not s.claim(2).note


@pytest.mark.parametrize("given", ["fast", "0x", "-1x", "1000x", True])
def test_a_bad_pace_is_one_line(given: object) -> None:
    with pytest.raises(ScenarioError, match="pace must"):
        load_scenarios([], {"app": "m:app", "rate": "5/second", "pace": given})


def test_sustained_traffic_that_would_outlast_the_timeout_says_what_is_tested_instead() -> None:
    (s,) = load_scenarios([], {"app": "m:app", "rate": "100/hour", "traffic": "sustained"})
    c = s.claim(2)
    assert not c.sustained
    assert "would outlast the run's 120s timeout: bursts were sent instead" in c.note


def test_faults_need_bursts() -> None:
    with pytest.raises(ScenarioError, match="faults act around bursts"):
        load_scenarios(
            [],
            {"app": "m:app", "rate": "5/s", "traffic": "sustained", "faults": ["worker-kill"]},
        )
