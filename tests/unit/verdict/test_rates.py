from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness.errors import EXIT_USAGE, RateError
from harness.verdict.rates import parse_rate

# DRF's own parser, in a process of its own (its throttling module needs configured settings,
# which this test process should not fix for the tests that configure their own).
DRF_PARSE = """
import json, sys
import django
from django.conf import settings
settings.configure()
django.setup()
from rest_framework.throttling import SimpleRateThrottle
throttle = SimpleRateThrottle.__new__(SimpleRateThrottle)
answers = {}
for text in json.loads(sys.argv[1]):
    try:
        answers[text] = list(throttle.parse_rate(text))
    except Exception as exc:
        answers[text] = type(exc).__name__
print(json.dumps(answers))
"""


def drf_parse(*texts: str) -> dict[str, list[int] | str]:
    """What DRF itself makes of each rate string: [limit, seconds], or its exception's name."""
    out = subprocess.run(
        [sys.executable, "-c", DRF_PARSE, json.dumps(texts)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    answers: dict[str, list[int] | str] = json.loads(out)
    return answers


@pytest.mark.parametrize(
    ("text", "limit", "period", "canonical"),
    [
        ("100/hour", 100, 3600, "100/hour"),
        ("5/s", 5, 1, "5/second"),
        ("10/min", 10, 60, "10/minute"),
        ("1000/day", 1000, 86400, "1000/day"),
        ("3/second", 3, 1, "3/second"),
        ("7/m", 7, 60, "7/minute"),
        ("2/h", 2, 3600, "2/hour"),
        ("1/d", 1, 86400, "1/day"),
        (" 20 / minutes ", 20, 60, "20/minute"),
        ("4/HOUR", 4, 3600, "4/hour"),
        ("100/Hour", 100, 3600, "100/hour"),
        ("5/Sec", 5, 1, "5/second"),
        ("010/hrs", 10, 3600, "10/hour"),
        ("+3/DAYS", 3, 86400, "3/day"),
    ],
)
def test_drf_rates_parse_to_the_canonical_form(
    text: str, limit: int, period: int, canonical: str
) -> None:
    rate = parse_rate(text)
    assert (rate.limit, rate.period_s) == (limit, period)
    assert rate.text == str(rate) == canonical
    assert rate.given == text.strip()


def test_drf_reads_every_canonical_form_as_the_harness_does() -> None:
    """The app is handed ``Rate.text`` (never the user's spelling: DRF reads ``period[0]``,
    case-sensitively, today), so that is the contract: DRF reads each canonical form with the
    harness's limit and period. What DRF makes of other spellings is DRF's business."""
    rates = [
        parse_rate(f"{n}/{p}")
        for n, p in [(100, "Hour"), (5, "s"), (10, "MIN"), (1000, "days"), (3, " seconds")]
    ]
    answers = drf_parse(*[r.text for r in rates])
    for rate in rates:
        assert answers[rate.text] == [rate.limit, rate.period_s]


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("100/fortnight", "unknown period 'fortnight'"),
        ("100/mango", "unknown period 'mango'"),  # DRF would read this as per minute
        ("abc", "expected N/PERIOD"),
        ("x/hour", "'x' is not a whole number"),
        ("1_000/hour", "'1_000' is not a whole number"),  # int() would take it
        ("\u0663/hour", "is not a whole number"),  # an Arabic-Indic three: int() would too
        ("0/hour", "at least 1"),
        ("-5/hour", "at least 1"),
        ("100/", "unknown period ''"),
    ],
)
def test_bad_rates_are_usage_errors(text: str, complaint: str) -> None:
    with pytest.raises(RateError) as caught:
        parse_rate(text)
    assert complaint in caught.value.message
    assert caught.value.exit_code == EXIT_USAGE
    assert "\n" not in caught.value.message
