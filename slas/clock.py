"""Business-time arithmetic for SLA clocks (pure Python, no Django).

A :class:`BusinessCalendar` describes when a team works: an IANA time zone, a weekly
schedule of wall-clock intervals per weekday (0 = Monday … 6 = Sunday) and a set of
local holiday dates (closed all day).  It answers two questions exactly, to the
microsecond and without floats:

* ``elapsed(start, end)`` – how much working time lies in ``[start, end)``;
* ``add(start, duration)`` – the earliest instant ``t >= start`` such that
  ``elapsed(start, t) == duration``.

Design
------
Everything is computed on integer microseconds since the Unix epoch (UTC).  For every
local date the calendar's wall-clock intervals are converted once into UTC instants and
cached, so the cost of a call grows with the number of *days* it spans, never with the
number of minutes: a one-year ``add`` on a 9–17 weekday calendar walks ~365 cached days.
The per-date cache is shared by all calendars with the same zone and weekly schedule
(holidays are applied on top of it), so constructing a calendar is cheap and a freshly
built calendar for a known schedule is warm immediately.

Conventions
-----------
* **Wall-clock schedule.**  Intervals are wall-clock times in the calendar's zone, so a
  09:00–17:00 day is 8 hours on a DST day too (the transitions happen at night).
* **Mapping a wall-clock bound to an instant.**  A bound ``w`` on local date ``d`` maps to
  *the earliest instant whose local wall-clock reading is at or after* ``(d, w)``:

  - an ordinary time maps to its unique instant;
  - an ambiguous time (repeated hour when clocks go back) maps to its first occurrence
    (``fold=0``);
  - a non-existent time (skipped hour when clocks go forward) maps to the transition
    instant itself, i.e. the first instant after the gap.  ``02:30`` on 2026-03-29 in
    Europe/Berlin becomes ``03:00 CEST`` (01:00 UTC).

* **Real time inside an interval.**  An interval counts the real (physical) time between
  its two converted instants.  An interval that straddles a transition is therefore one
  hour shorter or longer than its wall-clock length: ``00:00–24:00`` is 23 h on the
  spring-forward day and 25 h on the fall-back day.
* **Midnight as an end.**  An interval end of ``time(0)`` means 24:00, the end of that
  day; a whole day is ``(time(0), time(0))``.  Any other interval needs ``start < end``.
  Overlapping intervals on one day raise :class:`ValueError`; intervals that merely
  touch (``09:00–12:00`` and ``12:00–17:00``) are merged.
* **Results** of :meth:`BusinessCalendar.add` and :meth:`BusinessCalendar.intervals_between`
  are aware datetimes in **UTC**.  All inputs must be aware; a naive one raises
  :class:`ValueError`.
* **No working time.**  ``add`` with a positive duration raises :class:`ValueError` if the
  calendar has no working interval at all, or if it meets more than 20 years of
  consecutive days without working time (e.g. everything a holiday).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["BusinessCalendar"]

_US_PER_DAY = 86_400_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_ONE_US = timedelta(microseconds=1)
_MIN_ORDINAL = date.min.toordinal()
_MAX_ORDINAL = date.max.toordinal()
#: ``add`` gives up after this many consecutive local days without working time.
MAX_CLOSED_DAYS = 20 * 366
#: Entries kept per shared day cache before it is emptied (bounds memory).
_DAY_CACHE_LIMIT = 200_000

# One day of a calendar: (flattened UTC bounds (s0, e0, s1, e1, ...), total working µs).
_Day = tuple[tuple[int, ...], int]
_EMPTY_DAY: _Day = ((), 0)

WeekSpec = Mapping[int, Iterable[tuple[time, time]]]


def _time_us(value: time) -> int:
    return ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000 + value.microsecond


def _td_us(value: timedelta) -> int:
    return (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds


def _to_us(value: datetime, name: str) -> int:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(value).__name__}")
    offset = value.utcoffset()
    if offset is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value!r}")
    naive = value.replace(tzinfo=None)
    return (
        (naive.toordinal() - _EPOCH_ORDINAL) * _US_PER_DAY + _time_us(naive.time()) - _td_us(offset)
    )


def _from_us(value: int) -> datetime:
    try:
        return _EPOCH + timedelta(microseconds=value)
    except OverflowError as exc:
        raise ValueError("result is outside the supported datetime range") from exc


def _normalise_week(week: WeekSpec) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Validate ``week`` and return, per weekday, sorted merged ``(start_us, end_us)``."""
    if not isinstance(week, Mapping):
        raise TypeError("week must be a mapping of weekday (0-6) to intervals")
    days: list[tuple[tuple[int, int], ...]] = [()] * 7
    for weekday, intervals in week.items():
        if isinstance(weekday, bool) or not isinstance(weekday, int) or not 0 <= weekday <= 6:
            raise ValueError(f"weekday keys must be integers 0 (Monday) to 6, got {weekday!r}")
        spans: list[tuple[int, int]] = []
        for interval in intervals:
            try:
                start, end = interval
            except (TypeError, ValueError) as exc:
                raise ValueError(f"interval must be a (start, end) pair, got {interval!r}") from exc
            for bound in (start, end):
                if not isinstance(bound, time):
                    raise TypeError(f"interval bounds must be datetime.time, got {bound!r}")
                if bound.tzinfo is not None:
                    raise ValueError(f"interval bounds must be naive wall-clock times: {bound!r}")
            start_us = _time_us(start)
            end_us = _time_us(end) or _US_PER_DAY  # time(0) as an end means 24:00
            if end_us <= start_us:
                raise ValueError(f"interval end must be after its start: {start}-{end}")
            spans.append((start_us, end_us))
        spans.sort()
        merged: list[tuple[int, int]] = []
        for start_us, end_us in spans:
            if merged and start_us < merged[-1][1]:
                raise ValueError(f"overlapping intervals on weekday {weekday}")
            if merged and start_us == merged[-1][1]:
                merged[-1] = (merged[-1][0], end_us)
            else:
                merged.append((start_us, end_us))
        days[weekday] = tuple(merged)
    return tuple(days)


@functools.lru_cache(maxsize=256)
def _shared_day_cache(
    zone_key: str, week: tuple[tuple[tuple[int, int], ...], ...]
) -> dict[int, _Day]:
    """The per-ordinal day cache shared by every calendar with this zone and schedule."""
    return {}


class _AlwaysOpenDescriptor:
    """``BusinessCalendar.always_open()`` builds a 24x7 calendar; ``cal.always_open`` is a bool."""

    def __get__(
        self, instance: BusinessCalendar | None, owner: type[BusinessCalendar]
    ) -> Callable[..., BusinessCalendar] | bool:
        if instance is None:
            return functools.partial(owner._make_always_open, owner)
        return instance._always_open


class BusinessCalendar:
    """Working hours in one time zone; see the module docstring for the conventions.

    ``BusinessCalendar.always_open(timezone="UTC")`` returns a 24x7 calendar, while on an
    instance ``cal.always_open`` is a bool telling whether the calendar is open all the
    time (every weekday 00:00–24:00 and no holidays); such calendars use plain
    ``end - start`` / ``start + duration`` arithmetic.
    """

    __slots__ = ("_zone", "_week", "_holidays", "_cache", "_always_open", "_has_intervals")

    always_open = _AlwaysOpenDescriptor()

    def __init__(
        self,
        timezone: str,
        week: WeekSpec,
        holidays: Iterable[date] = (),
    ) -> None:
        if not isinstance(timezone, str):
            raise TypeError("timezone must be an IANA zone name (str)")
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: 'Europe' is a dir
            raise ValueError(f"unknown time zone {timezone!r}") from exc
        normalised = _normalise_week(week)
        holiday_ordinals: set[int] = set()
        for holiday in holidays:
            if isinstance(holiday, datetime) or not isinstance(holiday, date):
                raise TypeError(f"holidays must be datetime.date values, got {holiday!r}")
            holiday_ordinals.add(holiday.toordinal())
        self._zone = zone
        self._week = normalised
        self._holidays = frozenset(holiday_ordinals)
        self._cache: dict[int, _Day] = _shared_day_cache(timezone, normalised)
        self._has_intervals = any(normalised)
        self._always_open = not self._holidays and all(
            day == ((0, _US_PER_DAY),) for day in normalised
        )

    @staticmethod
    def _make_always_open(cls: type[BusinessCalendar], timezone: str = "UTC") -> BusinessCalendar:
        full_day = [(time(0), time(0))]
        return cls(timezone, {weekday: full_day for weekday in range(7)})

    # ------------------------------------------------------------------ introspection

    @property
    def timezone(self) -> str:
        """The IANA name of the calendar's zone."""
        return str(self._zone.key)

    @property
    def holidays(self) -> frozenset[date]:
        return frozenset(date.fromordinal(ordinal) for ordinal in self._holidays)

    @property
    def week(self) -> dict[int, tuple[tuple[time, time], ...]]:
        """The normalised weekly schedule (sorted, touching intervals merged; 24:00 as time(0))."""

        def as_time(us: int) -> time:
            if us == _US_PER_DAY:
                return time(0)
            seconds, micro = divmod(us, 1_000_000)
            return time(seconds // 3600, seconds // 60 % 60, seconds % 60, micro)

        return {
            weekday: tuple((as_time(s), as_time(e)) for s, e in spans)
            for weekday, spans in enumerate(self._week)
            if spans
        }

    def typical_working_day(self) -> timedelta:
        """The longest nominal (wall-clock) daily total across weekdays.

        Used to read "N business days" as N x this amount; zero for a closed calendar.
        """
        longest = max(sum(e - s for s, e in spans) for spans in self._week)
        return timedelta(microseconds=longest)

    def __repr__(self) -> str:
        return (
            f"BusinessCalendar(timezone={self.timezone!r}, week={self.week!r}, "
            f"holidays={sorted(self.holidays)!r})"
        )

    # ------------------------------------------------------------------ internals

    def _local_ordinal(self, us: int) -> int:
        return _from_us(us).astimezone(self._zone).toordinal()

    def _offset_at(self, us: int) -> int:
        return _td_us(_from_us(us).astimezone(self._zone).utcoffset())

    def _instant(self, ordinal: int, wall_us: int) -> int:
        """Earliest UTC µs whose wall clock reads at or after ``wall_us`` on local ``ordinal``."""
        if wall_us == _US_PER_DAY:
            ordinal, wall_us = ordinal + 1, 0
        day = date.fromordinal(ordinal)
        seconds, micro = divmod(wall_us, 1_000_000)
        hour, minute, second = seconds // 3600, seconds // 60 % 60, seconds % 60
        zone = self._zone
        y, m, d = day.year, day.month, day.day
        before = datetime(y, m, d, hour, minute, second, micro, zone).utcoffset()
        after = datetime(y, m, d, hour, minute, second, micro, zone, fold=1).utcoffset()
        base = (ordinal - _EPOCH_ORDINAL) * _US_PER_DAY + wall_us
        if before >= after:  # ordinary time, or ambiguous -> first occurrence (fold=0)
            return base - before // _ONE_US
        # Non-existent time (gap): find the transition, the first instant whose wall
        # clock reads >= the bound.  `low` still shows an earlier wall time, `high` a later.
        low, high = base - after // _ONE_US, base - before // _ONE_US
        while high - low > 1:
            middle = (low + high) // 2
            if middle + self._offset_at(middle) >= base:
                high = middle
            else:
                low = middle
        return high

    def _day(self, ordinal: int) -> _Day:
        """UTC working intervals of one local date (holidays applied)."""
        if ordinal in self._holidays:
            return _EMPTY_DAY
        cached = self._cache.get(ordinal)
        if cached is not None:
            return cached
        spans = self._week[(ordinal - 1) % 7]  # ordinal 1 (0001-01-01) is a Monday
        bounds: list[int] = []
        total = 0
        instant = self._instant
        for start_wall, end_wall in spans:
            start = instant(ordinal, start_wall)
            end = instant(ordinal, end_wall)
            if end > start:  # both bounds inside one DST gap -> empty
                bounds += (start, end)
                total += end - start
        result: _Day = (tuple(bounds), total)
        if len(self._cache) >= _DAY_CACHE_LIMIT:
            self._cache.clear()
        self._cache[ordinal] = result
        return result

    def _ordinal_range(self, start_us: int, end_us: int) -> range:
        # Intervals of local date d lie between d 00:00 and d+1 00:00 local; two days of
        # margin on each side make this safe against folds that cross midnight.
        first = max(_MIN_ORDINAL, self._local_ordinal(start_us) - 2)
        last = min(_MAX_ORDINAL - 1, self._local_ordinal(end_us) + 2)
        return range(first, last + 1)

    def _spans(self, start_us: int, end_us: int) -> Iterator[tuple[int, int]]:
        """Working intervals clipped to ``[start_us, end_us)``, merged when contiguous."""
        if self._always_open:
            yield start_us, end_us
            return
        pending: tuple[int, int] | None = None
        for ordinal in self._ordinal_range(start_us, end_us):
            bounds = self._day(ordinal)[0]
            for i in range(0, len(bounds), 2):
                start, end = max(bounds[i], start_us), min(bounds[i + 1], end_us)
                if end <= start:
                    continue
                if pending is not None and pending[1] == start:
                    pending = (pending[0], end)
                    continue
                if pending is not None:
                    yield pending
                pending = (start, end)
        if pending is not None:
            yield pending

    # ------------------------------------------------------------------ public API

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Business time in ``[start, end)``; zero when ``end <= start``."""
        start_us, end_us = _to_us(start, "start"), _to_us(end, "end")
        if end_us <= start_us:
            return timedelta(0)
        if self._always_open:
            return timedelta(microseconds=end_us - start_us)
        total = 0
        day = self._day
        for ordinal in self._ordinal_range(start_us, end_us):
            bounds, day_total = day(ordinal)
            if not bounds:
                continue
            if bounds[0] >= start_us and bounds[-1] <= end_us:
                total += day_total
                continue
            for i in range(0, len(bounds), 2):
                span = min(bounds[i + 1], end_us) - max(bounds[i], start_us)
                if span > 0:
                    total += span
        return timedelta(microseconds=total)

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The earliest instant ``t >= start`` with ``elapsed(start, t) == duration`` (UTC).

        Raises ValueError for a negative duration, or when the calendar offers no
        working time (none at all, or none for more than 20 years in a row).
        """
        start_us = _to_us(start, "start")
        if not isinstance(duration, timedelta):
            raise TypeError(f"duration must be a timedelta, not {type(duration).__name__}")
        remaining = _td_us(duration)
        if remaining < 0:
            raise ValueError(f"duration must not be negative, got {duration!r}")
        if remaining == 0:
            return _from_us(start_us)
        if self._always_open:
            return _from_us(start_us + remaining)
        if not self._has_intervals:
            raise ValueError("the calendar has no working hours; the target is never reached")
        ordinal = max(_MIN_ORDINAL, self._local_ordinal(start_us) - 2)
        closed_days = 0
        day = self._day
        while True:
            if ordinal >= _MAX_ORDINAL:
                raise ValueError("target lies beyond the supported date range")
            bounds = day(ordinal)[0]
            progressed = False
            for i in range(0, len(bounds), 2):
                end = bounds[i + 1]
                if end <= start_us:
                    continue
                begin = bounds[i] if bounds[i] > start_us else start_us
                available = end - begin
                if available >= remaining:
                    return _from_us(begin + remaining)
                remaining -= available
                progressed = True
            if progressed:
                closed_days = 0
            else:
                closed_days += 1
                if closed_days > MAX_CLOSED_DAYS:
                    raise ValueError(
                        f"no working time for {MAX_CLOSED_DAYS} consecutive days; giving up"
                    )
            ordinal += 1

    def is_open(self, at: datetime) -> bool:
        """Whether ``at`` lies inside a working interval (start inclusive, end exclusive)."""
        at_us = _to_us(at, "at")
        if self._always_open:
            return True
        return any(True for _ in self._spans(at_us, at_us + 1))

    def intervals_between(
        self, start: datetime, end: datetime
    ) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals within ``[start, end)`` as ``(utc_start, utc_end)`` pairs.

        Intervals are clipped to ``[start, end)`` and contiguous ones are merged (e.g. the
        midnight boundary of two 00:00–24:00 days), so their lengths sum to ``elapsed``.
        """
        start_us, end_us = _to_us(start, "start"), _to_us(end, "end")
        if end_us <= start_us:
            return iter(())
        return ((_from_us(s), _from_us(e)) for s, e in self._spans(start_us, end_us))
