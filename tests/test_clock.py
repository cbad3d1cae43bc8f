"""Behaviour of slas.clock.BusinessCalendar: examples, DST edge cases and properties.

Pure Python: no database and no Django settings are needed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from slas.clock import BusinessCalendar

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
SYDNEY = ZoneInfo("Australia/Sydney")
KOLKATA = ZoneInfo("Asia/Kolkata")

H = timedelta(hours=1)
MIN = timedelta(minutes=1)
US = timedelta(microseconds=1)

WEEKDAYS_9_TO_17 = {day: [(time(9), time(17))] for day in range(5)}
EVERY_DAY_9_TO_17 = {day: [(time(9), time(17))] for day in range(7)}
SPLIT_SHIFT = {
    0: [(time(9), time(12, 30)), (time(13, 30), time(17, 30))],
    1: [(time(9), time(17))],
}

# 2026-01-05 is a Monday.
MONDAY = date(2026, 1, 5)


def berlin(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BERLIN)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def split_shift() -> BusinessCalendar:
    return BusinessCalendar("Europe/Berlin", SPLIT_SHIFT, {date(2026, 12, 25)})


@pytest.fixture
def office() -> BusinessCalendar:
    return BusinessCalendar("Europe/Berlin", WEEKDAYS_9_TO_17, {date(2026, 1, 6)})


# ---------------------------------------------------------------- elapsed: examples


def test_elapsed_counts_both_shifts_of_a_split_day_and_not_the_break(split_shift):
    assert split_shift.elapsed(berlin(MONDAY, 8), berlin(MONDAY, 18)) == 7.5 * H


def test_elapsed_starting_inside_an_interval_counts_only_the_rest(split_shift):
    assert split_shift.elapsed(berlin(MONDAY, 10), berlin(MONDAY, 18)) == 6.5 * H


def test_elapsed_starting_in_the_break_counts_from_the_next_shift(split_shift):
    assert split_shift.elapsed(berlin(MONDAY, 13), berlin(MONDAY, 14)) == 30 * MIN


def test_elapsed_outside_working_hours_is_zero(split_shift):
    assert split_shift.elapsed(berlin(MONDAY, 18), berlin(MONDAY, 23)) == timedelta(0)


def test_elapsed_is_zero_when_end_is_not_after_start(split_shift):
    assert split_shift.elapsed(berlin(MONDAY, 10), berlin(MONDAY, 10)) == timedelta(0)
    assert split_shift.elapsed(berlin(MONDAY, 11), berlin(MONDAY, 10)) == timedelta(0)


def test_elapsed_missing_weekdays_are_closed(split_shift):
    wednesday = MONDAY + timedelta(days=2)
    assert split_shift.elapsed(berlin(wednesday), berlin(wednesday + timedelta(days=5))) == (
        timedelta(0)
    )


def test_elapsed_skips_the_weekend():
    cal = BusinessCalendar("Europe/Berlin", WEEKDAYS_9_TO_17)
    friday = MONDAY + timedelta(days=4)
    assert cal.elapsed(berlin(friday, 16), berlin(friday + timedelta(days=3), 10)) == 2 * H


def test_elapsed_skips_holidays(office):
    # Tuesday 2026-01-06 is a holiday: Monday 16:00 -> Wednesday 10:00 is 1h + 1h.
    assert office.elapsed(berlin(MONDAY, 16), berlin(MONDAY + timedelta(days=2), 10)) == 2 * H


def test_elapsed_accepts_inputs_in_any_zone(office):
    start = berlin(MONDAY, 10).astimezone(NEW_YORK)
    end = berlin(MONDAY, 12).astimezone(KOLKATA)
    assert office.elapsed(start, end) == 2 * H


def test_elapsed_has_microsecond_resolution(office):
    start = berlin(MONDAY, 16, 59) + timedelta(seconds=59, microseconds=999_999)
    assert office.elapsed(start, berlin(MONDAY, 18)) == US


def test_elapsed_of_a_full_working_week(split_shift):
    assert split_shift.elapsed(berlin(MONDAY), berlin(MONDAY + timedelta(days=7))) == 15.5 * H


# ---------------------------------------------------------------- add: examples


def test_add_within_one_interval(split_shift):
    assert split_shift.add(berlin(MONDAY, 9), 2 * H) == berlin(MONDAY, 11)


def test_add_crosses_the_break(split_shift):
    assert split_shift.add(berlin(MONDAY, 12), 1 * H) == berlin(MONDAY, 14)


def test_add_from_outside_hours_starts_at_the_next_opening(split_shift):
    assert split_shift.add(berlin(MONDAY, 6), 30 * MIN) == berlin(MONDAY, 9, 30)


def test_add_skips_closed_days_and_the_weekend(split_shift):
    # Monday 17:00 + 1h: 30 min Monday, 30 min Tuesday.
    assert split_shift.add(berlin(MONDAY, 17), 1 * H) == berlin(MONDAY + timedelta(days=1), 9, 30)
    # Tuesday 16:00 + 2h: 1h Tuesday, then the next Monday.
    tuesday = MONDAY + timedelta(days=1)
    assert split_shift.add(berlin(tuesday, 16), 2 * H) == berlin(MONDAY + timedelta(days=7), 10)


def test_add_skips_holidays(office):
    assert office.add(berlin(MONDAY, 16), 2 * H) == berlin(MONDAY + timedelta(days=2), 10)


def test_add_zero_returns_start_even_outside_working_hours(office):
    start = berlin(MONDAY, 3, 17)
    assert office.add(start, timedelta(0)) == start


def test_add_that_exhausts_an_interval_returns_its_end_not_the_next_opening(split_shift):
    assert split_shift.add(berlin(MONDAY, 9), 3.5 * H) == berlin(MONDAY, 12, 30)


def test_add_returns_an_aware_utc_datetime(office):
    result = office.add(berlin(MONDAY, 9), 1 * H)
    assert result.tzinfo is UTC
    assert result == utc(2026, 1, 5, 9)


def test_add_accepts_start_in_another_zone(office):
    start = berlin(MONDAY, 9).astimezone(SYDNEY)
    assert office.add(start, 3 * H) == berlin(MONDAY, 12)


def test_add_has_microsecond_resolution(office):
    assert office.add(berlin(MONDAY, 9), US) == berlin(MONDAY, 9) + US


def test_add_a_year_of_business_time_matches_a_day_count():
    holidays = {
        date(2026, 1, 1), date(2026, 4, 3), date(2026, 4, 6), date(2026, 5, 1),
        date(2026, 5, 14), date(2026, 5, 25), date(2026, 10, 3), date(2026, 12, 25),
        date(2026, 12, 26), date(2027, 1, 1),
    }  # fmt: skip
    cal = BusinessCalendar("Europe/Berlin", WEEKDAYS_9_TO_17, holidays)
    # 260 working days of 8 h; the target is 17:00 on the 260th working day.
    day, working_days = MONDAY, 0
    while True:
        if day.weekday() < 5 and day not in holidays:
            working_days += 1
            if working_days == 260:
                break
        day += timedelta(days=1)
    result = cal.add(berlin(MONDAY, 9), 260 * 8 * H)
    assert result == berlin(day, 17)
    assert cal.elapsed(berlin(MONDAY, 9), result) == 260 * 8 * H


def test_elapsed_over_ten_years_matches_a_weekday_count():
    cal = BusinessCalendar("America/New_York", WEEKDAYS_9_TO_17)
    start, end = date(2026, 1, 1), date(2036, 1, 1)
    weekdays = sum(
        1 for n in range((end - start).days) if (start + timedelta(days=n)).weekday() < 5
    )
    elapsed = cal.elapsed(
        datetime(2026, 1, 1, tzinfo=NEW_YORK), datetime(2036, 1, 1, tzinfo=NEW_YORK)
    )
    assert elapsed == weekdays * 8 * H


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("method", ["elapsed_start", "elapsed_end", "add", "is_open", "between"])
def test_naive_datetimes_raise_value_error(office, method):
    naive, aware = datetime(2026, 1, 5, 9), berlin(MONDAY, 9)
    calls = {
        "elapsed_start": lambda: office.elapsed(naive, aware),
        "elapsed_end": lambda: office.elapsed(aware, naive),
        "add": lambda: office.add(naive, H),
        "is_open": lambda: office.is_open(naive),
        "between": lambda: office.intervals_between(aware, naive),
    }
    with pytest.raises(ValueError, match="aware"):
        calls[method]()


def test_naive_datetimes_raise_value_error_on_always_open_calendars_too():
    with pytest.raises(ValueError):
        BusinessCalendar.always_open().add(datetime(2026, 1, 5), H)


@pytest.mark.parametrize(
    "name", ["Europe/Nowhere", "", "not a zone", "../etc/passwd", "Europe", "x" * 300]
)
def test_unknown_time_zone_raises_value_error(name):
    with pytest.raises(ValueError, match="time zone"):
        BusinessCalendar(name, WEEKDAYS_9_TO_17)


@pytest.mark.parametrize(
    "interval",
    [(time(17), time(9)), (time(9), time(9)), (time(0, 0, 0, 1), time(0, 0, 0, 1))],
)
def test_interval_ending_before_or_at_its_start_raises_value_error(interval):
    with pytest.raises(ValueError, match="after its start"):
        BusinessCalendar("UTC", {0: [interval]})


def test_overlapping_intervals_raise_value_error():
    with pytest.raises(ValueError, match="overlapping"):
        BusinessCalendar("UTC", {2: [(time(9), time(13)), (time(12), time(17))]})


def test_touching_intervals_are_merged():
    cal = BusinessCalendar("UTC", {0: [(time(12), time(17)), (time(9), time(12))]})
    assert cal.week == {0: ((time(9), time(17)),)}
    assert list(cal.intervals_between(utc(2026, 1, 5), utc(2026, 1, 6))) == [
        (utc(2026, 1, 5, 9), utc(2026, 1, 5, 17))
    ]


@pytest.mark.parametrize("weekday", [-1, 7, "monday", True])
def test_weekday_outside_0_to_6_raises_value_error(weekday):
    with pytest.raises(ValueError, match="weekday"):
        BusinessCalendar("UTC", {weekday: [(time(9), time(17))]})


def test_aware_interval_bounds_raise_value_error():
    with pytest.raises(ValueError, match="naive"):
        BusinessCalendar("UTC", {0: [(time(9, tzinfo=UTC), time(17))]})


def test_negative_duration_raises_value_error(office):
    with pytest.raises(ValueError, match="negative"):
        office.add(berlin(MONDAY, 9), -US)


def test_a_calendar_with_no_working_hours_cannot_reach_a_positive_target():
    closed = BusinessCalendar("Europe/Berlin", {})
    assert closed.elapsed(berlin(MONDAY), berlin(MONDAY + timedelta(days=400))) == timedelta(0)
    assert closed.add(berlin(MONDAY), timedelta(0)) == berlin(MONDAY)
    with pytest.raises(ValueError, match="no working hours"):
        closed.add(berlin(MONDAY), US)


def test_more_than_twenty_years_of_holidays_raise_value_error():
    holidays = {MONDAY + timedelta(days=n) for n in range(21 * 366)}
    cal = BusinessCalendar("UTC", {0: [(time(9), time(17))]}, holidays)
    with pytest.raises(ValueError, match="consecutive days"):
        cal.add(berlin(MONDAY), H)


def test_a_long_but_finite_run_of_holidays_is_crossed():
    holidays = {MONDAY + timedelta(days=n) for n in range(5 * 365)}
    cal = BusinessCalendar("UTC", {0: [(time(9), time(17))]}, holidays)
    result = cal.add(utc(2026, 1, 5), H)
    first_monday = MONDAY + timedelta(days=5 * 365)
    first_monday += timedelta(days=-first_monday.weekday() % 7)
    assert result == utc(first_monday.year, first_monday.month, first_monday.day, 10)


# ---------------------------------------------------------------- time(0) as 24:00


def test_interval_ending_at_time_zero_runs_to_midnight():
    cal = BusinessCalendar("UTC", {0: [(time(22), time(0))]})
    assert cal.elapsed(utc(2026, 1, 5), utc(2026, 1, 7)) == 2 * H
    assert cal.add(utc(2026, 1, 5, 12), 2 * H) == utc(2026, 1, 6)


def test_time_zero_to_time_zero_is_a_whole_day():
    cal = BusinessCalendar("UTC", {0: [(time(0), time(0))]})
    assert cal.elapsed(utc(2026, 1, 4), utc(2026, 1, 8)) == 24 * H
    assert cal.typical_working_day() == 24 * H


def test_whole_days_are_merged_across_midnight_in_intervals_between():
    cal = BusinessCalendar("UTC", {0: [(time(0), time(0))], 1: [(time(0), time(12))]})
    assert list(cal.intervals_between(utc(2026, 1, 1), utc(2026, 1, 10))) == [
        (utc(2026, 1, 5), utc(2026, 1, 6, 12))
    ]


# ---------------------------------------------------------------- DST


DST_DAYS = [
    ("Europe/Berlin", date(2026, 3, 29), 23),
    ("Europe/Berlin", date(2026, 10, 25), 25),
    ("America/New_York", date(2026, 3, 8), 23),
    ("America/New_York", date(2026, 11, 1), 25),
    ("Australia/Sydney", date(2026, 4, 5), 25),
    ("Australia/Sydney", date(2026, 10, 4), 23),
    ("Asia/Kolkata", date(2026, 3, 29), 24),
]


def local(zone: str, day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(zone))


@pytest.mark.parametrize(("zone", "day", "hours"), DST_DAYS)
def test_nine_to_five_is_eight_hours_on_dst_days(zone, day, hours):
    cal = BusinessCalendar(zone, EVERY_DAY_9_TO_17)
    assert cal.elapsed(local(zone, day), local(zone, day + timedelta(days=1))) == 8 * H
    assert cal.add(local(zone, day), 8 * H) == local(zone, day, 17)
    assert cal.add(local(zone, day, 9), 4 * H) == local(zone, day, 13)


@pytest.mark.parametrize(("zone", "day", "hours"), DST_DAYS)
def test_a_whole_day_counts_its_real_length_on_dst_days(zone, day, hours):
    # Only that weekday is open, so the calendar is not the 24x7 shortcut.
    cal = BusinessCalendar(zone, {day.weekday(): [(time(0), time(0))]})
    assert not cal.always_open
    start, end = local(zone, day), local(zone, day + timedelta(days=1))
    assert cal.elapsed(start - 24 * H, end + 24 * H) == hours * H
    assert cal.add(start, hours * H) == end
    assert cal.add(start, hours * H + US) > end + 6 * 24 * H  # only next week


@pytest.mark.parametrize(("zone", "day", "hours"), DST_DAYS)
def test_always_open_counts_real_time_between_local_midnights(zone, day, hours):
    cal = BusinessCalendar.always_open(zone)
    # Both datetimes share one tzinfo object: a wall-clock subtraction would say 24 h.
    start, end = local(zone, day), local(zone, day + timedelta(days=1))
    assert cal.elapsed(start, end) == hours * H
    assert cal.add(start, hours * H) == end


def test_kolkata_half_hour_offset_is_respected():
    cal = BusinessCalendar("Asia/Kolkata", WEEKDAYS_9_TO_17)
    assert list(cal.intervals_between(utc(2026, 1, 5), utc(2026, 1, 6))) == [
        (utc(2026, 1, 5, 3, 30), utc(2026, 1, 5, 11, 30))
    ]
    assert cal.add(utc(2026, 1, 5), 1 * H) == utc(2026, 1, 5, 4, 30)


def test_bound_in_a_dst_gap_maps_to_the_first_instant_after_the_gap():
    # 2026-03-29 (Sunday) Berlin: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
    cal = BusinessCalendar("Europe/Berlin", {6: [(time(2, 30), time(5))]})
    day = date(2026, 3, 29)
    assert list(cal.intervals_between(berlin(day), berlin(day + timedelta(days=1)))) == [
        (utc(2026, 3, 29, 1), utc(2026, 3, 29, 3))
    ]
    assert cal.add(berlin(day), 1 * H) == berlin(day, 4)


def test_interval_end_in_a_dst_gap_ends_at_the_transition():
    cal = BusinessCalendar("America/New_York", {6: [(time(1), time(2, 30))]})
    day = date(2026, 3, 8)
    start = datetime(2026, 3, 8, tzinfo=NEW_YORK)
    assert cal.elapsed(start, start + 24 * H) == 1 * H
    assert cal.add(start, 1 * H) == datetime(2026, 3, 8, 3, tzinfo=NEW_YORK)
    assert cal.add(datetime(2026, 3, 15, tzinfo=NEW_YORK), H) == local(
        "America/New_York", day + timedelta(days=7), 2
    )


def test_interval_entirely_inside_a_dst_gap_is_empty_that_day():
    cal = BusinessCalendar("Australia/Sydney", {6: [(time(2, 15), time(2, 45))]})
    gap_day = date(2026, 10, 4)
    start = local("Australia/Sydney", gap_day)
    assert cal.elapsed(start, start + 24 * H) == timedelta(0)
    assert cal.add(start, MIN) == local("Australia/Sydney", gap_day + timedelta(days=7), 2, 16)


def test_ambiguous_bound_uses_its_first_occurrence_and_counts_real_time():
    # 2026-10-25 Berlin: 03:00 CEST falls back to 02:00 CET, 02:xx happens twice.
    cal = BusinessCalendar("Europe/Berlin", {6: [(time(2, 30), time(4))]})
    day = date(2026, 10, 25)
    intervals = list(cal.intervals_between(berlin(day), berlin(day + timedelta(days=1))))
    # 02:30 CEST (00:30 UTC) .. 04:00 CET (03:00 UTC): 2.5 h of real time.
    assert intervals == [(utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 3))]
    assert cal.elapsed(berlin(day), berlin(day + timedelta(days=1))) == 2.5 * H


def test_interval_straddling_fall_back_counts_the_repeated_hour():
    cal = BusinessCalendar("America/New_York", {6: [(time(0), time(6))]})
    start = datetime(2026, 11, 1, tzinfo=NEW_YORK)
    assert cal.elapsed(start, start + 48 * H) == 7 * H


def test_interval_straddling_spring_forward_loses_the_skipped_hour():
    cal = BusinessCalendar("Australia/Sydney", {6: [(time(0), time(6))]})
    start = datetime(2026, 10, 4, tzinfo=SYDNEY)
    assert cal.elapsed(start, start + 48 * H) == 5 * H


# ---------------------------------------------------------------- helpers


def test_always_open_classmethod_builds_a_24x7_calendar():
    cal = BusinessCalendar.always_open()
    assert cal.always_open is True
    assert cal.timezone == "UTC"
    start = utc(2026, 1, 5, 3, 4)
    assert cal.elapsed(start, start + 1000 * H) == 1000 * H
    assert cal.add(start, 1000 * H) == start + 1000 * H
    assert cal.typical_working_day() == 24 * H
    assert cal.is_open(start)


def test_a_schedule_open_around_the_clock_is_recognised_as_always_open():
    cal = BusinessCalendar("Europe/Berlin", {d: [(time(0), time(0))] for d in range(7)})
    assert cal.always_open is True


def test_holidays_or_a_closed_day_make_a_calendar_not_always_open():
    full = {d: [(time(0), time(0))] for d in range(7)}
    assert BusinessCalendar("UTC", full, {date(2026, 1, 1)}).always_open is False
    assert BusinessCalendar("UTC", {d: full[d] for d in range(6)}).always_open is False
    assert BusinessCalendar("UTC", WEEKDAYS_9_TO_17).always_open is False


def test_typical_working_day_is_the_longest_daily_total(split_shift):
    assert split_shift.typical_working_day() == 8 * H  # Monday 7.5 h, Tuesday 8 h
    assert BusinessCalendar("UTC", {}).typical_working_day() == timedelta(0)


def test_is_open_inside_an_interval_and_closed_at_its_end(split_shift):
    assert split_shift.is_open(berlin(MONDAY, 9))
    assert split_shift.is_open(berlin(MONDAY, 12, 29))
    assert not split_shift.is_open(berlin(MONDAY, 12, 30))
    assert not split_shift.is_open(berlin(MONDAY, 8, 59))
    assert not split_shift.is_open(berlin(MONDAY + timedelta(days=2), 10))


def test_is_open_is_false_on_holidays():
    cal = BusinessCalendar("Europe/Berlin", EVERY_DAY_9_TO_17, {date(2026, 12, 25)})
    assert not cal.is_open(berlin(date(2026, 12, 25), 10))
    assert cal.is_open(berlin(date(2026, 12, 24), 10))


def test_intervals_between_are_clipped_utc_pairs(split_shift):
    intervals = list(split_shift.intervals_between(berlin(MONDAY, 10), berlin(MONDAY, 15)))
    assert intervals == [
        (utc(2026, 1, 5, 9), utc(2026, 1, 5, 11, 30)),
        (utc(2026, 1, 5, 12, 30), utc(2026, 1, 5, 14)),
    ]
    assert all(s.tzinfo is UTC and e.tzinfo is UTC for s, e in intervals)


def test_intervals_between_validates_eagerly(split_shift):
    with pytest.raises(ValueError):
        split_shift.intervals_between(datetime(2026, 1, 5), berlin(MONDAY))


def test_intervals_between_is_empty_for_an_empty_range(split_shift):
    assert list(split_shift.intervals_between(berlin(MONDAY, 11), berlin(MONDAY, 10))) == []


def test_calendars_sharing_a_schedule_keep_their_own_holidays():
    with_holiday = BusinessCalendar("Europe/Berlin", WEEKDAYS_9_TO_17, {MONDAY})
    without = BusinessCalendar("Europe/Berlin", WEEKDAYS_9_TO_17)
    span = (berlin(MONDAY), berlin(MONDAY + timedelta(days=1)))
    assert without.elapsed(*span) == 8 * H
    assert with_holiday.elapsed(*span) == timedelta(0)
    assert without.elapsed(*span) == 8 * H


def test_introspection_returns_the_normalised_configuration(split_shift):
    assert split_shift.timezone == "Europe/Berlin"
    assert split_shift.holidays == frozenset({date(2026, 12, 25)})
    assert split_shift.week[0] == ((time(9), time(12, 30)), (time(13, 30), time(17, 30)))
    assert "Europe/Berlin" in repr(split_shift)


# ---------------------------------------------------------------- properties

ZONES = ["Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC"]
INPUT_ZONES = [ZoneInfo(name) for name in [*ZONES, "Asia/Tokyo", "America/Sao_Paulo"]]

# Every DST transition of the zones above in 2025-2027 (UTC); inputs cluster around them.
TRANSITIONS = [
    utc(2025, 3, 30, 1), utc(2025, 10, 26, 1), utc(2026, 3, 29, 1),
    utc(2026, 10, 25, 1), utc(2027, 3, 28, 1), utc(2027, 10, 31, 1),
    utc(2025, 3, 9, 7), utc(2025, 11, 2, 6), utc(2026, 3, 8, 7),
    utc(2026, 11, 1, 6), utc(2027, 3, 14, 7), utc(2027, 11, 7, 6),
    utc(2025, 4, 5, 16), utc(2025, 10, 4, 16), utc(2026, 4, 4, 16),
    utc(2026, 10, 3, 16), utc(2027, 4, 3, 16), utc(2027, 10, 2, 16),
]  # fmt: skip


def test_the_transition_list_used_by_the_properties_is_real():
    zones = [BERLIN, NEW_YORK, SYDNEY]
    for instant in TRANSITIONS:
        assert any(
            (instant - US).astimezone(z).utcoffset() != instant.astimezone(z).utcoffset()
            for z in zones
        )


def _wall(minute: int) -> time:
    return time(0) if minute == 1440 else time(minute // 60, minute % 60)


@st.composite
def calendars(draw: st.DrawFn) -> BusinessCalendar:
    zone = draw(st.sampled_from(ZONES))
    week: dict[int, list[tuple[time, time]]] = {}
    for weekday in range(7):
        points = sorted(draw(st.lists(st.integers(0, 1440), unique=True, max_size=6)))
        points = points[: len(points) // 2 * 2]
        if points:
            week[weekday] = [
                (_wall(points[i]), _wall(points[i + 1])) for i in range(0, len(points), 2)
            ]
    holidays = draw(st.frozensets(st.dates(date(2024, 12, 1), date(2028, 1, 31)), max_size=40))
    return BusinessCalendar(zone, week, holidays)


@st.composite
def instants(draw: st.DrawFn) -> datetime:
    """Aware datetimes in 2025-2027, often near a DST transition, in a random zone."""
    if draw(st.booleans()):
        anchor = draw(st.sampled_from(TRANSITIONS))
        offset = draw(st.integers(-3 * 86_400_000_000, 3 * 86_400_000_000))
    else:
        anchor = utc(2025, 1, 1)
        offset = draw(st.integers(0, 3 * 365 * 86_400_000_000))
    if draw(st.booleans()):  # whole minutes hit interval bounds exactly
        offset -= offset % 60_000_000
    return (anchor + timedelta(microseconds=offset)).astimezone(draw(st.sampled_from(INPUT_ZONES)))


def chronological(*values: datetime) -> list[datetime]:
    # Aware datetimes sharing one tzinfo compare (and subtract) by wall clock, ignoring
    # fold, so order them by their UTC instant instead.
    return sorted(values, key=lambda value: value.astimezone(UTC))


def nominal_week(cal: BusinessCalendar) -> timedelta:
    total = timedelta(0)
    for spans in cal.week.values():
        for start, end in spans:
            end_minutes = 1440 if end == time(0) else end.hour * 60 + end.minute
            total += (end_minutes - start.hour * 60 - start.minute) * MIN
    return total


@st.composite
def durations(draw: st.DrawFn, cal: BusinessCalendar) -> timedelta:
    weekly = nominal_week(cal) // US
    return timedelta(microseconds=draw(st.integers(0, max(0, 6 * weekly))))


PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(st.data(), calendars(), instants())
def test_property_add_then_elapsed_round_trips(data, cal, start):
    assume(cal.week)
    duration = data.draw(durations(cal))
    result = cal.add(start, duration)
    assert result >= start
    assert cal.elapsed(start, result) == duration


@PROPERTY_SETTINGS
@given(st.data(), calendars(), instants())
def test_property_add_returns_the_earliest_such_instant(data, cal, start):
    assume(cal.week)
    duration = data.draw(durations(cal))
    assume(duration > timedelta(0))
    result = cal.add(start, duration)
    assert result - US >= start
    assert cal.elapsed(start, result - US) < duration
    assert cal.is_open(result - US)


@PROPERTY_SETTINGS
@given(calendars(), instants(), instants(), instants())
def test_property_elapsed_is_additive(cal, a, b, c):
    a, b, c = chronological(a, b, c)
    assert cal.elapsed(a, c) == cal.elapsed(a, b) + cal.elapsed(b, c)


@PROPERTY_SETTINGS
@given(calendars(), instants(), instants(), instants())
def test_property_elapsed_is_monotone_in_both_ends(cal, a, b, c):
    a, b, c = chronological(a, b, c)
    assert cal.elapsed(a, b) <= cal.elapsed(a, c)
    assert cal.elapsed(b, c) <= cal.elapsed(a, c)


@PROPERTY_SETTINGS
@given(st.data(), calendars(), instants())
def test_property_add_is_monotone_in_the_duration(data, cal, start):
    assume(cal.week)
    first, second = sorted([data.draw(durations(cal)), data.draw(durations(cal))])
    assert cal.add(start, first) <= cal.add(start, second)


@PROPERTY_SETTINGS
@given(calendars(), instants(), instants())
def test_property_elapsed_never_exceeds_real_time(cal, a, b):
    real = b.astimezone(UTC) - a.astimezone(UTC)
    assert timedelta(0) <= cal.elapsed(a, b) <= max(real, timedelta(0))


@PROPERTY_SETTINGS
@given(calendars(), instants(), instants())
def test_property_intervals_between_partition_the_elapsed_time(cal, a, b):
    intervals = list(cal.intervals_between(a, b))
    assert sum((e - s for s, e in intervals), timedelta(0)) == cal.elapsed(a, b)
    for (_, e), (next_start, _) in zip(intervals, intervals[1:], strict=False):
        assert e < next_start  # sorted, disjoint and maximal
        assert not cal.is_open(e)
    for s, e in intervals:
        assert a <= s < e <= b
        assert cal.is_open(s) and cal.is_open(e - US)


@PROPERTY_SETTINGS
@given(calendars(), instants(), instants(), st.sampled_from(INPUT_ZONES))
def test_property_the_zone_inputs_are_expressed_in_does_not_matter(cal, a, b, zone):
    assert cal.elapsed(a, b) == cal.elapsed(a.astimezone(zone), b.astimezone(UTC))
