"""The JUnit XML report: one test case per scenario × worker shape, for CI dashboards (GitHub,
GitLab, Jenkins, Azure). A run as expected passes; a verdict other than the expected one is a
``<failure>`` carrying the numbers and the reason; a run whose traffic went wrong (``error``
verdict) and a matrix stopped by an error are ``<error>``. It renders; it decides nothing.
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape

from harness.redaction import scrub
from harness.runner import VERDICT_FOR, MatrixReport, RunResult

SUITE = "throttle-harness"


def render(report: MatrixReport, exit_code: int) -> str:
    """The whole report as a JUnit XML document (``<testsuites>`` holding one suite)."""
    names: Counter[str] = Counter()
    cases = []
    for r in report.runs:  # unique names: dashboards merge test cases that share one
        name = f"{r.scenario} {r.shape_and_class}"
        names[name] += 1
        cases.append(_case(r, name if names[name] == 1 else f"{name} ({names[name]})"))
    if report.error:
        case = ET.Element("testcase", name="matrix", classname=SUITE, time="0")
        ET.SubElement(
            case, "error", type=type(report.error).__name__, message=_clean(report.error.message)
        ).text = _clean(f"exit {exit_code}: {report.error.message}\n{report.error.detail}")
        cases.append(case)
    failures = sum(1 for c in cases if c.find("failure") is not None)
    errors = sum(1 for c in cases if c.find("error") is not None)
    seconds = f"{sum(r.ready_s + r.traffic_s for r in report.runs):.3f}"
    counts = {"tests": str(len(cases)), "failures": str(failures), "errors": str(errors)}
    root = ET.Element("testsuites", {"name": SUITE, "time": seconds, **counts})
    suite = ET.SubElement(
        root,
        "testsuite",
        {
            "name": SUITE,
            "skipped": "0",
            "time": seconds,
            "timestamp": datetime.fromtimestamp(report.started_at, UTC)
            .replace(tzinfo=None)
            .isoformat(timespec="seconds"),
            "hostname": socket.gethostname(),
            **counts,
        },
    )
    props = ET.SubElement(suite, "properties")
    for name, value in report.versions.items():
        ET.SubElement(props, "property", name=name, value=_clean(value))
    if report.redis:
        ET.SubElement(
            props,
            "property",
            name="redis-server",
            value=f"{report.redis.version} ({report.redis.provider})",
        )
    suite.extend(cases)
    if report.notes:
        ET.SubElement(suite, "system-out").text = _clean(
            "\n".join(f"note: {n}" for n in report.notes)
        )
    ET.indent(root)
    text = ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
    return scrub(text, escape, _attribute)


def _case(r: RunResult, name: str) -> ET.Element:
    v, t = r.verdict, r.verdict.tally
    case = ET.Element(
        "testcase",
        {  # a dot in a class name would start a package in Jenkins
            "name": name,
            "classname": f"{SUITE}.{r.scenario.replace('.', '_')}",
            "time": f"{r.ready_s + r.traffic_s:.3f}",
        },
    )
    instances = f" x {r.instances} instances" if r.instances > 1 else ""
    numbers = (
        f"{r.scenario} at {r.workers} worker(s) x {r.threads} thread(s){instances}, "
        f"{r.rate} "
        f"({r.window} window): admitted {v.accepted_per_burst()} per burst, limit "
        f"{r.limit}; {t.sent} sent, {t.rejected} refused, {t.errors} errors"
    )
    body = f"{numbers}\n{v.reason}" + (f"\nhint: {v.hint}" if v.hint else "")
    body += "".join(f"\nfault {f.kind}: {f.summary}" for f in r.faults)
    missed = [f for f in r.faults if not f.as_expected]
    if not r.as_expected and missed and v.kind == VERDICT_FOR[r.expect]:
        message = f"fault {missed[0].kind}: {missed[0].outcome}: {missed[0].summary}"
        ET.SubElement(
            case, "failure", type="throttle.fault", message=_clean(message)
        ).text = _clean(body)
    elif not r.as_expected:
        kind = "error" if v.kind == "error" else "failure"
        message = (
            f"expected {_wanted(r)}, got {v.kind}: admitted {v.accepted_per_burst()} "
            f"per burst, limit {r.limit}; {v.reason}"
        )
        ET.SubElement(case, kind, type=f"throttle.{v.kind}", message=_clean(message)).text = _clean(
            body
        )
    ET.SubElement(case, "system-out").text = _clean(body)
    return case


def _attribute(text: str) -> str:
    """``text`` as ElementTree writes it in an attribute value."""
    return escape(text, {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#09;"})


def _wanted(r: RunResult) -> str:
    return "a pass" if r.expect == "exact" else "a fail"


def _clean(text: str) -> str:
    """Text XML 1.0 can hold: characters it forbids (control characters an app's log may
    carry) become U+FFFD."""
    return "".join(
        c
        if c in "\t\n\r"
        or (" " <= c <= "\ud7ff")
        or ("\ue000" <= c <= "\ufffd")
        or c >= "\U00010000"
        else "\ufffd"
        for c in text
    )


def write_junit(report: MatrixReport, exit_code: int, path: Path) -> None:
    path.write_text(render(report, exit_code), encoding="utf-8")
