"""The HTML report: one self-contained file (inline CSS and SVG, no script, nothing fetched)
with the verdict table and, per run, the picture of the race: each worker's requests inside the
app over time, accepted or refused, above the running count of admissions against the limit.
It renders what the runs decided; it decides nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from html import escape
from pathlib import Path

from harness.fleet.worker_classes import ASYNC_CLASSES
from harness.redaction import client_name, scrub
from harness.report.timeline import Bar, Timeline, build, decisive
from harness.runner import MatrixReport, RunResult

Scale = Callable[[float], float]  # milliseconds into the burst -> x in the picture

WIDTH, LEFT, RIGHT = 960, 130, 24
COUNT_H, ROW_H, WORKER_GAP, AXIS_H = 150, 7, 8, 28
COLOURS = {
    "accepted": "#2e7d32",
    "past-bound": "#ef6c00",
    "rejected": "#c62828",
    "other": "#757575",
}
LIMIT_COLOUR, BOUND_COLOUR = "#1565c0", "#6a1b9a"
LABELS = {
    "accepted": "admitted",
    "past-bound": "admitted past the bound",
    "rejected": "refused",
    "other": "error / other status",
}
VERDICT_CLASS = {"pass": "pass", "fail": "fail", "inconclusive": "inc", "error": "err"}

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;
color:#1a1a1a;background:#fff}
h1{font-size:20px}h2{font-size:16px;margin-top:32px;border-top:1px solid #ddd;padding-top:16px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f3f3f3}
.pass{color:#1b5e20;font-weight:600}.fail{color:#b71c1c;font-weight:600}
.inc{color:#e65100;font-weight:600}.err{color:#4a148c;font-weight:600}
.unexpected{background:#fff3e0}.reason{max-width:70ch}td.reason{min-width:36ch}.muted{color:#666}
figure{margin:12px 0 20px}figcaption{color:#444;margin-bottom:4px}
.legend span{display:inline-block;margin-right:14px}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}
"""


def render(report: MatrixReport, exit_code: int) -> str:
    """The whole report as one HTML document."""
    title = report.headline(exit_code)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>throttle-harness: {escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>throttle-harness: {escape(title)}</h1>",
    ]
    if report.error and report.error.detail:
        parts.append(f"<pre>{escape(report.error.detail)}</pre>")
    if report.runs:
        parts.append(_verdict_table(report.runs))
    parts += [f'<p class="muted">note: {escape(n)}</p>' for n in report.notes]
    versions = ", ".join(f"{k} {v}" for k, v in report.versions.items())
    redis = f"Redis {report.redis.version} ({report.redis.provider}); " if report.redis else ""
    parts.append(f'<p class="muted">{escape(redis + versions)}</p>')
    parts.append(_legend())
    for number, run in enumerate(report.runs, start=1):
        parts.append(_run_section(number, run))
    parts.append("</body></html>\n")
    return scrub("\n".join(parts), escape)


def _verdict_table(runs: list[RunResult]) -> str:
    rows = [
        "<table><tr><th>#</th><th>scenario</th><th>shape</th><th>rate</th>"
        "<th>window</th><th>admitted per burst</th><th>limit</th><th>errors</th>"
        "<th>verdict</th><th>expected</th><th>reason</th></tr>"
    ]
    for number, r in enumerate(runs, start=1):
        v = r.verdict
        rows.append(
            f'<tr class="{"" if r.as_expected else "unexpected"}"><td>'
            f'<a href="#run-{number}">{number}</a></td><td>{escape(r.scenario)}</td>'
            f"<td>{escape(r.shape_and_class)}</td><td>{escape(r.rate)}</td>"
            f"<td>{escape(r.window)}</td><td>{escape(v.accepted_per_burst())}</td>"
            f"<td>{r.limit}</td><td>{v.tally.errors}</td>"
            f'<td class="{VERDICT_CLASS[v.kind]}">{v.kind}</td>'
            f"<td>{escape(r.expect)}{'' if r.as_expected else ' (UNEXPECTED)'}</td>"
            f'<td class="reason">{escape(v.reason)}</td></tr>'
        )
    rows.append("</table>")
    return "\n".join(rows)


def _legend() -> str:
    items = "".join(
        f'<span><i style="background:{c}"></i>{LABELS[k]}</span>' for k, c in COLOURS.items()
    )
    items += (
        f'<span><i style="background:{LIMIT_COLOUR}"></i>the limit</span>'
        f'<span><i style="background:{BOUND_COLOUR}"></i>the window\'s bound (when above '
        "the limit)</span>"
    )
    return f'<p class="legend">{items}</p>'


def _run_section(number: int, r: RunResult) -> str:
    v = r.verdict
    parts = [
        f'<section id="run-{number}"><h2>{number}. {escape(r.scenario)} — {r.workers} '
        + (
            f"{r.worker_class} worker(s) × {r.threads} in flight"
            if r.worker_class in ASYNC_CLASSES
            else f"worker(s) × {r.threads} thread(s)"
        )
        + (f" × {r.instances} instances" if r.instances > 1 else "")
        + f", {escape(r.rate)} "
        f'<span class="{VERDICT_CLASS[v.kind]}">{v.kind}</span></h2>',
        f'<p class="reason">{escape(v.reason)}</p>',
    ]
    if v.hint:
        parts.append(f'<p class="reason"><b>hint:</b> {escape(v.hint)}</p>')
    for f in r.faults:
        parts.append(
            f'<p class="reason"><b>fault {escape(f.kind)}</b> ({escape(f.outcome)}'
            f"{'' if f.as_expected else ', not as expected'}): {escape(f.summary)}</p>"
        )
    for finding in v.bursts:
        if finding.per_period:
            parts.append(_periods_figure(finding.identity, finding.per_period, r.limit))
    chosen = decisive(r.bursts, v.bursts)
    if len(chosen) < len(v.bursts):
        parts.append(
            f'<p class="muted">{len(chosen)} of {len(v.bursts)} bursts drawn: those '
            "furthest over their bound, then the most admitted.</p>"
        )
    clients = Counter(b.round for b in r.bursts)  # clients per round
    for burst, finding in chosen:
        client = f", client {client_name(finding.value)}" if clients[burst.round] > 1 else ""
        timeline = build(
            burst,
            finding,
            r.limit,
            r.statuses,
            f"burst {burst.round} of {len(clients)}{client}: {finding.tally.accepted} "
            f"admitted of {finding.tally.sent}, {finding.overlap.describe()}",
        )
        parts.append(_figure(timeline))
    parts.append("</section>")
    return "\n".join(parts)


def _periods_figure(client: str, counts: tuple[int, ...], limit: int) -> str:
    """Sustained traffic: a client's admissions in each period, as bars against the limit."""
    height, bar, gap = 120, 36, 12
    top = max([limit, *counts]) or 1

    def y(n: float) -> float:
        return 10 + (height - 20) * (1 - n / top)

    width = LEFT + len(counts) * (bar + gap) + RIGHT
    shapes = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 16}" '
        f'role="img" aria-label="admitted per period">'
    ]
    for k, n in enumerate(counts):
        x = LEFT + k * (bar + gap)
        shapes.append(
            f'<rect x="{x}" y="{y(n):.1f}" width="{bar}" height="{y(0) - y(n):.1f}" '
            f'fill="{COLOURS["accepted"]}"><title>period {k + 1}: {n} admitted</title></rect>'
            f'<text x="{x + bar / 2}" y="{height + 10}" font-size="11" text-anchor="middle">'
            f"{k + 1}</text>"
        )
    shapes.append(
        f'<line x1="{LEFT - 6}" x2="{width - RIGHT}" y1="{y(limit):.1f}" y2="{y(limit):.1f}" '
        f'stroke="{LIMIT_COLOUR}" stroke-dasharray="4 3"/>'
        f'<text x="{LEFT - 10}" y="{y(limit) + 4:.1f}" font-size="11" text-anchor="end">'
        f"limit {limit}</text></svg>"
    )
    caption = escape(f"client {client}: admitted in each period of sustained traffic")
    return f"<figure><figcaption>{caption}</figcaption>{''.join(shapes)}</figure>"


def _figure(t: Timeline) -> str:
    caption = escape(t.title)
    if t.unseen:
        caption += escape(f"; {t.unseen} request(s) never seen inside the app")
    if not t.bars:
        return f"<figure><figcaption>{caption}: no request reached the app</figcaption></figure>"
    return f"<figure><figcaption>{caption}</figcaption>{svg(t)}</figure>"


def svg(t: Timeline) -> str:
    """The burst as SVG: the running count of admissions against the limit, then one band of
    rows per worker with a bar per request, all on one time axis."""
    plot_w = WIDTH - LEFT - RIGHT
    span = max(t.span_ms, 1e-3)

    def x(ms: float) -> float:
        return LEFT + ms / span * plot_w

    lanes_h = sum(n * ROW_H + WORKER_GAP for n in t.lanes.values())
    height = COUNT_H + 12 + lanes_h + AXIS_H
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" font-size="11" '
        f'font-family="system-ui,sans-serif">',
        f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#fff"/>',
    ]
    out += _count_chart(t, x)
    top = COUNT_H + 12
    offsets = {}
    for worker, rows in t.lanes.items():
        offsets[worker] = top
        band = rows * ROW_H
        out.append(f'<rect x="{LEFT}" y="{top}" width="{plot_w}" height="{band}" fill="#f5f5f5"/>')
        out.append(
            f'<text x="{LEFT - 6}" y="{top + band / 2 + 4:.1f}" text-anchor="end">'
            f"worker {escape(worker.split('.')[0])}</text>"
        )
        top += band + WORKER_GAP
    out += [_bar(b, x, offsets[b.worker]) for b in t.bars]
    if t.limit_reached_ms is not None:
        lx = x(t.limit_reached_ms)
        out.append(
            f'<line x1="{lx:.1f}" y1="8" x2="{lx:.1f}" y2="{top}" '
            f'stroke="{LIMIT_COLOUR}" stroke-width="1.5" stroke-dasharray="4 3"/>'
        )
    out += _axis(t, x, top)
    out.append("</svg>")
    return "\n".join(out)


def _count_chart(t: Timeline, x: Scale) -> list[str]:
    top, bottom = 8, COUNT_H - 8
    peak = max(len(t.admissions_ms), t.limit, t.bound) * 1.25 or 1

    def y(count: float) -> float:
        return bottom - count / peak * (bottom - top)

    out = [
        f'<text x="{LEFT - 6}" y="{top + 10}" text-anchor="end">admitted</text>',
        f'<line x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}" stroke="#999"/>',
    ]
    points = [f"{x(0):.1f},{y(0):.1f}"]
    for n, ms in enumerate(t.admissions_ms, start=1):
        px = x(ms)
        points += [f"{px:.1f},{y(n - 1):.1f}", f"{px:.1f},{y(n):.1f}"]
    points.append(f"{x(t.span_ms):.1f},{y(len(t.admissions_ms)):.1f}")
    out.append(
        f'<polyline points="{" ".join(points)}" fill="none" '
        f'stroke="{COLOURS["accepted"]}" stroke-width="2"/>'
    )
    for value, colour, label, dash in (
        (t.limit, LIMIT_COLOUR, f"limit {t.limit}", "6 3"),
        *([(t.bound, BOUND_COLOUR, f"bound {t.bound}", "2 3")] if t.bound > t.limit else []),
    ):
        ly = y(value)
        out.append(
            f'<line x1="{LEFT}" y1="{ly:.1f}" x2="{WIDTH - RIGHT}" y2="{ly:.1f}" '
            f'stroke="{colour}" stroke-width="1.5" stroke-dasharray="{dash}"/>'
        )
        out.append(
            f'<text x="{LEFT - 6}" y="{ly + 4:.1f}" text-anchor="end" '
            f'fill="{colour}">{label}</text>'
        )
    out.append(
        f'<text x="{WIDTH - RIGHT}" y="{y(len(t.admissions_ms)) - 4:.1f}" '
        f'text-anchor="end">{len(t.admissions_ms)} admitted</text>'
    )
    return out


def _bar(b: Bar, x: Scale, band_top: float) -> str:
    x0, x1 = x(b.start_ms), x(b.end_ms)
    return (
        f'<rect x="{x0:.1f}" y="{band_top + b.lane * ROW_H + 1}" '
        f'width="{max(x1 - x0, 1.5):.1f}" height="{ROW_H - 2}" '
        f'fill="{COLOURS[b.outcome]}"/>'
    )


def _axis(t: Timeline, x: Scale, top: float) -> list[str]:
    out = [f'<line x1="{LEFT}" y1="{top}" x2="{WIDTH - RIGHT}" y2="{top}" stroke="#999"/>']
    for i in range(6):
        anchor = "start" if i == 0 else "end" if i == 5 else "middle"
        out.append(
            f'<text x="{x(t.span_ms * i / 5):.1f}" y="{top + 14}" text-anchor="{anchor}">'
            f"{t.span_ms * i / 5:.0f} ms</text>"
        )
    out.append(f'<text x="{LEFT - 6}" y="{top + 14}" text-anchor="end">in the app</text>')
    return out


def write_html(report: MatrixReport, exit_code: int, path: Path) -> None:
    path.write_text(render(report, exit_code), encoding="utf-8")
