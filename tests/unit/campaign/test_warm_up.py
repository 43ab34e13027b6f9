"""The warm-up: one request per thread of the fleet, the run's own request from an address no
client gets, released together; answers not judged."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from harness.campaign import bursts
from harness.http.records import Client, Record, Target
from harness.http.request_template import RequestTemplate
from harness.scenario import build_scenario
from harness.traffic.warm import WARM_UP_TAG, warm_up, warm_up_client
from tests.unit.traffic.stub_server import stub_server


def test_every_thread_gets_the_runs_own_request_released_together() -> None:
    heads: list[tuple[float, bytes]] = []
    lock = threading.Lock()

    def answer(head: bytes) -> bytes:
        with lock:
            heads.append((time.monotonic(), head))
        return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

    template = RequestTemplate("POST", "/api/{identity}/", (("X-Token", "{identity}"),), "a=b")
    client = warm_up_client("127.0.0.1")
    assert client.value.startswith("warm-up-")
    with stub_server(answer) as port:
        target = Target("127.0.0.1", port, workers=3, threads=1, request=template)
        records = warm_up(target, client, time.monotonic() + 10)
    assert len(records) == len(heads) == target.capacity
    assert all(r.status == 404 and r.request_id.startswith(f"{WARM_UP_TAG}-") for r in records)
    for _, head in heads:
        assert head.startswith(f"POST /api/{client.value}/ ".encode())
        assert f"X-Token: {client.value}".encode() in head
    times = [t for t, _ in heads]
    assert max(times) - min(times) < 0.1  # every head completed at the release


def test_the_warm_up_address_is_never_a_clients(monkeypatch: Any) -> None:
    """send_bursts warms the fleet up from the next address of the stream, before the first
    burst takes its own."""
    warmed: list[Client] = []
    sent: list[str] = []

    def fake_warm_up(target: Target, client: Client, deadline: float) -> list[Record]:
        warmed.append(client)
        return []

    def fake_round(*args: Any, **kw: Any) -> list[Any]:
        sent.extend(c.address for c in args[5])
        raise _Stop  # one round is enough to see the addresses

    monkeypatch.setattr(bursts, "warm_up", fake_warm_up)
    monkeypatch.setattr(bursts, "one_round", fake_round)
    addresses = iter(["127.9.0.1", "127.9.0.2", "127.9.0.3"])
    scenario = build_scenario({"app": "m:app", "rate": "5/hour", "warm_up": True}, "t", Path("."))
    fleet: Any = type("F", (), {"host": "127.0.0.1", "port": 1, "ports": (1,)})()
    with pytest.raises(_Stop):
        bursts.send_bursts(fleet, scenario, scenario.claim(2), addresses)
    assert [c.address for c in warmed] == ["127.9.0.1"]
    assert sent == ["127.9.0.2"]
    # Off by default: an app that counts every request would count the warm-up's.
    warmed.clear()
    sent.clear()
    cold = build_scenario({"app": "m:app", "rate": "5/hour"}, "t", Path("."))
    with pytest.raises(_Stop):
        bursts.send_bursts(fleet, cold, cold.claim(2), iter(["127.9.0.4", "127.9.0.5"]))
    assert warmed == [] and sent == ["127.9.0.4"]


class _Stop(Exception):
    pass
