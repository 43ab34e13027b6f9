"""The Redis proxy's child process (``python -m harness.redis.proxy_child``, started by
:func:`harness.redis.proxy.redis_proxy`, where the faults and the control channel are
described): an asyncio loop that forwards each client connection to Redis, delays or resets
it, and answers the parent's commands on the control socket."""

from __future__ import annotations

import argparse
import asyncio
import collections
import socket
import struct
from collections.abc import Sequence

from harness.host.ports import LOOPBACK

_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST
_HIGH_WATER = 1 << 20  # bytes a connection may hold (queued or unsent) before reading pauses


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
    """The child's entry point: parse its arguments, then serve until the parent lets go."""
    parser = argparse.ArgumentParser(
        prog="python -m harness.redis.proxy_child",
        description="A TCP proxy to Redis that injects latency and outages.",
    )
    parser.add_argument("--listen-port", type=int, required=True)
    parser.add_argument("--upstream", required=True, metavar="HOST:PORT")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--control", required=True, metavar="PATH", help="a Unix socket to create")
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
