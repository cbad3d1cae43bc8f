"""Friendly duration parsing for standard targets (slas/durations.py, pure)."""

from datetime import time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slas.clock import BusinessCalendar
from slas.durations import DurationError, business_days, format_duration, parse_duration

H = timedelta(hours=1)
NINE_TO_FIVE = BusinessCalendar("Europe/Berlin", {d: [(time(9), time(17))] for d in range(5)})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4h", 4 * H),
        ("30m", timedelta(minutes=30)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        ("1,5 h", timedelta(hours=1, minutes=30)),
        ("2 hours", 2 * H),
        ("45 min", timedelta(minutes=45)),
        ("90s", timedelta(seconds=90)),
        ("1:30", timedelta(hours=1, minutes=30)),
        ("  4H ", 4 * H),
    ],
)
def test_parse_duration_reads_friendly_units(text, expected):
    assert parse_duration(text) == expected


def test_business_days_are_multiples_of_the_calendars_working_day():
    working_day = NINE_TO_FIVE.typical_working_day()
    assert parse_duration("2 business days", working_day=working_day) == 16 * H


def test_business_days_on_a_24x7_calendar_are_whole_days():
    working_day = BusinessCalendar.always_open().typical_working_day()
    assert parse_duration("2 business days", working_day=working_day) == timedelta(days=2)


def test_business_days_combine_with_hours():
    assert parse_duration("1 working day 4h", working_day=8 * H) == 12 * H
    assert parse_duration("0.5bd", working_day=8 * H) == 4 * H


def test_business_days_on_a_split_shift_calendar_use_the_days_total():
    split = BusinessCalendar(
        "Europe/Berlin", {0: [(time(9), time(12, 30)), (time(13, 30), time(17, 30))]}
    )
    assert parse_duration("1 business day", working_day=split.typical_working_day()) == 7.5 * H


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("soon", "syntax"),
        ("4 parsecs", "unit"),
        ("2 days", "days"),
        ("2d", "days"),
        ("0h", "zero"),
        ("0m 0s", "zero"),
        ("-4h", "negative"),
        ("4h 2h", "repeated"),
        ("100000h", "too_long"),
        ("4h30", "syntax"),
    ],
)
def test_parse_duration_refuses_with_a_clear_reason(text, code):
    with pytest.raises(DurationError) as info:
        parse_duration(text, working_day=8 * H)
    assert info.value.code == code
    assert str(info.value)


def test_plain_days_are_refused_with_a_suggestion():
    with pytest.raises(DurationError) as info:
        parse_duration("2 days", working_day=8 * H)
    assert "2 business days" in str(info.value) and "48h" in str(info.value)


def test_business_days_without_working_hours_are_refused():
    with pytest.raises(DurationError) as info:
        parse_duration("2 business days", working_day=timedelta(0))
    assert info.value.code == "no_working_day"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (4 * H, "4h"),
        (timedelta(minutes=90), "1h30m"),
        (timedelta(seconds=45), "45s"),
        (timedelta(days=2), "48h"),
        (timedelta(hours=1, seconds=1, microseconds=500_000), "1h1.5s"),
    ],
)
def test_format_duration_is_short(value, text):
    assert format_duration(value) == text


@given(st.integers(min_value=1, max_value=3_000 * 86_400 * 1_000_000))
def test_format_duration_parses_back(micro):
    value = timedelta(microseconds=micro)
    assert parse_duration(format_duration(value)) == value


def test_business_days_expresses_a_target_in_working_days():
    assert str(business_days(16 * H, 8 * H)) == "2.00"
    assert business_days(16 * H, timedelta(0)) is None
