"""A run's bursts with a fake engine and fleet: which requests are sent again, what follows an
over-admission with nothing refused, and fresh client addresses."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest

from harness.campaign import bursts, follow_ups, rounds
from harness.fleet.probe_protocol import REQUEST_HEADER
from harness.fleet.stamps import Stamp
from harness.http.records import Client, Record, Target
from harness.traffic import burst as burst_engine
from harness.traffic import sequential
from harness.traffic.burst import CHUNK, _chunks
from harness.traffic.ledger import Ledger
from harness.verdict import Burst, Claim, find, judge
from tests.unit.traffic.stub_server import stub_server
from tests.unit.verdict.test_judge import burst, claim

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


def test_only_requests_that_provably_never_reached_the_app_are_sent_again() -> None:
    """Through the real engines: a server that closes on b1-1 and b1-2 before answering (as a
    killed worker does) and answers 429 to requests sent again; b1-3 is left unsent by the
    sequential engine past its deadline."""
    ip = "127.0.0.1"

    def answer(head: bytes) -> bytes:
        request = head.split(REQUEST_HEADER.encode() + b": ")[1].split(b"\r\n")[0]
        if request == b"b1-0":
            return b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        if b"." in request:  # sent again
            return b"HTTP/1.1 429 Too Many\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        return b""  # closed before a response

    def engine(target: Target, count: int, **kw: Any) -> list[Record]:
        records = burst_engine(target, count - 1, **kw)
        (unsent,) = sequential(target, 1, **{**kw, "deadline": time.monotonic() - 1})
        return [*records, replace(unsent, index=count - 1, request_id=f"b1-{count - 1}")]

    fleet = FakeFleet(
        {
            "b1-0": Stamp("b1-0", "w1", 1, 2, 200),
            "b1-2": Stamp("b1-2", "w1", 3),  # entered the app, never left: not provably lost
        }
    )
    with stub_server(answer) as port:
        (burst,) = rounds.one_round(
            engine,
            fleet,  # type: ignore[arg-type]
            Target(ip, port, workers=2, threads=1),
            4,
            CLAIM,
            [Client(ip, "client-1")],
            "b1",
            deadline=time.monotonic() + 10,
            align=None,
        )
    got = [(r.request_id, r.status, r.attempts, r.error) for r in burst.records]
    assert got == [
        ("b1-0", 200, 1, None),
        ("b1-1.2", 429, 2, None),
        ("b1-2", None, 1, "connection closed before a response"),  # indeterminate
        ("b1-3", None, 1, "not sent: the run's deadline passed"),
    ]
    assert set(burst.stamps) == {"b1-0", "b1-2"}


def test_nothing_rejected_is_followed_by_confirmation_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ip = "127.0.0.9"
    records = [Record(i, ip, T0, T0 + 0.1, 200, "w1", None, f"b1-{i}") for i in range(3)]
    monkeypatch.setattr(
        rounds,
        "fresh_requests",
        lambda target, ids, **kw: [
            Record(i, ip, T0 + 1, T0 + 1.1, 200, "w1", None, rid) for i, rid in enumerate(ids)
        ],
    )
    monkeypatch.setattr(rounds, "STAMP_WAIT_S", 0.0)
    (burst,) = rounds.one_round(
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


def test_chunks_pack_whole_clients() -> None:
    assert _chunks(3, 400) == [[(0, 0, 400), (1, 0, 400)], [(2, 0, 400)]]
    assert _chunks(1, CHUNK + 10) == [[(0, 0, CHUNK)], [(0, CHUNK, 10)]]
    assert sum(len(c) for c in _chunks(1000, 20)) == 1000
    assert all(sum(k for _, _, k in c) <= CHUNK for c in _chunks(1000, 20))


def test_more_bursts_while_no_crossing_has_overlapped() -> None:
    """A correct count whose crossings (or window starts) never overlapped gets up to
    EXTRA_BURSTS_NO_OVERLAP more bursts (a busy machine); once both have, EXTRA_BURSTS bound the
    run."""
    c = claim()
    lone = burst({"w1": (60, 140), "w2": (40, 160)}, together=1)
    shared = burst({"w1": (60, 140), "w2": (40, 160)})

    def wants(sent: list[Burst], overlap_possible: bool = True) -> bool:
        return bursts._wants_burst(judge(sent, c), len(sent), 3, c, overlap_possible)

    cap = 3 + bursts.EXTRA_BURSTS_NO_OVERLAP
    assert wants([lone] * (cap - 1))
    assert not wants([lone] * cap)
    some = [lone] * (3 + bursts.EXTRA_BURSTS - 1)
    assert wants(some)
    assert not wants([*some, shared])
    assert not wants([lone] * 3, False)  # sequential: no overlap to wait for
    # Crossings raced but never a window's start (two sync workers): the larger budget too.
    cold = burst({"w1": (60, 140), "w2": (40, 160)}, at_start=1)
    assert wants([cold] * (cap - 1))
    assert not wants([cold] * cap)
    assert not wants([shared] * 3)  # settled: three crossings raced, exact


def test_the_stopping_rule_asks_the_judge() -> None:
    """More bursts while an over-admission only a window edge explains is unsettled; none once
    the judge has proven a failure, however few bursts were planned."""
    c = claim(limit=20, period_s=1)
    edge = burst({"w1": (18, 2), "w2": (14, 6)}, t0=T0 - 0.3, span_s=0.5, limit=20)
    clean = burst({"w1": (10, 10), "w2": (10, 10)}, span_s=0.1, limit=20)
    assert judge([edge, clean, clean], c).kind == "pass"
    assert bursts._wants_burst(judge([edge, clean, clean], c), 3, 3, c, True)
    assert not bursts._wants_burst(judge([clean] * 3, c), 3, 3, c, True)
    over = burst({"w1": (30, 0), "w2": (30, 0)}, limit=20)
    assert judge([over], c).kind == "fail"
    assert not bursts._wants_burst(judge([over], c), 1, 3, c, True)


def test_burst_phases_spread_and_fit_before_the_next_clock_edge() -> None:
    phases = [bursts._phase(n, 1.0, 0.1) for n in range(12)]
    assert phases[0] == 0.0
    assert all(0 <= p <= 1.0 - 1.5 * 0.1 for p in phases)
    gaps = sorted(phases)
    assert min(b - a for a, b in zip(gaps, gaps[1:], strict=False)) > 0.02  # no two coincide
    assert bursts._phase(5, 1.0, 0.9) < 1.0  # no room: anywhere in the period


def _attempt(header: str, status: int, i: int) -> tuple[str, Record]:
    return header, Record(i, "127.0.0.9", T0 + i, T0 + i + 0.01, status, "w1", None, f"x-{i}")


def test_a_bypass_is_only_what_the_controls_could_not_have_had() -> None:
    c = claim(limit=5, period_s=60)
    trusted = [_attempt("", 429, 0)]
    for k in range(3):  # every spoofed request admitted, every control beside it refused
        trusted += [_attempt("X-Forwarded-For", 200, 2 * k + 1), _attempt("", 429, 2 * k + 2)]
    b = replace(burst({"w1": (3, 5), "w2": (2, 5)}, limit=5), bypass=tuple(trusted))
    assert find(b, c).bypassed == (("X-Forwarded-For", 3, 3),)
    assert judge([b], c).basis == "bypass"
    # A token refilled before one spoofed request (taken by it), and one before a control
    # (which was admitted, so the spoofed request after it tells nothing): no bypass.
    refill = [_attempt("", 429, 0), _attempt("X-Real-IP", 200, 1), _attempt("", 429, 2)]
    refill += [_attempt("X-Real-IP", 429, 3), _attempt("", 200, 4), _attempt("X-Real-IP", 200, 5)]
    refill += [_attempt("", 429, 6)]
    b = replace(b, bypass=tuple(refill))
    assert find(b, c).bypassed == (("X-Real-IP", 1, 1),)
    assert judge([b], c).basis != "bypass"


def test_recovery_waits_a_period_after_the_last_counted_request_of_the_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fault probe admitted after the burst (a Redis restart forgot the count) counts in a
    new window: the recovery check waits a period after it, not after the burst."""
    c = Claim(limit=5, period_s=1.0, workers=2, threads=2)
    b = burst({"w1": (3, 5), "w2": (2, 5)}, t0=T0, span_s=0.1, limit=5)
    ledger = Ledger()
    ledger.add(b.records)
    probe = Record(0, b.identity, T0 + 0.4, T0 + 0.45, 200, "w1", None, "b1-restart-0")
    refused = Record(1, b.identity, T0 + 0.6, T0 + 0.65, 429, "w1", None, "b1-restart-1")
    ledger.add([probe, refused])  # a refusal counts for nothing in a correct throttle
    assert ledger.last_counted(b.identity, c.statuses) == T0 + 0.45
    slept: list[float] = []
    monkeypatch.setattr(follow_ups.clock, "now", lambda: T0 + 0.7)
    monkeypatch.setattr(follow_ups.time, "sleep", slept.append)
    sent = [Record(i, b.identity, T0 + 2, T0 + 2.01, 200, "w1", None, f"r-{i}") for i in range(4)]
    monkeypatch.setattr(follow_ups, "fresh_requests", lambda *a, **kw: sent)
    after = follow_ups.with_recovery(b, TARGET, c, time.monotonic() + 60, ledger)
    # Under `any` two periods: a sliding-window counter's previous window still weighs in.
    assert slept == [pytest.approx(0.45 + 2.0 + follow_ups.RECOVERY_MARGIN_S - 0.7)]
    assert list(after.recovery) == sent and ledger.of(b.identity)[-4:] == sent
    for window, periods in (("sliding", 1), ("fixed", 1), ("sliding-counter", 2)):
        slept.clear()
        fresh = Ledger()
        fresh.add([*b.records, probe, refused])
        follow_ups.with_recovery(b, TARGET, replace(c, window=window), time.monotonic() + 60, fresh)
        assert slept == [pytest.approx(0.45 + periods + follow_ups.RECOVERY_MARGIN_S - 0.7)], window
