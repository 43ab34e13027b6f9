"""The load phase's pure parts: the response parser (checked against h11), the request bytes,
and the result's arithmetic."""

from __future__ import annotations

import math

import h11
import pytest

from harness.gate.load import LoadResult
from harness.gate.wire import parse_response, wire_request
from harness.http.request_template import RequestTemplate

RESPONSES = {
    "length": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    "empty": b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    "close": b"HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno",
    "mixed case": b"HTTP/1.1 500 Internal Server Error\r\ncOnTeNt-LeNgTh:  3 \r\n\r\nbad",
    "chunked": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\n\r\n"
    ),
    "trailers": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n"
    ),
    "no content": b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
    "not modified": b"HTTP/1.1 304 Not Modified\r\n\r\n",
    "continue first": (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
    ),
    "http/1.0": b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx",
}


def _h11(data: bytes) -> tuple[int, bool]:
    """(status, keep-alive) as h11 reads ``data`` (a GET's answer)."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(data)
    status = 0
    while True:
        event = conn.next_event()
        if isinstance(event, h11.Response):
            status = event.status_code
        if isinstance(event, h11.EndOfMessage):
            break
        assert event is not h11.NEED_DATA, "h11 wants more"
    return status, conn.our_state is h11.DONE and conn.their_state is h11.DONE


@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_parser_agrees_with_h11(name: str) -> None:
    data = RESPONSES[name]
    status, keep, used = parse_response(data) or (0, False, 0)
    assert used == len(data)
    assert (status, keep) == _h11(data)


@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_every_prefix_is_incomplete(name: str) -> None:
    data = RESPONSES[name]
    for cut in range(len(data)):
        assert parse_response(data[:cut]) is None, cut


def test_http10_keep_alive_is_honoured() -> None:
    """h11 closes every HTTP/1.0 connection; an explicit keep-alive may be reused (RFC 9112)."""
    data = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx"
    assert parse_response(data) == (200, True, len(data))


def test_body_until_close() -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nsome body"
    assert parse_response(data) is None
    assert parse_response(data, at_eof=True) == (200, False, len(data))


def test_head_answer_has_no_body() -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
    assert parse_response(data, head_request=True) == (200, True, len(data))


@pytest.mark.parametrize(
    "data",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 2x0 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
)
def test_malformed_answers_raise(data: bytes) -> None:
    with pytest.raises(ValueError):
        parse_response(data)


def test_truncated_answer_at_eof_raises() -> None:
    with pytest.raises(ValueError):
        parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", at_eof=True)


def test_wire_request_is_valid_http() -> None:
    template = RequestTemplate("POST", "/api/{identity}/", (("X-Token", "{identity}"),), "a=1")
    wire = wire_request(template.render("c 1"), "127.0.0.1", 8000)
    server = h11.Connection(h11.SERVER)
    server.receive_data(wire)
    request = server.next_event()
    assert isinstance(request, h11.Request)
    assert (request.method, request.target) == (b"POST", b"/api/c%201/")
    headers = dict(request.headers)
    assert headers[b"host"] == b"127.0.0.1:8000"
    assert headers[b"x-token"] == b"c 1"
    assert headers[b"content-length"] == b"3"
    body = server.next_event()
    assert isinstance(body, h11.Data) and body.data == b"a=1"
    assert isinstance(server.next_event(), h11.EndOfMessage)


def test_result_arithmetic() -> None:
    result = LoadResult(
        duration_s=2.0,
        sent=10,
        completed=8,
        errors=3,
        statuses={200: 7, 503: 1},
        latencies_ms=tuple(float(i) for i in range(1, 9)),
        in_phase=6,
        drain_s=1.5,
    )
    assert result.throughput_rps == 3.0  # answers within the phase, over its own duration
    assert result.error_rate == 0.3
    assert result.percentile(50) == 4.0
    assert result.percentile(100) == 8.0
    assert result.percentile(0.1) == 1.0
    with pytest.raises(ValueError):
        result.percentile(0)
    behind = LoadResult(2.0, 10, 10, 0, {200: 10}, (1.0,) * 10, rate=10.0, backlog=10)
    assert behind.error_rate == 0.5  # half the schedule never went out in time
    empty = LoadResult(0.0, 0, 0, 0, {}, ())
    assert math.isnan(empty.percentile(95))
    assert empty.throughput_rps == 0.0 and empty.error_rate == 0.0
