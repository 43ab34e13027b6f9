"""A TCP proxy between the app and a Redis the harness started, to inject faults.

The proxy runs in a child process of its own (``python -m harness.redis.proxy_child``, started
with :func:`harness.host.processes.spawn`, so it dies with the harness), where an asyncio loop
forwards bytes without competing for the GIL with the harness's traffic engine. It listens on
127.0.0.1 only. This module is the parent's side: :func:`redis_proxy` starts the child and
:class:`RedisProxy` sends it commands.

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

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
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
                    "harness.redis.proxy_child",
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
