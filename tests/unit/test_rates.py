import pytest

from harness.errors import EXIT_USAGE, RateError
from harness.rates import parse_rate


@pytest.mark.parametrize(
    ("text", "limit", "period"),
    [
        ("100/hour", 100, 3600), ("5/s", 5, 1), ("10/min", 10, 60), ("1000/day", 1000, 86400),
        ("3/second", 3, 1), ("7/m", 7, 60), ("2/h", 2, 3600), ("1/d", 1, 86400),
        (" 20 / minutes ", 20, 60), ("4/HOUR", 4, 3600),
    ],
)
def test_drf_rates_parse(text: str, limit: int, period: int) -> None:
    rate = parse_rate(text)
    assert (rate.limit, rate.period_s) == (limit, period)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("100/fortnight", "unknown period 'fortnight'"),
        ("100/mango", "unknown period 'mango'"),  # DRF would read this as per minute
        ("abc", "expected N/PERIOD"),
        ("x/hour", "'x' is not a whole number"),
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
