"""The Markdown report: a summary fit for a CI job summary or a pull-request comment (a table of
verdicts, accepted against the limit, the overlap at the limit, and the hints). It renders what
the runs decided; it decides nothing.
"""

from __future__ import annotations

from pathlib import Path

from harness.redaction import scrub
from harness.runner import MatrixReport, RunResult

_MARK = {"pass": "pass", "fail": "FAIL", "inconclusive": "inconclusive", "error": "ERROR"}


def render(report: MatrixReport, exit_code: int) -> str:
    """The whole report as Markdown."""
    lines = [f"## throttle-harness: {_cell(report.headline(exit_code))}", ""]
    if report.runs:
        lines += [
            "| scenario | shape | rate | window | accepted per burst | at the limit "
            "| errors | verdict | expected | |",
            "|---|---|---|---|---|---|---|---|---|---|",
            *(_row(r) for r in report.runs),
            "",
        ]
    reasons = [r for r in report.runs if not r.as_expected or r.verdict.hint or r.faults]
    if reasons:
        lines += ["### Why", ""]
        for r in reasons:
            title = f"{r.scenario} {r.shape_and_class}"
            lines.append(f"- **{_cell(title)}**: {_cell(r.verdict.reason)}")
            if r.verdict.hint:
                lines.append(f"  - hint: {_cell(r.verdict.hint)}")
            for f in r.faults:
                flag = "" if f.as_expected else " **(not as expected)**"
                lines.append(
                    f"  - fault {_cell(f.kind)}: {_cell(f.outcome)}{flag}: {_cell(f.summary)}"
                )
        lines.append("")
    images = sorted({f"{r.image.name} ({r.image.digest})" for r in report.runs if r.image})
    lines += [f"- served by containers of {_cell(image)}" for image in images]
    lines += [f"- note: {_cell(note)}" for note in report.notes]
    if report.redis:
        lines.append(f"- Redis {report.redis.version} ({report.redis.provider})")
    versions = ", ".join(f"{k} {v}" for k, v in report.versions.items())
    lines += [f"- {versions}", ""]
    return scrub("\n".join(lines), _cell)


def _row(r: RunResult) -> str:
    ov = r.verdict.overlap
    at_limit = f"{ov.at_crossing} on {ov.crossing_workers} worker(s)" if ov.at_crossing else "-"
    cells = [
        r.scenario,
        r.shape_and_class,
        r.rate,
        r.window,
        f"{r.verdict.accepted_per_burst()} (limit {r.limit})",
        at_limit,
        str(r.verdict.tally.errors),
        _MARK[r.verdict.kind],
        r.expect,
        "ok" if r.as_expected else "**UNEXPECTED**",
    ]
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _cell(text: str) -> str:
    """Text that cannot break a table row or start markup of its own."""
    return (
        text.replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("\n", " ")
        .replace("<", "&lt;")
        .replace("*", "\\*")
        .replace("_", "\\_")
        .replace("`", "\\`")
    )


def write_markdown(report: MatrixReport, exit_code: int, path: Path) -> None:
    path.write_text(render(report, exit_code), encoding="utf-8")
