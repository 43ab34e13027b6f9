"""A server that closes before its response is complete (a reset connection, a killed worker),
through the burst engine's real sockets: the same record on every supported h11 (the tox
``oldest`` environment runs these on its floor, 0.14)."""

from __future__ import annotations

import time

import h11
import pytest

from harness.host.ports import LOOPBACK
from harness.traffic import Client, Target, burst, fresh_requests
from tests.unit.traffic.stub_server import OK, stub_server

HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n"


@pytest.mark.parametrize(
    ("sent", "error"),
    [
        (b"", "connection closed before a response"),
        (HEAD[:20], "connection closed inside a response's head"),
        (HEAD + b"abc", "connection closed inside a response's body"),
        (OK, None),
    ],
    ids=["nothing", "part-of-head", "part-of-body", "whole"],
)
def test_an_end_of_file_mid_response_is_recorded_as_such(sent: bytes, error: str | None) -> None:
    with stub_server(lambda head: sent) as port:
        (record,) = fresh_requests(
            Target(LOOPBACK, port, workers=1, threads=1),
            ["b1-0"],
            identity=LOOPBACK,
            value="client-1",
            deadline=time.monotonic() + 10,
        )
    assert (record.status, record.error) == (None if error else 200, error), h11.__version__


def test_a_burst_cut_off_by_the_server_records_each_request_as_closed() -> None:
    with stub_server(lambda head: b"") as port:
        records = burst(
            Target(LOOPBACK, port, workers=2, threads=1),
            3,
            clients=[Client(LOOPBACK, "client-1")],
            limit=1,
            tag="b1",
            deadline=time.monotonic() + 10,
        )
    assert [(r.status, r.error) for r in records] == [
        (None, "connection closed before a response")
    ] * 3, h11.__version__


def test_garbage_is_still_a_malformed_response() -> None:
    with stub_server(lambda head: b"SSH-2.0-OpenSSH\r\n\r\n") as port:
        (record,) = fresh_requests(
            Target(LOOPBACK, port, workers=1, threads=1),
            ["b1-0"],
            identity=LOOPBACK,
            value="client-1",
            deadline=time.monotonic() + 10,
        )
    assert record.status is None and (record.error or "").startswith("malformed response:")
