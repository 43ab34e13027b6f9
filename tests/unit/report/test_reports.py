"""The JUnit and HTML reports, and the timeline the HTML draws, on judged synthetic bursts (the
integration tests run them on real fleets, validate the JUnit file and screenshot the HTML)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

from harness.errors import FleetStartError, Interrupted
from harness.fleet.stamps import Stamp
from harness.http.records import Record
from harness.http.request_template import RequestTemplate, Statuses
from harness.report import html, junit
from harness.report.timeline import build, decisive
from harness.runner import MatrixReport, RunResult
from harness.scenario import Expectation
from harness.verdict import Burst, judge
from tests.unit.verdict.test_judge import burst, claim

JUNIT_XSD = Path(__file__).parents[2] / "data" / "junit.xsd"


def run(
    bursts: list[Burst],
    expect: Expectation = "exact",
    scenario: str = "demo",
    window: str = "sliding",
) -> RunResult:
    c = claim(window=window)
    return RunResult(
        scenario=scenario,
        workers=c.workers,
        threads=c.threads,
        expect=expect,
        verdict=judge(bursts, c),
        requests=400,
        rate="100/hour",
        limit=100,
        period_s=3600.0,
        window=window,
        request=RequestTemplate(),
        statuses=Statuses(),
        identities=tuple(b.identity for b in bursts),
        ready_s=0.5,
        traffic_s=1.25,
        bursts=tuple(bursts),
    )


def racy() -> Burst:
    return burst({"w1": (130, 70), "w2": (114, 86)})  # 244 admitted: a sliding window's 100


def exact() -> Burst:
    return burst({"w1": (60, 140), "w2": (40, 160)})


def test_the_timeline_marks_the_admissions_past_the_bound() -> None:
    r = run([racy()])
    t = build(r.bursts[0], r.verdict.bursts[0], 100, Statuses())
    outcomes = [b.outcome for b in t.bars]
    assert len(t.bars) == 400 and t.unseen == 0
    assert outcomes.count("past-bound") == 144 and outcomes.count("accepted") == 100
    assert outcomes.count("rejected") == 156
    assert t.limit_reached_ms == t.admissions_ms[99]
    assert list(t.admissions_ms) == sorted(t.admissions_ms)


def test_a_correct_burst_has_nothing_past_the_bound_and_concurrent_requests_get_rows() -> None:
    r = run([exact()])
    t = build(r.bursts[0], r.verdict.bursts[0], 100, Statuses())
    assert {b.outcome for b in t.bars} == {"accepted", "rejected"}
    assert max(t.lanes.values()) >= 2  # the requests beside the crossing, on a row of their own
    for worker in t.lanes:  # no two bars on one row overlap
        rows: dict[int, list[tuple[float, float]]] = {}
        for b in t.bars:
            if b.worker == worker:
                rows.setdefault(b.lane, []).append((b.start_ms, b.end_ms))
        for spans in rows.values():
            spans.sort()
            assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))


def test_requests_that_never_reached_the_app_are_counted_not_drawn() -> None:
    b = burst({"w1": (100, 100)}, errors=1)  # one timed out with no stamp
    r = run([b])
    t = build(b, r.verdict.bursts[0], 100, Statuses())
    assert t.unseen == 1 and len(t.bars) == 200


def test_decisive_bursts_put_the_worst_first_and_keep_run_order() -> None:
    bursts = [exact(), racy(), exact(), exact()]
    r = run(bursts)
    chosen = decisive(r.bursts, r.verdict.bursts, most=2)
    assert [r.bursts.index(b) for b, _ in chosen] == [0, 1]


def test_junit_validates_and_carries_the_numbers_of_a_failure() -> None:
    report = MatrixReport(
        runs=[
            run([racy()]),
            run([exact()], scenario="atomic"),
            run([racy()], expect="violation", scenario="drf"),
        ]
    )
    text = junit.render(report, 1)
    xmlschema.XMLSchema(JUNIT_XSD).validate(text)
    suite = ET.fromstring(text).find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "0")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["demo 2x2", "atomic 2x2", "drf 2x2"]
    failure = cases[0].find("failure")
    assert failure is not None and failure.get("type") == "throttle.fail"
    assert "expected a pass, got fail: admitted 244 per burst, limit 100" in (
        failure.get("message") or ""
    )
    assert cases[1].find("failure") is None and cases[2].find("failure") is None


def test_junit_reports_a_matrix_error_and_strips_what_xml_cannot_hold() -> None:
    report = MatrixReport(error=FleetStartError("gunicorn died: \x1b[31mboom\x00"))
    text = junit.render(report, 3)
    xmlschema.XMLSchema(JUNIT_XSD).validate(text)
    error = ET.fromstring(text).find("testsuite/testcase/error")
    assert error is not None and error.get("type") == "FleetStartError"
    assert error.get("message") == "gunicorn died: \ufffd[31mboom\ufffd"


def test_the_schema_is_no_rubber_stamp() -> None:
    schema = xmlschema.XMLSchema(JUNIT_XSD)
    good = junit.render(MatrixReport(runs=[run([exact()])]), 0)
    assert schema.is_valid(good)
    assert not schema.is_valid(good.replace('tests="1"', 'tests="one"', 1))
    assert not schema.is_valid(good.replace("<testcase name=", "<testcase label=", 1))


def test_html_is_self_contained_and_escapes_user_text() -> None:
    report = MatrixReport(
        runs=[
            run([racy()], scenario="<script>alert(1)</script>"),
            run([exact()], scenario="atomic"),
        ]
    )
    page = html.render(report, 1)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert re.findall(r'(?:src|href)="(?!#)', page) == []  # nothing fetched, links in-page
    assert page.count("<svg") == 2 and page.count('<section id="run-') == 2
    assert page.count(f'fill="{html.COLOURS["past-bound"]}"') == 144
    assert "limit 100" in page and "1 of 2 runs not as expected" in page


@pytest.mark.parametrize("records", [0, 1])
def test_html_of_a_burst_with_no_stamps(records: int) -> None:
    rec = [Record(i, "c", 0.0, None, None, None, "refused", f"b-{i}") for i in range(records)]
    b = Burst("c", rec, {})
    r = run([b])
    page = html.render(MatrixReport(runs=[r]), 1)
    assert "no request reached the app" in page and "<svg" not in page


def test_an_unfinished_request_is_drawn_to_the_end_of_the_burst() -> None:
    recs = [
        Record(0, "c", 0.0, 1.0, 200, "w1", None, "b-0"),
        Record(1, "c", 0.0, None, None, None, "no response", "b-1"),
    ]
    stamps = {"b-0": Stamp("b-0", "w1", 0, 2_000_000, 200), "b-1": Stamp("b-1", "w1", 1_000_000)}
    r = run([Burst("c", recs, stamps)])
    t = build(r.bursts[0], r.verdict.bursts[0], 100, Statuses())
    assert [(b.start_ms, b.end_ms, b.outcome) for b in t.bars] == [
        (0.0, 2.0, "accepted"),
        (1.0, 2.0, "other"),
    ]


def test_an_interrupted_matrix_is_no_green_report() -> None:
    report = MatrixReport(
        runs=[run([exact()])],
        error=Interrupted("interrupted; everything it started has been stopped"),
    )
    root = ET.fromstring(junit.render(report, 130))
    assert root.get("errors") == "1"
    assert html.render(report, 130).count("error (exit 130): interrupted") == 2  # title, heading


def test_junit_names_are_unique_and_class_names_have_no_dots() -> None:
    report = MatrixReport(runs=[run([exact()], scenario="api.v2") for _ in range(2)])
    cases = ET.fromstring(junit.render(report, 0)).findall("testsuite/testcase")
    assert [c.get("name") for c in cases] == ["api.v2 2x2", "api.v2 2x2 (2)"]
    assert {c.get("classname") for c in cases} == {"throttle-harness.api_v2"}


def test_a_report_holds_the_start_time_not_the_end() -> None:
    report = MatrixReport(started_at=0.0)
    assert 'timestamp="1970-01-01T00:00:00"' in junit.render(report, 0)


def test_a_fault_not_as_expected_fails_the_run_in_every_report() -> None:
    from dataclasses import replace

    from harness.faults import FaultOutcome
    from harness.report import markdown

    outage = FaultOutcome(
        "redis-outage", 1.0, "fail-open", "the app admitted 40 of 40", as_expected=False
    )
    latency = FaultOutcome("redis-latency", 0.0, "added", "5 ms added")
    r = replace(run([exact()], scenario="outage"), faults=(outage, latency), instances=2)
    assert r.verdict.kind == "pass" and not r.as_expected and r.shape == "2x2@2"
    report = MatrixReport(runs=[r])
    text = junit.render(report, 1)
    xmlschema.XMLSchema(JUNIT_XSD).validate(text)
    case = ET.fromstring(text).find("testsuite/testcase")
    assert case is not None and case.get("name") == "outage 2x2@2"
    failure = case.find("failure")
    assert failure is not None and failure.get("type") == "throttle.fault"
    assert "fault redis-outage: fail-open" in (failure.get("message") or "")
    assert "fault redis-latency: 5 ms added" in (failure.text or "")
    md = markdown.render(report, 1)
    assert "fault redis-outage: fail-open **(not as expected)**" in md
    assert "fault redis-latency: added:" in md
    page = html.render(report, 1)
    assert "fault redis-outage</b> (fail-open, not as expected)" in page
