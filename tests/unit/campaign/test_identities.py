"""``{identity}`` values are never reused in a session: not by the next run of a scenario, not
by another scenario or ``throttle_check`` (a second ``run_matrix``), not by the gate's load
phase; and a file that is used up says so."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest

from harness import redaction, runner
from harness.campaign import identities
from harness.errors import UsageError
from harness.gate import release as gate
from harness.gate.load import LoadResult
from harness.http.request_template import Rendered
from harness.redis.providers import RedisServer
from harness.scenario import Scenario, load_scenarios


class QuietRedis(RedisServer):
    def clear(self, prefix: str) -> int:
        return 0  # nothing runs against it


REDIS = QuietRedis(url="redis://127.0.0.1:1/0", provider="url", owned=False, version="7")


@pytest.fixture(autouse=True)
def fresh_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(identities, "SESSION", identities.IdentitySource())
    monkeypatch.setattr(redaction, "MASKS", redaction.Masks())  # these values stay here


def scenario(
    values: Sequence[str] = (), identities: int = 1, workers: tuple[int, ...] = (1,)
) -> Scenario:
    (s,) = load_scenarios(
        [], {"app": "m:app", "rate": "5/min", "identities": identities, "env": {}}
    )
    return replace(
        s, identity_values=tuple(values), workers=workers, headers=(("X-Token", "{identity}"),)
    )


def runs_taking(monkeypatch: pytest.MonkeyPatch, batches: int) -> list[list[str]]:
    """Each run of ``run_matrix`` (faked) takes ``batches`` bursts' values; what each took."""
    taken: list[list[str]] = []

    def one_run(s: Scenario, workers: int, redis: Any, prefix: str, addresses: Any, values: Any):
        taken.append([v for _, batch in zip(range(batches), values, strict=False) for v in batch])
        return SimpleNamespace(as_expected=True)

    monkeypatch.setattr(runner, "_one_run", one_run)
    return taken


def test_runs_checks_and_scenarios_never_share_a_value(monkeypatch: pytest.MonkeyPatch) -> None:
    taken = runs_taking(monkeypatch, batches=2)
    tokens = scenario("abcdefghij", workers=(1, 2))
    observer = runner.SilentObserver()
    runner.run_matrix([tokens], REDIS, observer, runner.MatrixReport())  # two runs
    runner.run_matrix([tokens], REDIS, observer, runner.MatrixReport())  # a second check
    other = replace(tokens, name="other", workers=(1,))
    runner.run_matrix([other], REDIS, observer, runner.MatrixReport())
    assert taken == [list("ab"), list("cd"), list("ef"), list("gh"), list("ij")]
    generated = scenario()
    runner.run_matrix([generated, generated], REDIS, observer, runner.MatrixReport())
    assert len(set(taken[-1] + taken[-2])) == 4


def test_a_used_up_identity_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    taken = runs_taking(monkeypatch, batches=3)
    secrets = [f"tok_{i}" for i in range(7)]
    tokens = scenario(secrets, identities=3, workers=(1, 2, 4))
    with pytest.raises(UsageError, match=r"7 values are used up \(3 per burst\)") as caught:
        runner.run_matrix([tokens], REDIS, runner.SilentObserver(), runner.MatrixReport())
    assert taken == [secrets[:6]]  # a run stops sending once no whole burst is left
    assert "tok_" not in caught.value.message  # values can be secrets


def test_the_gate_load_phase_takes_a_value_no_run_used(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = scenario("abc")
    assert next(identities.values_for_run(tokens)) == ["a"]  # the verdict run's
    loaded: list[Rendered] = []

    @contextlib.contextmanager
    def meter(url: Any) -> Iterator[Any]:
        yield SimpleNamespace(stop=lambda: (None, None))

    @contextlib.contextmanager
    def fleet(spec: Any) -> Iterator[Any]:
        yield SimpleNamespace(host="127.0.0.1", ports=[1], metered=meter)

    def load(endpoints: Any, request: Rendered, **kw: Any) -> LoadResult:
        loaded.append(request)
        return LoadResult(1.0, 0, 0, 0, {}, ())

    monkeypatch.setattr(gate, "start_fleet", fleet)
    monkeypatch.setattr(gate, "run_load", load)
    gate._load_phase(tokens, REDIS, gate.LoadOptions(), 8, "p:")
    assert {dict(r.headers)["X-Token"] for r in loaded} == {"b"}
    assert next(identities.values_for_run(tokens)) == ["c"]


def test_identity_values_per_burst() -> None:
    generated = scenario(identities=3)
    values = identities.identity_values(generated)
    first, second = next(values), next(values)
    tag = first[0].split("-")[1]
    assert first == [f"client-{tag}-{n}" for n in (1, 2, 3)]
    assert second == [f"client-{tag}-{n}" for n in (4, 5, 6)]
    assert next(identities.identity_values(generated)) == [f"client-{tag}-{n}" for n in (7, 8, 9)]
    assert identities.IdentitySource().take(generated, 1) != [f"client-{tag}-1"]  # per process
    filed = identities.identity_values(scenario("abcdefg", identities=3))
    assert [next(filed), next(filed)] == [list("abc"), list("def")]
    assert next(filed, None) is None  # "g" alone cannot make a burst of three
