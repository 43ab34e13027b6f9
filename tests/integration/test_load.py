"""run_load against real sockets: a threaded ``http.server`` on loopback whose paths answer
200, 500, 429, close the connection, chunk, hang, or close without saying so. The checks are
on counts, never on speed."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType

import psutil
import pytest

from harness.gate import generator as load_generator
from harness.gate.load import LoadResult, run_load
from harness.host.ports import LOOPBACK, free_port
from harness.http.request_template import Rendered

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
QUICK = {"duration_s": 0.3, "warmup_s": 0.1}
SLOW_ONCE_S = 1.5  # /slow-once: the first request answers this late, the others at once


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__((LOOPBACK, 0), _Handler)
        self.lock = threading.Lock()
        self.hits = 0
        self.connections = 0
        self.release = threading.Event()

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that timed out and closed: expected here


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # head and body go in two writes: no delayed-ACK stall
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.hits += 1
        path = self.path
        if path == "/hang":
            self.server.release.wait()
        if path == "/slow-once" and self.server.hits == 1:
            time.sleep(SLOW_ONCE_S)
        status = {"/fail": 500, "/throttled": 429}.get(path, 200)
        self.send_response(status)
        if path == "/close":
            self.send_header("Connection", "close")
        if path == "/lie":  # keep-alive by HTTP/1.1 rules, then closed anyway
            self.close_connection = True
        if path == "/chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"2\r\nok\r\n3\r\n!!!\r\n0\r\n\r\n")
            return
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_POST = do_GET


@pytest.fixture
def servers() -> Iterator[list[_Server]]:
    started = [_Server(), _Server()]
    threads = [threading.Thread(target=s.serve_forever, args=(0.02,), daemon=True) for s in started]
    for thread in threads:
        thread.start()
    yield started
    for server in started:
        server.release.set()
        server.shutdown()
        server.server_close()


def _endpoint(server: _Server) -> tuple[str, int]:
    return LOOPBACK, server.server_address[1]


def _get(path: str, method: str = "GET") -> Rendered:
    return Rendered(method, path, (), b"")


def _settled(result: LoadResult) -> LoadResult:
    """Every request sent was answered or counted as an error, exactly once."""
    server_errors = sum(n for status, n in result.statuses.items() if status >= 500)
    assert result.completed == sum(result.statuses.values())
    assert result.sent == result.completed + result.errors - server_errors
    assert len(result.latencies_ms) == result.completed
    assert list(result.latencies_ms) == sorted(result.latencies_ms)
    return result


def test_throughput_is_over_the_phase_not_the_drain(servers: list[_Server]) -> None:
    """One request answered 1 s after a 0.5 s phase must not cut the throughput to a third."""
    result = _settled(
        run_load(
            [_endpoint(servers[0])], _get("/slow-once"), connections=2, duration_s=0.5, warmup_s=0
        )
    )
    assert result.completed == servers[0].hits and max(result.latencies_ms) >= 1000 * SLOW_ONCE_S
    # every answer but the slow one (and at most one per connection in flight at the end), in
    # the phase's own 0.5 s; over the 1.5 s to the slow answer it read a third of that
    assert (result.completed - 3) / 0.5 <= result.throughput_rps < result.completed / 0.5
    assert result.duration_s == 0.5 and result.drain_s > 0.9


def test_closed_loop_counts(servers: list[_Server]) -> None:
    result = _settled(run_load([_endpoint(servers[0])], _get("/ok"), connections=4, **QUICK))
    assert result.rate is None
    assert result.completed > 0
    assert result.statuses == {200: result.completed}
    assert result.errors == 0 and result.error_rate == 0.0 and result.backlog == 0
    assert result.throughput_rps > 0 and result.percentile(95) > 0
    assert servers[0].hits >= result.completed  # the warm-up's requests too


def test_server_errors_count_as_errors(servers: list[_Server]) -> None:
    result = _settled(run_load([_endpoint(servers[0])], _get("/fail"), connections=2, **QUICK))
    assert result.completed > 0
    assert result.errors == result.completed == result.sent
    assert result.statuses == {500: result.completed}
    assert result.error_rate == 1.0


def test_throttled_answers_are_not_errors(servers: list[_Server]) -> None:
    result = _settled(run_load([_endpoint(servers[0])], _get("/throttled"), connections=2, **QUICK))
    assert result.completed > 0
    assert result.statuses == {429: result.completed}
    assert result.errors == 0


def test_closed_port_counts_connection_errors() -> None:
    port = free_port()  # nothing listens there
    result = _settled(run_load([(LOOPBACK, port)], _get("/"), connections=2, **QUICK))
    assert result.sent > 0
    assert result.errors == result.sent
    assert result.completed == 0 and result.statuses == {}
    assert result.error_rate == 1.0


def test_timeouts_count_as_errors(servers: list[_Server]) -> None:
    result = _settled(
        run_load(
            [_endpoint(servers[0])],
            _get("/hang"),
            connections=2,
            duration_s=0.2,
            warmup_s=0.0,
            timeout_s=0.2,
        )
    )
    assert result.completed == 0
    assert result.errors == result.sent >= 2


def test_fixed_rate_sends_the_schedule(servers: list[_Server]) -> None:
    rate, duration_s = 100.0, 0.5
    result = _settled(
        run_load(
            [_endpoint(servers[0])],
            _get("/ok"),
            connections=4,
            rate=rate,
            duration_s=duration_s,
            warmup_s=0.1,
        )
    )
    assert result.rate == rate
    assert result.sent > 0
    assert result.sent + result.backlog == round(rate * duration_s)


def test_connections_spread_over_endpoints(servers: list[_Server]) -> None:
    result = _settled(
        run_load([_endpoint(s) for s in servers], _get("/ok"), connections=4, **QUICK)
    )
    assert result.completed > 0
    assert [s.connections for s in servers] == [2, 2]  # keep-alive: opened once each
    assert all(s.hits > 0 for s in servers)


def test_reconnects_when_the_server_closes(servers: list[_Server]) -> None:
    result = _settled(run_load([_endpoint(servers[0])], _get("/close"), connections=2, **QUICK))
    assert result.completed > 0 and result.errors == 0
    assert servers[0].connections >= result.completed


def test_chunked_answers(servers: list[_Server]) -> None:
    result = _settled(run_load([_endpoint(servers[0])], _get("/chunked"), connections=2, **QUICK))
    assert result.completed > 0 and result.errors == 0


def test_a_stale_keep_alive_is_retried_only_when_idempotent(servers: list[_Server]) -> None:
    get = _settled(run_load([_endpoint(servers[0])], _get("/lie"), connections=2, **QUICK))
    assert get.completed > 0 and get.errors == 0
    post = _settled(run_load([_endpoint(servers[1])], _get("/lie", "POST"), connections=2, **QUICK))
    assert post.completed > 0 and post.errors > 0


def test_the_poll_fallback(servers: list[_Server], monkeypatch: pytest.MonkeyPatch) -> None:
    """Where there is no epoll, poll() does the same (in this process, one generator)."""
    monkeypatch.setattr(load_generator, "_poller", lambda: (select.poll(), 1000.0, None))
    fields = load_generator._generate(
        addresses=[_endpoint(servers[0])] * 2,
        request=_get("/ok"),
        duration_s=0.3,
        rate=200.0,
        phase=0,
        stride=1,
        timeout_s=5.0,
        warmup_s=0.1,
        start=time.monotonic(),
    )
    assert fields["sent"] + fields["backlog"] == 60
    assert fields["completed"] > 0 and fields["errors"] == 0


def test_rejects_what_it_does_not_load() -> None:
    with pytest.raises(ValueError):
        run_load([("10.0.0.1", 80)], _get("/"), duration_s=1, connections=1)
    with pytest.raises(ValueError):
        run_load([(LOOPBACK, 80)], _get("/"), duration_s=1, connections=0)
    with pytest.raises(ValueError):
        run_load([(LOOPBACK, 80)], _get("/"), duration_s=1, connections=1, rate=0)
    with pytest.raises(ValueError):
        run_load([], _get("/"), duration_s=1, connections=1)


def _generators(parent: psutil.Process) -> list[psutil.Process]:
    found = []
    for child in parent.children(recursive=True):
        try:
            if "child_main" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            pass
    return found


def _alive(proc: psutil.Process) -> bool:
    """Running, not a zombie (an orphan waits for init to reap it, which may take a while)."""
    try:
        return bool(proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


class _Stop(BaseException):
    pass


def test_an_interrupted_run_leaves_no_generator(servers: list[_Server]) -> None:
    me = psutil.Process()
    seen: list[psutil.Process] = []

    def interrupt(signum: int, frame: FrameType | None) -> None:
        running = _generators(me)
        if not running:  # not started yet: look again shortly
            signal.setitimer(signal.ITIMER_REAL, 0.05)
            return
        seen.extend(running)
        raise _Stop

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    try:
        with pytest.raises(_Stop):
            run_load([_endpoint(servers[0])], _get("/ok"), duration_s=30, connections=2)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert seen
    assert not any(_alive(p) for p in seen)
    assert not _generators(me)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal")
def test_the_generator_dies_with_its_caller(servers: list[_Server]) -> None:
    port = servers[0].server_address[1]
    code = (
        "from harness.gate.load import run_load; "
        "from harness.http.request_template import Rendered; "
        f"run_load([('{LOOPBACK}', {port})], Rendered('GET', '/ok', (), b''), "
        "duration_s=30, connections=1)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    caller = subprocess.Popen([sys.executable, "-c", code], env=env)
    try:
        generators: list[psutil.Process] = []
        while not generators:
            assert caller.poll() is None, "the caller ended before its generator started"
            generators = _generators(psutil.Process(caller.pid))
            threading.Event().wait(0.02)
        caller.kill()
        caller.wait()
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in generators) and time.monotonic() < deadline:
            threading.Event().wait(0.02)
        assert not any(_alive(p) for p in generators)
    finally:
        if caller.poll() is None:
            caller.kill()
            caller.wait()
