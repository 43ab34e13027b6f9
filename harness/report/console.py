"""The console: a progress display while runs go, a line per run, and a table at the end.

Every string that comes from the user or the outside (scenario names, reasons, hints, Redis
versions and reasons) goes in as :class:`~rich.text.Text`, never parsed as markup: a name such
as ``api[/v2]`` (or one ending in a backslash) is shown as it is.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table
from rich.text import Text

from harness.redis.providers import RedisServer
from harness.runner import MatrixReport, RunResult
from harness.scenario import Scenario

_STYLE = {"pass": "green", "fail": "red", "inconclusive": "yellow", "error": "magenta"}


class ConsoleObserver:
    """Shows progress as runs happen; use as a context manager around the matrix."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            transient=True,
        )
        self.task = self.progress.add_task("starting Redis", total=None)

    def __enter__(self) -> ConsoleObserver:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def matrix_started(self, total_runs: int, redis: RedisServer) -> None:
        self.progress.update(self.task, total=total_runs)
        why = f" ({redis.reason})" if redis.reason else ""
        self.console.print(
            Text.assemble("Redis ", redis.version, " from ", (redis.provider, "bold"), why),
            soft_wrap=True,
        )

    def run_started(self, scenario: Scenario, workers: int) -> None:
        self.progress.update(
            self.task,
            description=f"{scenario.name}: {workers}x{scenario.threads}"
            + (f"@{scenario.instances}" if scenario.instances > 1 else "")
            + ", "
            f"{scenario.request_count} requests",
        )

    def run_finished(self, result: RunResult) -> None:
        self.progress.advance(self.task)
        mark = ("ok", "green") if result.as_expected else ("UNEXPECTED", "red")
        v = result.verdict
        self.console.print(
            Text.assemble(
                mark,
                f" {result.scenario} {result.shape_and_class}: ",
                (v.kind, _STYLE[v.kind]),
                f" (expected {result.expect}) - {v.reason}",
            ),
            highlight=False,
            soft_wrap=True,
        )
        if v.hint:
            self.console.print(
                Text(f"    hint: {v.hint}", style="dim"), highlight=False, soft_wrap=True
            )
        for fault in result.faults:
            style = "dim" if fault.as_expected else "red"
            self.console.print(
                Text(f"    fault {fault.kind}: {fault.summary}", style=style),
                highlight=False,
                soft_wrap=True,
            )
        if result.image is not None:
            line = f"    served by containers of {result.image.name} ({result.image.digest})"
            self.console.print(Text(line, style="dim"), highlight=False, soft_wrap=True)
        if result.instances > 1:
            counts = result.verdict.tally.per_instance()
            line = "; ".join(
                f"instance {i}: accepted {c['accepted']} of {c['served']} served"
                for i, c in counts.items()
            )
            self.console.print(Text(f"    {line}", style="dim"), highlight=False, soft_wrap=True)
        if result.redis_state is not None:
            line = result.redis_state.describe(result.period_s)
            self.console.print(Text(f"    {line}", style="dim"), highlight=False, soft_wrap=True)


def print_table(console: Console, report: MatrixReport) -> None:
    table = Table(title="throttle-harness results")
    for column in (
        "scenario",
        "shape",
        "limit",
        "accepted per burst",
        "at limit",
        "errors",
        "seen",
        "verdict",
        "expected",
        "",
    ):
        table.add_column(
            column, justify="left" if column in ("scenario", "verdict") else "right", no_wrap=True
        )
    for r in report.runs:
        t = r.verdict.tally
        at_limit = r.verdict.overlap
        table.add_row(
            Text(r.scenario),
            r.shape_and_class,
            str(r.limit),
            r.verdict.accepted_per_burst(),
            f"{at_limit.at_crossing or '-'} on {at_limit.crossing_workers}w",
            str(t.errors),
            f"{t.workers_seen}/{r.workers * r.instances}",
            f"[{_STYLE[r.verdict.kind]}]{r.verdict.kind}[/]",
            r.expect,
            "ok" if r.as_expected else "[red]UNEXPECTED[/]",
        )
    console.print(table)
