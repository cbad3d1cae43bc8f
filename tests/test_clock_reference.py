"""slas.clock compared with a deliberately naive minute-by-minute reference.

The reference shares no code with the module.  It walks a window of at most ten days one
UTC minute at a time, reads each minute's local wall clock with zoneinfo and asks whether
that wall-clock reading lies in a working interval of its local date (holidays excluded).

One refinement keeps it in step with the documented conventions at DST transitions: the
reading it checks is the *high-water mark* of the local wall clock so far, not the raw
reading.  During a fall-back the clock re-reads an hour it has already shown; the
high-water mark stays put, so a working interval is one continuous stretch of real time
from the first moment the wall clock reaches its start to the first moment it reaches its
end.  That is exactly the module's rule ("a bound maps to the earliest instant whose wall
clock reads at or after it"): bounds inside a gap map to the end of the gap and ambiguous
bounds to their first occurrence.  Away from fall-back hours the high-water mark is simply
the wall clock.

Inputs are whole UTC minutes and all zones used have whole-minute offsets, so every
interval bound is a whole UTC minute and the minute walk is exact.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slas.clock import BusinessCalendar

ZONES = ["Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC"]
INPUT_ZONES = [ZoneInfo(name) for name in [*ZONES, "Asia/Tokyo"]]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
DAY_MINUTES = 1440
MAX_WINDOW = 10 * DAY_MINUTES

# DST transitions (UTC) of the zones above in 2025-2027; windows cluster around them.
TRANSITIONS = {
    "Europe/Berlin": [
        datetime(2025, 3, 30, 1), datetime(2025, 10, 26, 1), datetime(2026, 3, 29, 1),
        datetime(2026, 10, 25, 1), datetime(2027, 3, 28, 1), datetime(2027, 10, 31, 1),
    ],
    "America/New_York": [
        datetime(2025, 3, 9, 7), datetime(2025, 11, 2, 6), datetime(2026, 3, 8, 7),
        datetime(2026, 11, 1, 6), datetime(2027, 3, 14, 7), datetime(2027, 11, 7, 6),
    ],
    "Australia/Sydney": [
        datetime(2025, 4, 5, 16), datetime(2025, 10, 4, 16), datetime(2026, 4, 4, 16),
        datetime(2026, 10, 3, 16), datetime(2027, 4, 3, 16), datetime(2027, 10, 2, 16),
    ],
}  # fmt: skip
TRANSITION_MINUTES = {
    zone: [(moment.replace(tzinfo=UTC) - EPOCH) // MINUTE for moment in moments]
    for zone, moments in TRANSITIONS.items()
}

Week = dict[int, list[tuple[int, int]]]  # weekday -> [(start minute, end minute <= 1440)]


def to_datetime(minute: int, zone: ZoneInfo) -> datetime:
    return (EPOCH + minute * MINUTE).astimezone(zone)


def reference_open_minutes(
    zone_name: str, week: Week, holidays: frozenset[date], first: int, count: int
) -> list[bool]:
    """For each UTC minute first .. first+count-1: is it working time?"""
    zone = ZoneInfo(zone_name)
    high_water: tuple[date, int] | None = None
    result: list[bool] = []
    for minute in range(first - DAY_MINUTES, first + count):  # one day to settle the mark
        local = (EPOCH + minute * MINUTE).astimezone(zone)
        reading = (local.date(), local.hour * 60 + local.minute)
        if high_water is None or reading > high_water:
            high_water = reading
        if minute < first:
            continue
        day, wall = high_water
        result.append(
            day not in holidays
            and any(start <= wall < end for start, end in week.get(day.weekday(), []))
        )
    return result


def to_time(minute: int) -> time:
    return time(0) if minute == DAY_MINUTES else time(minute // 60, minute % 60)


def build(zone_name: str, week: Week, holidays: frozenset[date]) -> BusinessCalendar:
    return BusinessCalendar(
        zone_name,
        {day: [(to_time(s), to_time(e)) for s, e in spans] for day, spans in week.items()},
        holidays,
    )


@st.composite
def weeks(draw: st.DrawFn) -> Week:
    template = draw(st.sampled_from(["random", "office", "split", "full", "night", "dst"]))
    if template == "office":
        return {day: [(9 * 60, 17 * 60)] for day in range(7)}
    if template == "split":
        return {day: [(8 * 60, 12 * 60), (13 * 60, 17 * 60 + 30)] for day in range(6)}
    if template == "full":
        return {day: [(0, DAY_MINUTES)] for day in draw(st.sets(st.integers(0, 6), min_size=1))}
    if template == "night":  # covers the usual 01:00-03:00 transition hours
        return {day: [(0, 150), (170, 4 * 60), (22 * 60, DAY_MINUTES)] for day in range(7)}
    # "dst": bounds in and around the 01:00-03:00 hours in which the clocks change.
    low, high = (50, 250) if template == "dst" else (0, DAY_MINUTES)
    week: Week = {}
    for day in range(7):
        points = sorted(draw(st.lists(st.integers(low, high), unique=True, max_size=6)))
        points = points[: len(points) // 2 * 2]
        if points:
            week[day] = [(points[i], points[i + 1]) for i in range(0, len(points), 2)]
    return week


@st.composite
def windows(draw: st.DrawFn, zone_name: str) -> tuple[int, int]:
    """(first UTC minute, number of minutes), often straddling one of the zone's transitions."""
    count = draw(st.integers(1, MAX_WINDOW))
    if zone_name in TRANSITION_MINUTES and draw(st.integers(0, 3)):
        first = draw(st.sampled_from(TRANSITION_MINUTES[zone_name])) - draw(st.integers(0, count))
    else:
        first = draw(st.integers(28_900_000, 30_400_000))  # 2024-12 .. 2027-10
    return first, count


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[str, Week, frozenset[date], int, int]:
    zone_name = draw(st.sampled_from(ZONES))
    week = draw(weeks())
    first, count = draw(windows(zone_name))
    start_day = to_datetime(first, ZoneInfo(zone_name)).date() - timedelta(days=2)
    window_days = [start_day + timedelta(days=n) for n in range(count // DAY_MINUTES + 5)]
    holidays = draw(st.frozensets(st.sampled_from(window_days), max_size=4))
    return zone_name, week, holidays, first, count


REFERENCE_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@REFERENCE_SETTINGS
@given(scenarios(), st.data())
def test_elapsed_matches_the_minute_walk(scenario, data):
    zone_name, week, holidays, first, count = scenario
    cal = build(zone_name, week, holidays)
    open_minutes = reference_open_minutes(zone_name, week, holidays, first, count)
    prefix = [0]
    for is_open in open_minutes:
        prefix.append(prefix[-1] + is_open)

    assert cal.elapsed(to_datetime(first, UTC), to_datetime(first + count, UTC)) == (
        prefix[-1] * MINUTE
    )
    offsets = st.integers(0, count)
    for _ in range(data.draw(st.integers(1, 8))):
        a, b = data.draw(offsets), data.draw(offsets)
        expected = max(0, prefix[b] - prefix[a]) * MINUTE
        zone_a, zone_b = (
            data.draw(st.sampled_from(INPUT_ZONES)),
            data.draw(st.sampled_from(INPUT_ZONES)),
        )
        assert cal.elapsed(to_datetime(first + a, zone_a), to_datetime(first + b, zone_b)) == (
            expected
        )


@REFERENCE_SETTINGS
@given(scenarios(), st.data())
def test_add_matches_the_minute_walk(scenario, data):
    zone_name, week, holidays, first, count = scenario
    cal = build(zone_name, week, holidays)
    open_minutes = reference_open_minutes(zone_name, week, holidays, first, count)
    prefix = [0]
    for is_open in open_minutes:
        prefix.append(prefix[-1] + is_open)

    for _ in range(data.draw(st.integers(1, 8))):
        a = data.draw(st.integers(0, count))
        available = prefix[-1] - prefix[a]
        wanted = data.draw(st.integers(0, available + 60))
        start = to_datetime(first + a, data.draw(st.sampled_from(INPUT_ZONES)))
        if wanted > available:
            if any(week.values()):  # the target lies beyond the window
                assert cal.add(start, wanted * MINUTE) > to_datetime(first + count, UTC)
            continue
        # Earliest k >= a with wanted working minutes in [a, k).
        k = a
        while prefix[k] - prefix[a] < wanted:
            k += 1
        assert cal.add(start, wanted * MINUTE) == to_datetime(first + k, UTC)


@REFERENCE_SETTINGS
@given(scenarios())
def test_is_open_matches_the_minute_walk_at_every_change(scenario):
    zone_name, week, holidays, first, count = scenario
    cal = build(zone_name, week, holidays)
    open_minutes = reference_open_minutes(zone_name, week, holidays, first, count)
    changes = {0, count - 1} | {
        i for i in range(1, count) if open_minutes[i] != open_minutes[i - 1]
    }
    for i in sorted(changes | {max(0, i - 1) for i in changes}):
        assert cal.is_open(to_datetime(first + i, UTC)) == open_minutes[i], i


def reference_hours(zone_name: str, week: Week, day: date) -> float:
    zone = ZoneInfo(zone_name)
    first = (datetime(day.year, day.month, day.day, tzinfo=zone) - EPOCH) // MINUTE
    return sum(reference_open_minutes(zone_name, week, frozenset(), first, 3 * 1440)) / 60


def test_the_reference_itself_counts_real_time_on_dst_days():
    office = {6: [(9 * 60, 17 * 60)]}
    whole = {6: [(0, DAY_MINUTES)]}
    assert reference_hours("Europe/Berlin", office, date(2026, 3, 29)) == 8
    assert reference_hours("Europe/Berlin", whole, date(2026, 3, 29)) == 23
    assert reference_hours("Europe/Berlin", whole, date(2026, 10, 25)) == 25
    # 02:30 on the fall-back day: the wall clock reaches it once (CEST), then the
    # interval runs on through the repeated hour until 04:00 CET.
    assert reference_hours("Europe/Berlin", {6: [(150, 240)]}, date(2026, 10, 25)) == 2.5
    # 02:30 on the spring-forward day does not exist: the interval starts at 03:00 CEST.
    assert reference_hours("Europe/Berlin", {6: [(150, 300)]}, date(2026, 3, 29)) == 2
