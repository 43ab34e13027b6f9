"""The burst engine's pure parts: an even share over workers, the steps aimed at the limit,
and response parsing with h11."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest

from harness.fleet.exchange import Exchange
from harness.fleet.workers import even_share
from harness.http.request_template import Rendered, RequestTemplate
from harness.traffic.lanes import Lane
from harness.traffic.steps import next_step


@pytest.fixture
def make() -> Iterator[Callable[[str], Exchange]]:
    made: list[Exchange] = []

    def exchange(worker: str) -> Exchange:
        ex = Exchange(socket.socket(), "127.0.0.1", 8000)
        ex.worker = worker
        made.append(ex)
        return ex

    yield exchange
    for ex in made:
        ex.sock.close()


def test_an_even_share_per_worker(make: Callable[[str], Exchange]) -> None:
    pools = {"a": [make("a") for _ in range(9)], "b": [make("b") for _ in range(4)]}
    queues = even_share(pools, count=10)
    assert {w: len(q) for w, q in queues.items()} == {"a": 6, "b": 4}  # all b had, the rest a
    picked = [ex for q in queues.values() for ex in q]
    unpicked = [ex for ex in pools["a"] if ex not in picked]
    assert len(unpicked) == 3 and all(ex.sock.fileno() == -1 for ex in unpicked)  # closed
    assert even_share({}, count=5) == {}


def lanes(make: Callable[[str], Exchange], sizes: list[int], slots: int) -> list[Lane]:
    return [Lane(slots, [make(f"w{n}") for _ in range(size)]) for n, size in enumerate(sizes)]


def test_steps_fill_up_to_the_limit_then_release_every_thread(
    make: Callable[[str], Exchange],
) -> None:
    fleet = lanes(make, [10, 10], slots=2)
    step = next_step(fleet, {0: 7})  # 7 places left below the last one
    assert [ex.worker for ex in step] == ["w0", "w1"] * 3 + ["w0"]
    step = next_step(fleet, {0: 0})  # the crossing: every thread's next request
    assert [ex.worker for ex in step] == ["w0", "w0", "w1", "w1"]
    assert [lane.released for lane in fleet] == [6, 5]
    assert step[0] is fleet[0].queue[4] and step[2] is fleet[1].queue[3]  # in lane order


def test_the_first_step_starts_the_window_with_one_request_per_thread(
    make: Callable[[str], Exchange],
) -> None:
    fleet = lanes(make, [10, 10], slots=2)
    step = next_step(fleet, {0: 7}, first=True)  # room for 7, but a window starts together
    assert [ex.worker for ex in step] == ["w0", "w1", "w0", "w1"]
    assert [lane.released for lane in fleet] == [2, 2]
    step = next_step(fleet, {0: 3})  # then as many as fit under the limit
    assert [ex.worker for ex in step] == ["w0", "w1", "w0"]
    assert len(next_step(lanes(make, [10, 10], slots=2), {0: 0}, first=True)) == 4  # limit 1


def test_the_first_step_is_one_per_thread_where_the_fleet_holds_more_than_the_limit(
    make: Callable[[str], Exchange],
) -> None:
    """Limit 5 on 2 workers of 10: not 4 first and the crossing next (the last place then goes
    to whichever request a worker dispatches first), but every thread's request at once."""
    fleet = lanes(make, [20, 20], slots=10)
    step = next_step(fleet, {0: 4}, first=True)
    assert len(step) == 20 and [lane.released for lane in fleet] == [10, 10]
    assert [ex.worker for ex in step[:4]] == ["w0", "w1", "w0", "w1"]
    fleet = lanes(make, [20, 20], slots=10)  # limit 20: the crossing is the next step's
    assert len(next_step(fleet, {0: 19}, first=True)) == 19


def test_clients_cross_their_limits_one_after_another_with_every_thread(
    make: Callable[[str], Exchange],
) -> None:
    fleet = lanes(make, [6, 6], slots=2)
    for lane in fleet:
        for k, ex in enumerate(lane.queue):
            ex.client = ex.budget = k // 3  # two clients, one after another, three per worker
    step = next_step(fleet, {0: 3, 1: 3})  # three places below each client's last one
    assert sorted(ex.client for ex in step) == [0, 0, 0]
    crossing = next_step(fleet, {0: 0, 1: 3})
    assert [ex.client for ex in crossing] == [0, 1, 0, 0]  # lane 0 was one ahead
    # Client 0 is past its limit: its leftovers go along with client 1's approach.
    step = next_step(fleet, {0: -1, 1: 2}, crossed=frozenset({0}))
    assert sorted(ex.client for ex in step) == [1, 1]
    assert next_step(fleet, {0: -1, 1: 0}, crossed=frozenset({0})) == [
        fleet[0].queue[5],
        fleet[1].queue[4],
        fleet[1].queue[5],
    ]


def test_clients_of_one_shared_budget_cross_it_together(
    make: Callable[[str], Exchange],
) -> None:
    fleet = lanes(make, [6, 6], slots=2)
    for lane in fleet:
        for k, ex in enumerate(lane.queue):
            ex.client, ex.budget = k % 2, 0  # two clients, interleaved, spending one budget
    step = next_step(fleet, {0: 5})  # five places below the shared budget's last one
    assert len(step) == 5 and {ex.client for ex in step} == {0, 1}
    crossing = next_step(fleet, {0: 0})  # then every thread, whichever client it holds
    assert len(crossing) == 4


def test_steps_end_when_the_lanes_do(make: Callable[[str], Exchange]) -> None:
    fleet = lanes(make, [3, 1], slots=2)
    assert len(next_step(fleet, {0: 50})) == 4
    assert next_step(fleet, {0: 0}) == [] and not any(lane.left for lane in fleet)


def answer(raw: bytes) -> Exchange:
    ex = Exchange(socket.socket(), "127.0.0.1", 8000)
    ex.sock.close()
    ex.request(Rendered("GET", "/api/", (), b""), keep_alive=False)
    done = ex.feed(raw)
    if not done:
        done = ex.feed(b"")
    assert done
    return ex


def test_a_chunked_response_with_the_worker_header() -> None:
    ex = answer(
        b"HTTP/1.1 429 Too Many Requests\r\nTransfer-Encoding: chunked\r\n"
        b"X-Throttle-Harness-Worker: 4242\r\n\r\n2\r\nno\r\n0\r\n\r\n"
    )
    assert (ex.status, ex.worker, ex.error) == (429, "4242", None)


def test_a_response_cut_short_and_garbage_are_errors() -> None:
    cut = answer(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    assert cut.error and cut.status is None
    garbage = answer(b"SSH-2.0-OpenSSH\r\n\r\n")
    assert garbage.error and "malformed" in garbage.error


def test_a_post_holds_back_its_body_with_the_last_byte_of_its_head() -> None:
    template = RequestTemplate(
        "POST", "/login/{identity}", (("X-User", "{identity}"),), "username={identity}&password=x"
    )
    rendered = template.render("a b@c")
    assert rendered.target == "/login/a%20b%40c"  # percent-encoded in the path only
    assert rendered.headers == (
        ("X-User", "a b@c"),
        ("Content-Type", "application/x-www-form-urlencoded"),
    )
    ex = Exchange(None, "127.0.0.1", 8000)
    wire = ex.request(rendered, keep_alive=False, request_id="b1-0")
    head, body = wire[: ex.head_length], wire[ex.head_length :]
    assert head.startswith(b"POST /login/a%20b%40c HTTP/1.1\r\n") and head.endswith(b"\r\n\r\n")
    assert b"content-length: 25\r\n" in head.lower() and b"x-throttle-harness-request: b1-0" in (
        head.lower()
    )
    assert body == b"username=a b@c&password=x"
