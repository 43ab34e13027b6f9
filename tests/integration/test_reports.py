"""The CI-facing reports of real runs: the JUnit file loads against the common JUnit shape and
carries the failure with its numbers; the HTML report renders in a real headless Chromium with
its pictures visible."""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import xmlschema

from conftest import CliResult
from harness.report.html import COLOURS, LIMIT_COLOUR

pytestmark = [pytest.mark.integration, pytest.mark.serial]  # see conftest.py
JUNIT_XSD = Path(__file__).parents[1] / "data" / "junit.xsd"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def browser() -> str:
    """A headless-capable Chromium; CI (``CI=true``) must have one, elsewhere the test skips."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail("no Chromium found (.ci/run installs Debian's chromium package)")
    pytest.skip("no Chromium here (apt-get install chromium)")


def screenshot(page: Path, out: Path, tmp: Path) -> None:
    subprocess.run(
        [
            browser(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            f"--user-data-dir={tmp / 'profile'}",
            "--window-size=1100,2400",
            f"--screenshot={out}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def test_junit_and_html_of_a_violation(
    run_cli: Callable[..., CliResult], redis_spec: str, tmp_path: Path
) -> None:
    from PIL import Image

    xml, page, shot = tmp_path / "junit.xml", tmp_path / "report.html", tmp_path / "shot.png"
    result = run_cli(
        "run",
        "scenarios/atomic-lua.toml",
        "scenarios/drf-django-redis.toml",
        "--workers",
        "2",
        "--expect",
        "exact",
        "--redis",
        redis_spec,
        "--junit",
        str(xml),
        "--html",
        str(page),
    )
    assert result.code == 1, result.stdout + result.stderr

    xmlschema.XMLSchema(JUNIT_XSD).validate(str(xml))
    suite = ET.parse(xml).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "1", "0")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert cases["atomic-lua 2x2"].find("failure") is None
    failure = cases["drf-django-redis 2x2"].find("failure")
    assert failure is not None and failure.get("type") == "throttle.fail"
    message = failure.get("message") or ""
    assert message.startswith("expected a pass, got fail: admitted ")
    assert "limit 100; over-admission" in message and "not atomic" in (failure.text or "")

    text = page.read_text()
    assert text.count("<svg") >= 4  # stock DRF's one burst, and the atomic throttle's three
    assert "https://" not in text and "src=" not in text
    screenshot(page, shot, tmp_path)
    colours = Image.open(shot).convert("RGB").getcolors(maxcolors=1 << 24) or []
    pixels = Counter({colour: count for count, colour in colours})
    assert len(pixels) > 20, "a blank page"
    for name, colour in (
        ("admitted", COLOURS["accepted"]),
        ("refused", COLOURS["rejected"]),
        ("admitted past the bound", COLOURS["past-bound"]),
        ("the limit", LIMIT_COLOUR),
    ):
        assert pixels[rgb(colour)] > 100, f"{name} is not visible in the screenshot"
