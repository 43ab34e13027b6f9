"""A loopback HTTP stub for driving the traffic engines without gunicorn: each connection's
request head is read whole, answered with whatever ``answer`` returns for it (nothing, part of
a response, or all of one), and the connection is then closed cleanly (a FIN, not a reset)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

from harness.host.ports import LOOPBACK

Answer = Callable[[bytes], bytes]  # the request head -> the bytes to send before closing

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


@contextlib.contextmanager
def stub_server(answer: Answer) -> Iterator[int]:
    """Serve on a free loopback port (yielded) until the block ends."""
    listener = socket.create_server((LOOPBACK, 0))
    listener.settimeout(0.05)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                head += chunk
            conn.sendall(answer(head))
            conn.shutdown(socket.SHUT_WR)
            while conn.recv(65536):  # until the client closes: the FIN arrives unmixed
                pass

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(10)
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        acceptor.join()
        listener.close()
