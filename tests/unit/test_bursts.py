"""A run's bursts with a fake engine and fleet: which requests are sent again, what follows an
over-admission with nothing refused, and fresh client addresses."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from harness import bursts
from harness.checker import Claim, find
from harness.evidence import Stamp
from harness.scenario import load_scenarios
from harness.traffic.burst import CHUNK, _chunks
from harness.traffic.records import Client, Record, Target
from tests.unit.test_checker import burst, claim

T0 = 1_800_000_000.5
TARGET = Target("127.0.0.1", 1, workers=2, threads=2)
CLAIM = Claim(limit=1, period_s=3600, workers=2, threads=2)


class FakeFleet:
    def __init__(self, stamps: dict[str, Stamp]) -> None:
        self.stamps = stamps

    def read_stamps(self) -> dict[str, Stamp]:  # every stamp so far, as Fleet's
        return dict(self.stamps)


def engine(records: list[Record]) -> Any:
    def send(target: Target, count: int, **kw: Any) -> list[Record]:
        return list(records)

    return send


def test_only_requests_that_provably_never_reached_the_app_are_sent_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ip = "127.0.0.9"
    records = [
        Record(0, ip, T0, T0 + 0.1, 200, "w1", None, "b1-0"),
        Record(1, ip, T0, None, None, None, "connection closed before a response", "b1-1"),
        Record(2, ip, T0, None, None, None, "connection closed before a response", "b1-2"),
        Record(3, ip, 0.0, None, None, None, "not sent: the run's deadline passed", "b1-3"),
    ]
    fleet = FakeFleet(
        {
            "b1-0": Stamp("b1-0", "w1", 1, 2, 200),
            "b1-2": Stamp("b1-2", "w1", 3),  # entered the app, never left: not provably lost
        }
    )
    sent_again: list[list[str]] = []

    def fresh(target: Target, ids: list[str], **kw: Any) -> list[Record]:
        sent_again.append(list(ids))
        return [Record(i, ip, T0 + 1, T0 + 1.1, 429, "w2", None, rid) for i, rid in enumerate(ids)]

    monkeypatch.setattr(bursts, "fresh_requests", fresh)
    monkeypatch.setattr(bursts, "STAMP_WAIT_S", 0.0)
    (burst,) = bursts._one_round(
        engine(records),
        fleet,
        TARGET,
        4,
        CLAIM,  # type: ignore[arg-type]
        [Client(ip, "client-1")],
        "b1",
        deadline=float("inf"),
        align=None,
    )
    assert sent_again == [["b1-1.2"]]
    again = burst.records[1]
    assert (again.index, again.status, again.attempts, again.request_id) == (1, 429, 2, "b1-1.2")
    assert burst.records[2].error and burst.records[3].error  # indeterminate, and never sent
    assert set(burst.stamps) == {"b1-0", "b1-2"}


def test_nothing_rejected_is_followed_by_confirmation_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ip = "127.0.0.9"
    records = [Record(i, ip, T0, T0 + 0.1, 200, "w1", None, f"b1-{i}") for i in range(3)]
    monkeypatch.setattr(
        bursts,
        "fresh_requests",
        lambda target, ids, **kw: [
            Record(i, ip, T0 + 1, T0 + 1.1, 200, "w1", None, rid) for i, rid in enumerate(ids)
        ],
    )
    monkeypatch.setattr(bursts, "STAMP_WAIT_S", 0.0)
    (burst,) = bursts._one_round(
        engine(records),
        FakeFleet({}),
        TARGET,
        3,  # type: ignore[arg-type]
        CLAIM,
        [Client(ip, "client-1")],
        "b1",
        deadline=float("inf"),
        align=None,
    )
    assert [r.request_id for r in burst.confirmation] == [f"b1c-{i}" for i in range(4)]


def test_client_addresses_wrap_around_the_loopback_space(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bursts.secrets, "randbelow", lambda n: n - 2)
    addresses = bursts.client_addresses()
    assert [next(addresses) for _ in range(3)] == [
        "127.254.255.253",
        "127.254.255.254",
        "127.1.0.1",
    ]


def test_client_addresses_never_repeat() -> None:
    addresses = bursts.client_addresses()
    taken = [next(addresses) for _ in range(600)]
    assert len(set(taken)) == 600 and all(a.startswith("127.") for a in taken)
    assert not any(
        a.endswith((".0", ".255")) or a.startswith(("127.0.", "127.255.")) for a in taken
    )


def test_identity_values_per_burst() -> None:
    (s,) = load_scenarios([], {"app": "m:app", "rate": "5/min", "identities": 3, "env": {}})
    values = bursts.identity_values(s)
    first, second = next(values), next(values)
    tag = first[0].split("-")[1]
    assert first == [f"client-{tag}-{n}" for n in (1, 2, 3)]
    assert second == [f"client-{tag}-{n}" for n in (4, 5, 6)]
    other = next(bursts.identity_values(s))[0]
    assert other != first[0]  # another session (or scenario) has values of its own
    filed = bursts.identity_values(replace(s, identity_values=tuple("abcdefg")))
    assert [next(filed), next(filed)] == [list("abc"), list("def")]
    assert next(filed, None) is None  # "g" alone cannot make a burst of three


def test_chunks_pack_whole_clients() -> None:
    assert _chunks(3, 400) == [[(0, 0, 400), (1, 0, 400)], [(2, 0, 400)]]
    assert _chunks(1, CHUNK + 10) == [[(0, 0, CHUNK)], [(0, CHUNK, 10)]]
    assert sum(len(c) for c in _chunks(1000, 20)) == 1000
    assert all(sum(k for _, _, k in c) <= CHUNK for c in _chunks(1000, 20))


def test_more_bursts_while_no_crossing_has_overlapped() -> None:
    """A correct count whose crossings never overlapped gets up to EXTRA_BURSTS_NO_OVERLAP more
    bursts (a busy machine); once one has overlapped, EXTRA_BURSTS bound the run."""
    c = claim()
    lone = find(burst({"w1": (60, 140), "w2": (40, 160)}, together=1), c)
    shared = find(burst({"w1": (60, 140), "w2": (40, 160)}), c)
    cap = 3 + bursts.EXTRA_BURSTS_NO_OVERLAP
    assert bursts._wants_burst([[lone]] * (cap - 1), 3, c, True)
    assert not bursts._wants_burst([[lone]] * cap, 3, c, True)
    some = [[lone]] * (3 + bursts.EXTRA_BURSTS - 1)
    assert bursts._wants_burst(some, 3, c, True)
    assert not bursts._wants_burst([*some, [shared]], 3, c, True)
    assert not bursts._wants_burst([[lone]] * 3, 3, c, False)  # sequential: no overlap to wait for
