"""User strings go through rich as text: a scenario called ``api[/v2]`` is not markup."""

from __future__ import annotations

import io

from rich.console import Console

from harness.redis.providers.base import RedisServer
from harness.report.console import ConsoleObserver
from harness.scenario import Scenario
from harness.verdict.rates import parse_rate

NAMES = ["api[/v2]", "api[v2]", "[bold]x[/]", "a\\", ":smile:"]


def console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, highlight=False, emoji=False), out


def test_redis_version_provider_and_reason_are_text() -> None:
    con, out = console()
    server = RedisServer(
        url="redis://:pw@127.0.0.1:1/0",
        provider="docker",
        owned=True,
        version="7[/x]",
        reason="auth: docker (reg[/istry]/redis:7) [red]",
    )
    ConsoleObserver(con).matrix_started(1, server)
    assert out.getvalue().strip() == (
        "Redis 7[/x] from docker (auth: docker (reg[/istry]/redis:7) [red])"
    )


def test_scenario_names_in_the_progress_are_text() -> None:
    con, _ = console()
    observer = ConsoleObserver(con)
    for name in NAMES:
        scenario = Scenario(name=name, app="m:app", rate=parse_rate("10/min"))
        observer.run_started(scenario, 2)
        (column,) = [c for c in observer.progress.columns if hasattr(c, "text_format")]
        shown = column.render(observer.progress.tasks[0])
        assert shown.plain.startswith(f"{name}: 2x1, ")
