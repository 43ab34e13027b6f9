"""Production shapes without servers: fault and shape specs, budgets, indeterminate requests in
the checker, per-instance counts, and the gate report's names CI scripts read."""

from __future__ import annotations

import math
from pathlib import Path

import jsonschema
import pytest

from harness.errors import EXIT_USAGE, ScenarioError, UsageError
from harness.faults import FaultOutcome, FaultSpec, parse_fault
from harness.fleet.stamps import Stamp
from harness.gate.budgets import check, parse_budget
from harness.gate.release import Shape, parse_shape
from harness.http.records import Record
from harness.redis.providers import RedisServer
from harness.runner import check_faults_allowed
from harness.scenario import load_scenarios
from harness.verdict import Burst, Claim, judge, tally

T0 = 1_800_000_000.5


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("worker-kill", FaultSpec("worker-kill")),
        ("redis-restart", FaultSpec("redis-restart")),
        ("redis-outage", FaultSpec("redis-outage")),
        ("redis-latency=5", FaultSpec("redis-latency", 5.0)),
        ("redis-latency:2.5ms", FaultSpec("redis-latency", 2.5)),
        ("redis-latency 20", FaultSpec("redis-latency", 20.0)),
    ],
)
def test_fault_specs(text: str, spec: FaultSpec) -> None:
    assert parse_fault(text) == spec


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("kill-everything", "unknown fault"),
        ("redis-latency", "needs milliseconds"),
        ("redis-latency=fast", "needs milliseconds"),
        ("redis-latency=0", "above 0"),
        ("worker-kill=3", "takes no value"),
    ],
)
def test_bad_fault_specs(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_fault(text)


def test_scenario_keys_for_instances_and_faults(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        'app = "m:app"\nrate = "5/s"\ninstances = 3\n'
        'faults = ["redis-outage", "redis-latency=5"]\nexpect_outage = "closed"\n'
    )
    (s,) = load_scenarios([path], {})
    assert s.instances == 3 and s.expect_outage == "closed"
    assert [f.text for f in s.faults] == ["redis-outage", "redis-latency=5"]
    assert s.claim(2).workers == 6  # every instance's workers count


@pytest.mark.parametrize(
    ("extra", "complaint"),
    [
        ("instances = 0", "instances must be a whole number"),
        ('faults = ["nope"]', "unknown fault"),
        ('faults = "worker-kill"', "faults must be a list"),
        ('faults = ["worker-kill", "worker-kill"]', "each fault at most once"),
        ('expect_outage = "closed"', "needs the redis-outage fault"),
        ('faults = ["redis-outage"]\nexpect_outage = "sometimes"', "expect_outage must be one of"),
        ("port = 65535\ninstances = 2", "ports up to 65536"),
    ],
)
def test_bad_scenario_keys_are_usage_errors(tmp_path: Path, extra: str, complaint: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(f'app = "m:app"\nrate = "5/s"\n{extra}\n')
    with pytest.raises(ScenarioError, match=complaint) as err:
        load_scenarios([path], {})
    assert err.value.exit_code == EXIT_USAGE


def test_faults_on_redis_are_refused_on_a_redis_the_harness_did_not_start() -> None:
    theirs = RedisServer(url="redis://127.0.0.1:6379/0", provider="url", owned=False, version="7")
    for kind in ("redis-restart", "redis-outage", "redis-latency=5"):
        with pytest.raises(UsageError, match="did not start") as err:
            check_faults_allowed([parse_fault(kind)], "s", theirs)
        assert err.value.exit_code == EXIT_USAGE
    check_faults_allowed([parse_fault("worker-kill")], "s", theirs)  # no Redis touched
    ours = RedisServer(url="redis://127.0.0.1:6379/0", provider="local", owned=True, version="7")
    with pytest.raises(UsageError, match="cannot restart"):
        check_faults_allowed([parse_fault("redis-restart")], "s", ours)  # no restart given
    check_faults_allowed([parse_fault("redis-outage")], "s", ours)


def _killed_burst(admitted: int, indeterminate: int, refused: int) -> Burst:
    """A burst in which a worker died with ``indeterminate`` requests inside it."""
    records, stamps = [], {}
    statuses = [200] * admitted + [None] * indeterminate + [429] * refused
    for i, status in enumerate(statuses):
        worker = "w2" if status is None else f"w{1 + i % 2}"
        rid = f"b-{i}"
        records.append(
            Record(
                i,
                "127.0.0.2",
                T0,
                None if status is None else T0 + 0.3,
                status,
                None if status is None else worker,
                "connection closed before a response" if status is None else None,
                rid,
            )
        )
        # every request inside the app together: a crossing with overlap on both workers
        stamps[rid] = Stamp(rid, worker, 0, None if status is None else 1000, status)
    dead = frozenset(f"b-{i}" for i, s in enumerate(statuses) if s is None)
    return Burst("127.0.0.2", records, stamps, indeterminate=dead)


def test_indeterminate_requests_are_neither_errors_nor_admissions() -> None:
    claim = Claim(limit=100, period_s=3600, workers=2, threads=2)
    # An exact throttle that counted 2 requests whose worker died: 98 admitted, 2 unknown.
    b = _killed_burst(98, 2, 300)
    t = tally(b.records, claim.statuses, b.indeterminate)
    assert (t.accepted, t.indeterminate, t.errors, t.rejected) == (98, 2, 0, 300)
    assert t.sent == t.accepted + t.rejected + t.errors + t.indeterminate
    verdict = judge([b, _killed_burst(100, 0, 16)], claim)
    assert verdict.kind == "pass", verdict.reason
    assert "died with their worker" in verdict.reason
    # Fewer than the limit even if every unknown one was admitted: under-admission.
    assert judge([_killed_burst(97, 2, 300)], claim).kind == "fail"
    # The same unanswered requests, not marked indeterminate, are errors.
    plain = Burst(b.identity, b.records, b.stamps)
    assert judge([plain], claim).kind == "error"
    # Over the limit stays over, whatever is unknown.
    assert judge([_killed_burst(130, 4, 266)], claim).kind == "fail"


def test_accepted_and_served_per_instance() -> None:
    records = [
        Record(i, "a", T0, T0 + 0.1, 200 if i < 3 else 429, w, None, f"b-{i}")
        for i, w in enumerate(["1/10.a", "2/20.b", "2/21.c", "1/10.a", "2/20.b"])
    ]
    assert tally(records).per_instance() == {
        "1": {"accepted": 1, "served": 2},
        "2": {"accepted": 2, "served": 3},
    }
    single = [Record(0, "a", T0, T0 + 0.1, 200, "10.a", None, "b-0")]
    assert tally(single).per_instance() == {"1": {"accepted": 1, "served": 1}}


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        ("1x2", Shape(1, 2)),
        ("2x2", Shape(2, 2)),
        ("4x1@3", Shape(4, 1, 3)),
        (" 2 x 4 ", Shape(2, 4)),
        ("2x2@1", Shape(2, 2, 1)),
    ],
)
def test_shapes(text: str, shape: Shape) -> None:
    assert parse_shape(text) == shape
    assert parse_shape(shape.text).text == shape.text


def test_a_shape_without_instances_takes_the_scenarios(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('app = "m:app"\nrate = "5/s"\ninstances = 3\nexpect = "violation"\n')
    (s,) = load_scenarios([path], {})
    assert parse_shape("2x2").resolved(s) == Shape(2, 2, 3)
    assert parse_shape("2x2@1").resolved(s) == Shape(2, 2, 1)
    gated = parse_shape("2x2").applied(s)
    assert (gated.instances, gated.workers, gated.expect) == (3, (2,), "exact")


@pytest.mark.parametrize("text", ["2", "0x2", "2x0", "2x2@0", "two", "2x2@", "-1x2"])
def test_bad_shapes(text: str) -> None:
    with pytest.raises(UsageError, match="WORKERSxTHREADS"):
        parse_shape(text)


@pytest.mark.parametrize(
    ("text", "before", "after", "ok"),
    [
        ("p95=+10%", 100.0, 110.0, True),
        ("p95=+10%", 100.0, 111.0, False),
        ("rss=+200MB", 390.0, 540.0, True),  # the team's own change: +150 MB
        ("rss=+100MB", 390.0, 540.0, False),
        ("rss=+1GB", 390.0, 1400.0, True),
        ("errors=0", 0.0, 0.0, True),
        ("errors=0", 0.0, 0.01, False),
        ("throughput=-10%", 1000.0, 905.0, True),
        ("throughput=-10%", 1000.0, 890.0, False),
        ("throughput=500", 1000.0, 499.0, False),  # unsigned: a floor for throughput
        ("cpu=80", 45.0, 75.0, True),
        ("cpu=+20", 45.0, 70.0, False),  # signed without %: points
        ("p99=+20ms", 30.0, 49.0, True),
        ("p99=+0.01s", 30.0, 41.0, False),
        ("p95=+10%", 100.0, math.nan, False),  # nothing measured: no evidence the budget holds
    ],
)
def test_budgets(text: str, before: float, after: float, ok: bool) -> None:
    assert check(parse_budget(text), before, after).ok is ok


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("p95", "METRIC=VALUE"),
        ("latency=+1%", "METRIC=VALUE"),
        ("rss=+10ms", "rss takes"),
        ("p95=lots", "not a value"),
    ],
)
def test_bad_budgets(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_budget(text)


def test_fault_outcomes_in_the_run_report_schema() -> None:
    from harness.report.json_report import schema

    outcome = FaultOutcome(
        "redis-outage",
        1.25,
        "fail-closed",
        "refused all",
        {"during": {"sent": 4, "admitted": 0, "refused": 4, "errors": 0, "timeouts": 0}},
    )
    fault = outcome.as_dict()
    assert fault["kind"] == "redis-outage" and fault["at_s"] == 1.25
    assert fault["outcome"] == "fail-closed" and fault["during"]["refused"] == 4
    jsonschema.validate(fault, {"$defs": schema()["$defs"], "$ref": "#/$defs/fault"})
