"""The release gate's reports: one table of the shapes side by side with the change between the
first and the last, the budgets, and the verdicts (console, JSON, Markdown). They render what
the gate measured and decided; they decide nothing.
"""

from __future__ import annotations

import json
import math
from importlib.resources import files
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness.gate.budgets import METRICS
from harness.gate.release import GateReport, ShapeResult
from harness.redaction import scrub
from harness.redis.providers import redact_url
from harness.report.json_report import _run_dict, json_escaped
from harness.report.markdown import _cell

GATE_SCHEMA_VERSION = 1
_ROWS = (  # (metric, label)
    ("throughput", "throughput (req/s)"),
    ("p50", "latency p50 (ms)"),
    ("p95", "latency p95 (ms)"),
    ("p99", "latency p99 (ms)"),
    ("errors", "errors (%)"),
    ("cpu", "CPU, of the fleet's CPUs (%)"),
    ("rss", "RSS total (MB)"),
    ("rss_worker", "RSS per worker (MB)"),
    ("redis_clients", "Redis clients"),
    ("redis_ops", "Redis ops/s"),
)


def _num(x: float, digits: int = 1) -> float | None:
    return None if math.isnan(x) else round(x, digits)


def _shape_dict(r: ShapeResult) -> dict[str, Any]:
    m = r.metrics()
    return {
        "shape": r.shape.text,
        "workers": r.shape.workers,
        "threads": r.shape.threads,
        "instances": r.shape.instances,
        "verdict": r.run.verdict.kind,
        "as_expected": r.run.as_expected,
        "image": {"name": r.run.image.name, "digest": r.run.image.digest} if r.run.image else None,
        "reason": r.run.verdict.reason,
        "throughput_rps": _num(m["throughput"]),
        "latency_ms": {
            "p50": _num(m["p50"], 2),
            "p95": _num(m["p95"], 2),
            "p99": _num(m["p99"], 2),
        },
        "error_rate": round(r.load.error_rate, 5),
        "cpu_percent": _num(m["cpu"]),
        "rss_mb": {
            "total": _num(m["rss"]),
            "per_worker": _num(m["rss_worker"]),
            "workers": r.usage.workers,
        },
        "redis_clients": r.redis.clients,
        "redis_ops_per_s": _num(m["redis_ops"]),
        "load": {
            "duration_s": round(r.load.duration_s, 3),
            "sent": r.load.sent,
            "completed": r.load.completed,
            "errors": r.load.errors,
            "statuses": {str(k): v for k, v in sorted(r.load.statuses.items())},
            "rate": r.load.rate,
            "backlog": r.load.backlog,
        },
    }


def _delta(before: float, after: float) -> str:
    if math.isnan(before) or math.isnan(after):
        return "n/a"
    text = f"{after - before:+.3g}"
    if before:
        text += f" ({100 * (after - before) / before:+.0f}%)"
    return text


def gate_dict(report: GateReport, exit_code: int) -> dict[str, Any]:
    m = report.matrix
    first, last = (report.results[0], report.results[-1]) if report.results else (None, None)
    return {
        "schema_version": GATE_SCHEMA_VERSION,
        "ok": exit_code == 0,
        "exit_code": exit_code,
        "error": m.error.message if m.error else None,
        "from": report.shapes[0].text if report.shapes else None,
        "to": report.shapes[-1].text if report.shapes else None,
        "load": {
            "duration_s": report.options.duration_s,
            "rate": report.options.rate,
            "connections": report.options.connections_for(report.shapes) if report.shapes else None,
            "path": report.options.path,
        },
        "shapes": [_shape_dict(r) for r in report.results],
        "deltas": (
            {k: _num(last.metrics()[k] - first.metrics()[k], 3) for k, _ in _ROWS}
            if first and last
            else {}
        ),
        "budgets": [
            {
                "budget": c.budget.text,
                "metric": c.budget.metric,
                "from": _num(c.before, 3),
                "to": _num(c.after, 3),
                "allowed": _num(c.allowed, 3),
                "ok": c.ok,
            }
            for c in report.checks
        ],
        "notes": m.notes,
        "runs": [_run_dict(r) for r in m.runs],
        "redis": (
            {
                "provider": m.redis.provider,
                "url": redact_url(m.redis.url),
                "version": m.redis.version,
            }
            if m.redis
            else None
        ),
        "versions": m.versions,
    }


def gate_schema() -> dict[str, Any]:
    """The JSON Schema of the gate's report (shipped in the package)."""
    return dict(json.loads(files("harness").joinpath("report/gate.schema.json").read_text()))


def write_gate_json(report: GateReport, exit_code: int, path: Path) -> None:
    path.write_text(scrub(json.dumps(gate_dict(report, exit_code), indent=2) + "\n", json_escaped))


def headline(report: GateReport, exit_code: int) -> str:
    if report.matrix.error:
        return f"error (exit {exit_code}): {report.matrix.error.message}"
    change = " -> ".join(s.text for s in report.shapes)
    breached = sum(not c.ok for c in report.checks)
    unexpected = sum(not r.as_expected for r in report.matrix.runs)
    if not breached and not unexpected:
        return f"{change}: safe to ship (throttle holds, every budget kept)"
    parts = []
    if unexpected:
        parts.append(f"{unexpected} throttle verdict(s) not as expected")
    if breached:
        parts.append(f"{breached} budget(s) breached")
    return f"{change}: blocked ({', '.join(parts)}; exit {exit_code})"


def _table_rows(report: GateReport) -> list[list[str]]:
    rows = [
        [
            "throttle verdict",
            *(r.run.verdict.kind + ("" if r.run.as_expected else " (!)") for r in report.results),
            "",
        ]
    ]
    first, last = report.results[0], report.results[-1]
    for metric, label in _ROWS:
        values = [r.metrics()[metric] for r in report.results]
        rows.append(
            [
                label,
                *(f"{v:.4g}" if not math.isnan(v) else "n/a" for v in values),
                _delta(first.metrics()[metric], last.metrics()[metric]),
            ]
        )
    return rows


def print_gate(console: Console, report: GateReport, exit_code: int) -> None:
    if report.results:
        table = Table(title="throttle-harness gate")
        table.add_column("", justify="left")
        for r in report.results:
            table.add_column(r.shape.text, justify="right")
        table.add_column("change", justify="right")
        for row in _table_rows(report):
            table.add_row(*(Text(c) for c in row))
        console.print(table)
    for c in report.checks:
        console.print(Text(c.describe(), style="green" if c.ok else "red"), soft_wrap=True)
    style = "green" if exit_code == 0 else "red"
    console.print(Text(headline(report, exit_code), style=style), soft_wrap=True)


def render_gate_markdown(report: GateReport, exit_code: int) -> str:
    lines = [f"## throttle-harness gate: {_cell(headline(report, exit_code))}", ""]
    if report.results:
        shapes = [r.shape.text for r in report.results]
        lines += ["| | " + " | ".join(shapes) + " | change |", "|---|" + "---|" * (len(shapes) + 1)]
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in _table_rows(report)]
        lines.append("")
    if report.checks:
        lines += ["### Budgets", ""]
        lines += [
            f"- {'ok' if c.ok else '**BREACHED**'}: {_cell(c.describe())}" for c in report.checks
        ]
        lines.append("")
    for r in report.matrix.runs:
        lines.append(f"- **{_cell(r.scenario)} {r.shape_and_class}**: {_cell(r.verdict.reason)}")
    lines += [f"- note: {_cell(note)}" for note in report.matrix.notes]
    units = ", ".join(f"{k} {u}" for k, (u, _, _) in METRICS.items() if u)
    lines += ["", f"- units: {_cell(units)}", ""]
    return scrub("\n".join(lines), _cell)


def write_gate_markdown(report: GateReport, exit_code: int, path: Path) -> None:
    path.write_text(render_gate_markdown(report, exit_code), encoding="utf-8")
