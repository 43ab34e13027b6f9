"""A TCP proxy between the app and a Redis the harness started, to inject faults.

The proxy runs in a child process of its own (``python -m harness.redis.proxy``, started with
:func:`harness.host.processes.spawn`, so it dies with the harness), where an asyncio loop forwards
bytes without competing for the GIL with the harness's traffic engine. It listens on
127.0.0.1 only.

Faults:

* ``latency_ms``: every chunk read from a client is written to Redis ``latency_ms`` later, and
  replies are forwarded at once: the delay is added once per request/response round trip, in
  the client-to-Redis direction. Each connection keeps its chunks in order in a queue of its
  own, so that one connection's delay never holds up another's.
* :meth:`RedisProxy.outage`: every open connection is reset (RST, both sides), and connections
  accepted from then on are reset at once, so that the app sees Redis unreachable;
  :meth:`RedisProxy.restore` forwards new connections again.

Control channel: a Unix socket in the proxy's private temporary directory, which the child
creates once its listener is bound (a successful connect means ready) and which has one
connection, the parent's. Commands are lines (``outage``, ``restore``, ``stats``), each answered
with ``ok`` once it has taken effect (the reset sockets closed; ``ok N`` for ``stats``: the
client connections accepted so far), or ``error MESSAGE``. The child
exits when that connection ends, as well as on its parent-death signal.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from harness.errors import InfrastructureError
from harness.host import processes
from harness.host.cleanup import temp_dir
from harness.host.ports import LOOPBACK, free_port

__all__ = ["RedisProxy", "redis_proxy"]

_START_ATTEMPTS = 3  # another process may take the free port before the child binds it
_READY_TIMEOUT_S = 10.0
_ACK_TIMEOUT_S = 5.0  # an acknowledgement normally takes well under a millisecond
_HARNESS_ROOT = str(Path(__file__).resolve().parents[2])
_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST
_HIGH_WATER = 1 << 20  # bytes a connection may hold (queued or unsent) before reading pauses


@dataclass
class RedisProxy:
    """A running proxy: ``host:port`` forwards to the upstream Redis."""

    host: str
    port: int
    latency_ms: float
    pid: int
    _control: socket.socket = field(repr=False)
    _log: Path = field(repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _harness_connections: int = field(default=0, repr=False)

    def url(self, upstream_url: str) -> str:
        """``upstream_url`` with its host and port replaced by the proxy's (the password, db
        path and query kept)."""
        parts = urlsplit(upstream_url)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(f"not a redis:// URL: {parts.scheme}://…")
        userinfo, at, _ = parts.netloc.rpartition("@")
        return urlunsplit(parts._replace(netloc=f"{userinfo}{at}{self.host}:{self.port}"))

    def outage(self) -> None:
        """Reset every open connection and every new one, until :meth:`restore`."""
        self._command("outage")

    def restore(self) -> None:
        """Forward new connections again."""
        self._command("restore")

    def connections(self) -> int:
        """How many connections clients have opened through the proxy so far."""
        return int(self._command("stats"))

    def mark_harness_done(self) -> None:
        """From now on only the app connects: :meth:`app_connections` counts from here."""
        self._harness_connections = self.connections()

    def app_connections(self) -> int:
        """Connections opened since :meth:`mark_harness_done` (all, without the mark)."""
        return self.connections() - self._harness_connections

    def _command(self, command: str) -> str:
        """Send ``command``; the rest of its ``ok`` reply."""
        with self._lock:
            try:
                self._control.sendall(f"{command}\n".encode())
                reply = _read_line(self._control)
            except OSError as exc:
                reply = f"error {exc}"
        if reply != "ok" and not reply.startswith("ok "):
            raise InfrastructureError(
                f"the Redis proxy did not acknowledge {command!r}: {reply or 'no answer'}",
                detail=processes.log_tail(self._log),
            )
        return reply[3:]


@contextmanager
def redis_proxy(
    upstream_host: str, upstream_port: int, *, latency_ms: float = 0.0
) -> Iterator[RedisProxy]:
    """A proxy to ``upstream_host:upstream_port`` in a child process, stopped when the block
    exits (however it exits)."""
    if latency_ms < 0:
        raise ValueError(f"latency_ms must be >= 0, not {latency_ms}")
    with temp_dir("throttle-harness-proxy-") as workdir:
        log, control_path = workdir / "proxy.log", workdir / "control.sock"
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                p for p in (_HARNESS_ROOT, os.environ.get("PYTHONPATH")) if p
            ),
        }
        proc: subprocess.Popen[bytes] | None = None
        control: socket.socket | None = None
        try:
            for attempt in range(1, _START_ATTEMPTS + 1):
                port = free_port()
                argv = [
                    sys.executable,
                    "-P",
                    "-m",
                    "harness.redis.proxy",
                    "--listen-port",
                    str(port),
                    "--upstream",
                    f"{upstream_host}:{upstream_port}",
                    "--latency-ms",
                    repr(latency_ms),
                    "--control",
                    str(control_path),
                ]
                proc = processes.spawn(argv, env, log)
                control = _connect_control(proc, control_path)
                if control is not None:
                    break
                code = proc.poll()
                processes.stop(proc)
                proc = None
                tail = processes.log_tail(log)
                if code is None:
                    raise InfrastructureError(
                        f"the Redis proxy did not listen within {_READY_TIMEOUT_S:g} s", detail=tail
                    )
                if "in use" not in tail or attempt == _START_ATTEMPTS:
                    raise InfrastructureError(
                        f"the Redis proxy did not start (exit code {code})", detail=tail
                    )
            assert proc is not None and control is not None
            yield RedisProxy(LOOPBACK, port, latency_ms, proc.pid, control, log)
        finally:
            if control is not None:
                control.close()  # the child exits on its own at end-of-file
            if proc is not None:
                processes.stop(proc, grace_s=2.0)


def _connect_control(proc: subprocess.Popen[bytes], path: Path) -> socket.socket | None:
    """The control connection, once the child listens; None if it exited or never listened."""
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            time.sleep(0.005)
            continue
        except BaseException:
            sock.close()
            raise
        sock.settimeout(_ACK_TIMEOUT_S)
        return sock
    return None


def _read_line(sock: socket.socket) -> str:
    """One reply line (replies are short and one at a time: nothing follows the newline)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(256)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()


# --- the child ------------------------------------------------------------------------------


def _reset(transport: asyncio.Transport | None) -> None:
    """Close ``transport`` with a TCP reset rather than an orderly FIN."""
    if transport is None or transport.is_closing():
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
        except OSError:
            pass
    transport.abort()


class _Upstream(asyncio.Protocol):
    """The Redis side of a connection: replies go to the client at once."""

    def __init__(self, pair: _Client) -> None:
        self.pair = pair

    def data_received(self, data: bytes) -> None:
        self.pair.client.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.pair.upstream_lost(exc)

    def pause_writing(self) -> None:
        self.pair.hold("redis", True)

    def resume_writing(self) -> None:
        self.pair.hold("redis", False)


class _Client(asyncio.Protocol):
    """The app side of a connection, which owns its Redis side and the queue of delayed
    chunks between them."""

    def __init__(self, proxy: _Proxy) -> None:
        self.proxy = proxy
        self.client: asyncio.Transport = None  # type: ignore[assignment]
        self.upstream: asyncio.Transport | None = None
        self.queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self.queued = 0  # bytes in the queue
        self.timer: asyncio.TimerHandle | None = None
        self.holds = {"connecting"}  # why the client is not read from
        self.client_done = False  # the client closed: close Redis's side once the queue is sent
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.client = transport
        self.proxy.accepted += 1
        if self.proxy.down:
            self.closed = True
            _reset(transport)
            return
        self.client.pause_reading()  # until Redis's side is connected
        self.client.set_write_buffer_limits(high=_HIGH_WATER)
        self.proxy.pairs.add(self)
        asyncio.get_running_loop().create_task(self._connect_upstream())

    async def _connect_upstream(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_connection(
                lambda: _Upstream(self), self.proxy.upstream_host, self.proxy.upstream_port
            )
        except OSError:
            self.reset()
            return
        if self.closed:  # an outage, or the client left, while connecting
            _reset(transport)
            return
        self.upstream = transport
        transport.set_write_buffer_limits(high=_HIGH_WATER)
        self.hold("connecting", False)

    def hold(self, reason: str, on: bool) -> None:
        """Stop reading from the client while any reason holds (backpressure)."""
        if on:
            self.holds.add(reason)
        else:
            self.holds.discard(reason)
        if self.closed or self.client.is_closing():
            return
        if self.holds and self.client.is_reading():
            self.client.pause_reading()
        elif not self.holds and not self.client.is_reading():
            self.client.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.proxy.delay == 0 and not self.queue:
            assert self.upstream is not None
            self.upstream.write(data)
            return
        self.queue.append((asyncio.get_running_loop().time() + self.proxy.delay, data))
        self.queued += len(data)
        if self.queued > _HIGH_WATER:
            self.hold("queue", True)
        if self.timer is None:
            self._schedule()

    def _schedule(self) -> None:
        self.timer = asyncio.get_running_loop().call_at(self.queue[0][0], self._flush)

    def _flush(self) -> None:
        """Write the chunks that are due, in order; wait for the next one."""
        self.timer = None
        if self.closed or self.upstream is None:
            return
        now = asyncio.get_running_loop().time()
        while self.queue and self.queue[0][0] <= now:
            data = self.queue.popleft()[1]
            self.queued -= len(data)
            self.upstream.write(data)
        if self.queue:
            self._schedule()
        elif self.client_done:
            self.upstream.close()
        if "queue" in self.holds and self.queued <= _HIGH_WATER // 2:
            self.hold("queue", False)

    def pause_writing(self) -> None:  # the client reads replies more slowly than Redis sends
        if self.upstream is not None:
            self.upstream.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None and not self.upstream.is_closing():
            self.upstream.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None or self.closed or self.upstream is None:
            self.reset()
            return
        self.client_done = True  # the client closed: Redis's side once the queue is sent
        if not self.queue:
            self.upstream.close()

    def upstream_lost(self, exc: Exception | None) -> None:
        if exc is not None or self.closed:
            self.reset()
            return
        self.closed = True  # Redis closed (QUIT, a timeout): the client once it has the replies
        self._drop_queue()
        self.client.close()
        self.proxy.pairs.discard(self)

    def reset(self) -> None:
        """Reset both sides (an outage, or one side reset)."""
        self.closed = True
        self._drop_queue()
        _reset(self.client)
        _reset(self.upstream)
        self.proxy.pairs.discard(self)

    def _drop_queue(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.queue.clear()
        self.queued = 0


class _Proxy:
    """The child's state: the upstream address, the delay, and the connections open."""

    def __init__(self, upstream_host: str, upstream_port: int, latency_ms: float) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.delay = latency_ms / 1000.0
        self.down = False
        self.controlled = False
        self.accepted = 0  # client connections so far
        self.pairs: set[_Client] = set()

    def command(self, line: str) -> str:
        if line == "outage":
            self.down = True
            for pair in list(self.pairs):
                pair.reset()
            return "ok"
        if line == "restore":
            self.down = False
            return "ok"
        if line == "stats":
            return f"ok {self.accepted}"
        return f"error unknown command {line!r}"


class _Control(asyncio.Protocol):
    """The parent's connection: one reply line per command line; its end ends the child."""

    def __init__(self, proxy: _Proxy, done: asyncio.Future[None]) -> None:
        self.proxy = proxy
        self.done = done
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.done.done() or self.proxy.controlled:  # one controller: the parent
            transport.close()
            return
        assert isinstance(transport, asyncio.Transport)
        self.proxy.controlled = True
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            return
        self.buffer += data
        while b"\n" in self.buffer:
            raw, self.buffer = self.buffer.split(b"\n", 1)
            reply = self.proxy.command(raw.decode(errors="replace").strip())
            # After the resets' own callbacks, which close their sockets (call_soon is FIFO).
            asyncio.get_running_loop().call_soon(self.transport.write, f"{reply}\n".encode())

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None and not self.done.done():
            self.done.set_result(None)


async def _serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    host, _, port = args.upstream.rpartition(":")
    proxy = _Proxy(host.strip("[]"), int(port), args.latency_ms)
    try:
        server = await loop.create_server(
            lambda: _Client(proxy), LOOPBACK, args.listen_port, reuse_address=True, backlog=1024
        )
    except OSError as exc:
        print(f"cannot listen on {LOOPBACK}:{args.listen_port}: {exc}", flush=True)
        raise SystemExit(1) from None
    done: asyncio.Future[None] = loop.create_future()
    control = await loop.create_unix_server(lambda: _Control(proxy, done), args.control)
    print(
        f"forwarding {LOOPBACK}:{args.listen_port} to {args.upstream}"
        f" with {args.latency_ms} ms of latency",
        flush=True,
    )
    await done  # the parent closed the control connection, or exited
    control.close()
    server.close()
    for pair in list(proxy.pairs):
        pair.reset()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m harness.redis.proxy",
        description="A TCP proxy to Redis that injects latency and outages.",
    )
    parser.add_argument("--listen-port", type=int, required=True)
    parser.add_argument("--upstream", required=True, metavar="HOST:PORT")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--control", required=True, metavar="PATH", help="a Unix socket to create")
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
