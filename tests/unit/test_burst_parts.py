"""The burst engine's pure parts: even waves over workers, and response parsing with h11."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest

from harness.traffic.burst import _even_waves, _Exchange


@pytest.fixture
def make() -> Iterator[Callable[[str], _Exchange]]:
    made: list[_Exchange] = []

    def exchange(worker: str) -> _Exchange:
        ex = _Exchange(socket.socket(), "127.0.0.1", 8000)
        ex.worker = worker
        made.append(ex)
        return ex

    yield exchange
    for ex in made:
        ex.sock.close()


def test_waves_take_threads_per_worker_and_an_even_share(
    make: Callable[[str], _Exchange],
) -> None:
    pools = {"a": [make("a") for _ in range(9)], "b": [make("b") for _ in range(4)]}
    waves = _even_waves(pools, count=10, threads=2)
    picked = [ex for wave in waves for ex in wave]
    assert len(picked) == 10
    assert sum(ex.worker == "b" for ex in picked) == 4  # all b had, the rest from a
    assert [[ex.worker for ex in wave] for wave in waves][:2] == [list("aabb"), list("aabb")]
    unpicked = [ex for ex in pools["a"] if ex not in picked]
    assert unpicked and all(ex.sock.fileno() == -1 for ex in unpicked)  # closed


def test_fewer_connections_than_requests_give_what_there_is(
    make: Callable[[str], _Exchange],
) -> None:
    waves = _even_waves({"a": [make("a")]}, count=5, threads=2)
    assert [len(w) for w in waves] == [1]
    assert _even_waves({}, count=5, threads=2) == []


def answer(raw: bytes) -> _Exchange:
    ex = _Exchange(socket.socket(), "127.0.0.1", 8000)
    ex.sock.close()
    ex.request("/api/", keep_alive=False)
    done = ex.feed(raw)
    if not done:
        done = ex.feed(b"")
    assert done
    return ex


def test_a_chunked_response_with_the_worker_header() -> None:
    ex = answer(b"HTTP/1.1 429 Too Many Requests\r\nTransfer-Encoding: chunked\r\n"
                b"X-Throttle-Harness-Worker: 4242\r\n\r\n2\r\nno\r\n0\r\n\r\n")
    assert (ex.status, ex.worker, ex.error) == (429, "4242", None)


def test_a_response_cut_short_and_garbage_are_errors() -> None:
    cut = answer(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    assert cut.error and cut.status is None
    garbage = answer(b"SSH-2.0-OpenSSH\r\n\r\n")
    assert garbage.error and "malformed" in garbage.error
