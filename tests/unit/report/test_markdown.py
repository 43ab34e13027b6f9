"""The Markdown summary: a table that user text cannot break."""

from __future__ import annotations

from harness.errors import FleetStartError
from harness.report.markdown import _cell, render
from harness.runner import MatrixReport


def test_cells_cannot_break_the_table_or_start_markup() -> None:
    assert _cell("api|v2 <b>*x*</b>\nnext") == "api\\|v2 &lt;b>\\*x\\*&lt;/b> next"


def test_an_error_before_any_run() -> None:
    report = MatrixReport(error=FleetStartError("port 80 on 127.0.0.1 is in use"))
    text = render(report, 3)
    assert text.startswith("## throttle-harness: error (exit 3): port 80 on 127.0.0.1 is in use")
    assert "| scenario |" not in text  # no table without runs
