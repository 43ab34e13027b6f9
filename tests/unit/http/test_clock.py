"""Record times under a wall-clock step: the engines time requests on a monotonic clock, so a
step of the wall clock mid-burst (NTP, a resumed VM) never puts an answer before its request,
and a recovery check still waits one period from the burst's last answer."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness.campaign import follow_ups
from harness.host.ports import LOOPBACK
from harness.http import clock
from harness.traffic import Client, Record, Target, burst, sequential
from harness.traffic.ledger import Ledger
from harness.verdict import Burst, Claim, find
from tests.unit.traffic.stub_server import OK, stub_server

STEP_S = 3600.0  # the wall clock jumps back an hour


@pytest.fixture
def stepped_wall_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """``time.time`` as the system's until the returned function is called, an hour behind it
    from then on."""
    real = time.time
    behind = [0.0]
    monkeypatch.setattr(time, "time", lambda: real() - behind[0])

    def step() -> None:
        behind[0] = STEP_S

    return step


@pytest.fixture
def server(stepped_wall_clock: Callable[[], None]) -> Iterator[int]:
    """A server that steps the wall clock back as each request reaches it, then answers 200."""

    def answer(head: bytes) -> bytes:
        stepped_wall_clock()
        return OK

    with stub_server(answer) as port:
        yield port


@pytest.mark.parametrize("engine", [burst, sequential], ids=["burst", "sequential"])
def test_a_wall_clock_step_mid_burst_never_puts_an_answer_before_its_request(
    server: int, engine: Any
) -> None:
    records: list[Record] = engine(
        Target(LOOPBACK, server, workers=1, threads=1),
        4,
        clients=[Client(LOOPBACK, "client-1")],
        limit=4,
        tag="b1",
        deadline=time.monotonic() + 10,
    )
    assert time.time() < clock.now() - STEP_S / 2  # the wall clock did step back
    assert [r.status for r in records] == [200] * 4
    finding = find(Burst(LOOPBACK, records), Claim(limit=4, period_s=60, workers=1, threads=1))
    assert finding.tally.accepted == 4  # judged: no "received before sent" ValueError
    assert all(r.received_at is not None and r.received_at >= r.sent_at for r in records)


def test_recovery_waits_a_period_from_the_last_answer_whatever_the_wall_clock_does(
    stepped_wall_clock: Callable[[], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[float] = []

    def fresh(target: Target, ids: list[str], **kw: Any) -> list[Record]:
        sent.append(clock.now())
        return [Record(i, LOOPBACK, sent[-1], sent[-1], 200, "w1") for i in range(len(ids))]

    monkeypatch.setattr(follow_ups, "fresh_requests", fresh)
    last = clock.now()
    done = Burst(LOOPBACK, [Record(0, LOOPBACK, last - 0.01, last, 200, "w1")])
    stepped_wall_clock()
    period = Claim(limit=4, period_s=0.2, workers=1, threads=1)
    target = Target(LOOPBACK, 1, workers=1, threads=1)
    ledger = Ledger()
    ledger.add(done.records)
    checked = follow_ups.with_recovery(done, target, period, time.monotonic() + 10, ledger)
    assert len(checked.recovery) == 4  # not skipped as an hour away
    assert 0.2 <= sent[0] - last < 1.0
