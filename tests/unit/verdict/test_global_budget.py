"""A claimed global limit: a burst's clients pooled into one history, judged against the window,
so that sharing one budget passes and over-admitting it fails; and what a global claim refuses."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from harness.campaign.bursts import _budget_wait
from harness.errors import ScenarioError
from harness.http.clock import now
from harness.http.records import Record
from harness.scenario import load_scenarios
from harness.traffic.ledger import Ledger
from harness.verdict import Burst, judge
from harness.verdict.global_budget import pooled
from tests.unit.verdict.test_judge import burst, claim


def split(whole: Burst, clients: int = 2, round: int = 1) -> list[Burst]:
    """``whole``'s requests dealt round-robin to ``clients`` clients of one burst."""
    out = []
    for c in range(clients):
        address = f"127.0.0.{10 + c}"
        records = [replace(r, identity=address) for r in whole.records[c::clients]]
        ids = {r.request_id for r in records}
        stamps = {k: v for k, v in whole.stamps.items() if k in ids}
        out.append(Burst(address, records, stamps, value=f"client-{c}", round=round))
    return out


def test_two_clients_sharing_the_limit_fail_per_client_and_pass_as_one_budget() -> None:
    shared = split(burst({"w1": (50, 150), "w2": (50, 150)}))
    v = judge(shared, claim())
    assert v.kind == "fail" and v.basis == "under" and "share one budget" in v.hint
    v = judge(shared, claim(scope="global"))
    assert v.kind == "pass", v.reason
    assert "one budget" in v.reason and len(v.bursts) == 1
    assert v.bursts[0].tally.sent == 400 and v.bursts[0].tally.accepted == 100


def test_a_global_budget_over_admitted_across_clients_fails() -> None:
    raced = split(burst({"w1": (105, 95), "w2": (105, 95)}), clients=3)  # 70 each: under it
    v = judge(raced, claim(scope="global"))
    assert v.kind == "fail" and v.basis == "over", v.reason
    assert "admitted 210 of 400, limit 100" in v.reason
    assert judge(raced, claim()).basis == "under"  # each client alone: under its limit


def test_pooled_keeps_rounds_apart_and_gives_the_recovery_to_the_last() -> None:
    first = split(burst({"w1": (50, 150), "w2": (50, 150)}), round=1)
    recovery = [Record(0, first[0].identity, now(), now() + 0.01, 200, "w1", None, "b1r-0")]
    first[0] = replace(first[0], recovery=recovery)
    second = split(burst({"w1": (50, 50), "w2": (50, 50)}), round=2)
    out = pooled([*first, *second])
    assert [len(b.records) for b in out] == [400, 200]
    assert [list(b.recovery) for b in out] == [[], recovery]
    assert out[0].identity == first[0].identity


def test_unnumbered_bursts_are_rounds_of_their_own() -> None:
    a, b = burst({"w1": (100, 100)}), burst({"w1": (100, 100)}, identity="127.0.0.3")
    assert len(pooled([a, b])) == 2


def test_the_next_burst_of_a_global_run_waits_for_the_budget_to_be_forgotten() -> None:
    ledger = Ledger()
    t = now()
    ledger.add([Record(0, "127.0.0.9", t - 0.05, t, 200, "w1", None, "b1-0")])
    per_second = claim(limit=5, period_s=1.0, window="fixed")
    assert _budget_wait(ledger, per_second) == 0.0  # each client's own budget: fresh clients
    wait = _budget_wait(ledger, replace(per_second, scope="global"))
    assert 0.9 < wait <= 1.1
    wait = _budget_wait(ledger, replace(per_second, scope="global", window="any"))
    assert 1.9 < wait <= 2.1  # a sliding-window counter takes two periods to forget


BASE = 'app = "m:app"\nscope = "global"\n'


@pytest.mark.parametrize(
    ("extra", "complaint"),
    [
        ('rate = "5/second"\nwarm_up = true\n', "warm_up would spend the one budget"),
        ('rate = "5/second"\nfaults = ["worker-kill"]\n', "faults probe with fresh clients"),
        ('rate = "5/second"\ntraffic = "sustained"\n', "sustained traffic judges each client"),
        ('rate = "5/second"\nscope = "everyone"\n', "scope must be one of client, global"),
    ],
)
def test_what_a_global_limit_refuses(tmp_path: Path, extra: str, complaint: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(BASE + extra if "scope" not in extra else 'app = "m:app"\n' + extra)
    with pytest.raises(ScenarioError) as caught:
        load_scenarios([path], {})
    assert complaint in caught.value.message and "\n" not in caught.value.message


def test_a_global_hour_says_one_burst_crosses_it(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(BASE + 'rate = "100/hour"\n')
    (hourly,) = load_scenarios([path], {})
    assert "one burst crossed it" in hourly.claim(2).note
    assert hourly.claim(2).scope == "global"
    (per_second,) = load_scenarios([path], {"rate": "5/second"})
    assert per_second.claim(2).note == ""
    (per_client,) = load_scenarios([path], {"scope": "client"})
    assert per_client.claim(2).note == "" and per_client.claim(2).scope == "client"
