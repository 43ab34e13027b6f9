from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import EXIT_USAGE, ScenarioError
from harness.scenario import load_scenarios

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


BASE = 'app = "m:app"\nrate = "100/hour"\n'


def test_bundled_scenarios_load_with_their_expectations() -> None:
    scenarios = {s.name: s for s in load_scenarios(sorted((ROOT / "scenarios").glob("*.toml")), {})}
    assert set(scenarios) >= {
        "atomic-lua", "drf-django-redis", "drf-django-rediscache", "drf-locmem"
    }
    locmem = scenarios["drf-locmem"]
    assert [locmem.expectation(w) for w in locmem.workers] == ["exact", "violation", "violation"]
    assert all(s.workers == (1, 2, 4) for s in scenarios.values())
    assert scenarios["atomic-lua"].expectation(4) == "exact"


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
