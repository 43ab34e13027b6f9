"""The burst engine: every connection opened first, then every request fired at once.

Closer to the socket than a pooled HTTP client on purpose: the detection power of a throttle
check is how many requests are in flight together, and a pool that opens, reuses and re-opens
connections spreads the burst out (see tests/benchmarks/burst_power.py). Each request goes on
its own pre-opened TCP connection as a complete pre-built ``GET`` with ``Connection: close``;
responses are read with one ``selectors`` loop and parsed with h11 once they are complete.
"""

from __future__ import annotations

import resource
import selectors
import socket
import time

import h11

from harness.errors import UsageError
from harness.probe_protocol import WORKER_HEADER
from harness.traffic.records import Record

_WORKER_HEADER = WORKER_HEADER.lower().encode()
_FD_MARGIN = 64


def burst(
    host: str,
    port: int,
    path: str,
    count: int,
    *,
    identity: str = "127.0.0.1",
    timeout_s: float = 60.0,
) -> list[Record]:
    """Send ``count`` GET requests to ``host:port`` concurrently; one :class:`Record` each.

    ``identity`` is the loopback source address the requests come from (the client IP a
    throttle sees).
    """
    _ensure_fd_budget(count)
    request = _request_bytes(host, port, path)
    socks: list[socket.socket | None] = []
    errors: dict[int, str] = {}
    try:
        for i in range(count):
            try:
                socks.append(_connect(host, port, identity))
            except OSError as exc:
                socks.append(None)
                errors[i] = f"connect: {exc}"
        sent_at = [0.0] * count
        for i, sock in enumerate(socks):  # the hot loop: nothing in it but the send
            if sock is None:
                continue
            sent_at[i] = time.time()
            try:
                sock.send(request)
            except OSError as exc:
                errors[i] = f"send: {exc}"
        return _collect(socks, sent_at, errors, identity, timeout_s)
    finally:
        for sock in socks:
            if sock is not None:
                sock.close()


def _collect(
    socks: list[socket.socket | None],
    sent_at: list[float],
    errors: dict[int, str],
    identity: str,
    timeout_s: float,
) -> list[Record]:
    buffers: dict[int, bytearray] = {}
    received_at: dict[int, float] = {}
    selector = selectors.DefaultSelector()
    try:
        for i, sock in enumerate(socks):
            if sock is not None and i not in errors:
                buffers[i] = bytearray()
                selector.register(sock, selectors.EVENT_READ, i)
        deadline = time.monotonic() + timeout_s
        pending = len(buffers)
        while pending and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=max(0.0, deadline - time.monotonic())):
                i = key.data
                try:
                    chunk = key.fileobj.recv(65536)  # type: ignore[union-attr]
                except OSError as exc:
                    chunk, errors[i] = b"", f"recv: {exc}"
                if chunk:
                    buffers[i] += chunk
                    continue
                received_at[i] = time.time()
                selector.unregister(key.fileobj)
                # Close now: gunicorn >= 27 lingers up to 2 s after its FIN for the peer's.
                key.fileobj.close()  # type: ignore[union-attr]
                pending -= 1
    finally:
        selector.close()
    records = []
    for i in range(len(socks)):
        status = worker = None
        error = errors.get(i)
        if error is None and i not in received_at:
            error = f"no response within {timeout_s:g}s"
        elif error is None:
            status, worker, error = _parse(bytes(buffers[i]))
        records.append(
            Record(i, identity, sent_at[i], received_at.get(i), status, worker, error)
        )
    return records


def _connect(host: str, port: int, identity: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if identity != "127.0.0.1":
            sock.bind((identity, 0))
        sock.settimeout(10)
        sock.connect((host, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _request_bytes(host: str, port: int, path: str) -> bytes:
    client = h11.Connection(our_role=h11.CLIENT)
    head = h11.Request(
        method="GET",
        target=path,
        headers=[
            ("Host", f"{host}:{port}"),
            ("User-Agent", "throttle-harness"),
            ("Accept", "*/*"),
            ("Connection", "close"),
        ],
    )
    return client.send(head) + (client.send(h11.EndOfMessage()) or b"")


def _parse(raw: bytes) -> tuple[int | None, str | None, str | None]:
    """(status, worker, error) from a complete response read up to the server's close."""
    client = h11.Connection(our_role=h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    client.send(h11.EndOfMessage())
    client.receive_data(raw)
    client.receive_data(b"")
    try:
        while True:
            event = client.next_event()
            if isinstance(event, h11.Response):
                worker = next((v.decode() for k, v in event.headers if k == _WORKER_HEADER), None)
                return event.status_code, worker, None
            if event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
                return None, None, "connection closed before a response"
    except h11.RemoteProtocolError as exc:
        return None, None, f"malformed response: {exc}"


def _ensure_fd_budget(count: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = count + _FD_MARGIN
    if needed <= soft:
        return
    if hard != resource.RLIM_INFINITY and needed > hard:
        raise UsageError(
            f"--requests {count} needs {needed} open files but the limit is {hard} (ulimit -n)"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
