"""Reads of the SLA engine shared by views, API and tasks."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_CEILING, Decimal

import holidays as holidays_lib
from django.utils import timezone

from slas import rules
from slas.clock import BusinessCalendar
from slas.models import (
    Calendar,
    LadderLevel,
    Metric,
    ServiceStandard,
    SlaClock,
    StandardTarget,
    StandardVersion,
)

# Holiday presets are expanded for this many years around today; the importer's 2016 history
# and multi-year targets both fit.
_PRESET_YEARS_BACK = 12
_PRESET_YEARS_AHEAD = 6

_cache_lock = threading.Lock()
_calendar_cache: dict[tuple[int, datetime], BusinessCalendar] = {}


def preset_holidays(*, country: str, subdivision: str = "", years: range) -> dict[date, str]:
    """Return the dates (and names) the `holidays` package yields for a country preset."""
    if not country:
        return {}
    return dict(
        holidays_lib.country_holidays(country, subdiv=subdivision or None, years=list(years))
    )


def calendar_week(calendar: Calendar) -> dict[int, list[tuple[time, time]]]:
    week: dict[int, list[tuple[time, time]]] = {}
    for interval in calendar.intervals.all():
        week.setdefault(interval.weekday, []).append((interval.start, interval.end))
    return week


def calendar_holiday_dates(calendar: Calendar) -> set[date]:
    dates = {holiday.date for holiday in calendar.holidays.all()}
    if calendar.holiday_country:
        this_year = timezone.now().year
        years = range(this_year - _PRESET_YEARS_BACK, this_year + _PRESET_YEARS_AHEAD + 1)
        dates |= set(
            preset_holidays(
                country=calendar.holiday_country,
                subdivision=calendar.holiday_subdivision,
                years=years,
            )
        )
    return dates


def business_calendar_from(calendar: Calendar) -> BusinessCalendar:
    """Build the pure calendar for a model row (no caching)."""
    if calendar.always_open:
        return BusinessCalendar.always_open()
    return BusinessCalendar(
        timezone=calendar.timezone,
        week=calendar_week(calendar),
        holidays=calendar_holiday_dates(calendar),
    )


def business_calendar(calendar_id: int) -> BusinessCalendar:
    """Return the pure calendar for `calendar_id`, cached per process until the row changes.

    Every edit of a calendar goes through a service that bumps `updated_at`, so the cache key
    changes with the content; one cheap query checks freshness.
    """
    updated_at = Calendar.objects.filter(pk=calendar_id).values_list("updated_at", flat=True).get()
    key = (calendar_id, updated_at)
    cached = _calendar_cache.get(key)
    if cached is not None:
        return cached
    calendar = Calendar.objects.prefetch_related("intervals", "holidays").get(pk=calendar_id)
    built = business_calendar_from(calendar)
    with _cache_lock:
        for stale in [k for k in _calendar_cache if k[0] == calendar_id]:
            del _calendar_cache[stale]
        _calendar_cache[key] = built
    return built


def business_calendar_of(calendar: Calendar) -> BusinessCalendar:
    """`business_calendar` for a Calendar row the caller has just read (e.g. through
    select_related): its `updated_at` is the freshness check, so a cached calendar costs no
    query (the escalation workers fire many tickets per second against few calendars)."""
    return business_calendar_at(calendar.pk, calendar.updated_at)


def business_calendar_at(calendar_id: int, updated_at: datetime) -> BusinessCalendar:
    """`business_calendar_of` for a calendar's id and `updated_at` read by the caller (e.g.
    joined to a page of clocks in values())."""
    cached = _calendar_cache.get((calendar_id, updated_at))
    return cached if cached is not None else business_calendar(calendar_id)


def threshold_duration(*, target: timedelta, threshold: Decimal) -> timedelta:
    """threshold × target, rounded up to the microsecond so 'elapsed ≥ it' is never early."""
    target_us = (target.days * 86_400 + target.seconds) * 1_000_000 + target.microseconds
    micro = (Decimal(target_us) * Decimal(threshold)).to_integral_value(rounding=ROUND_CEILING)
    return timedelta(microseconds=int(micro))


def clock_elapsed(*, clock: SlaClock, calendar: BusinessCalendar, now: datetime) -> timedelta:
    """Business time counted by `clock` up to `now`."""
    return rules.live_elapsed(clock, calendar, now)


def clock_state(*, clock: SlaClock, now: datetime) -> str:
    """One of running, paused, met, breached, cancelled (SPEC §3)."""
    return rules.clock_state(clock, now)


# Read a Service with these and filing a request to it reads no further configuration row
# (`version_for_service`, `version_calendar`): its standard's current version and calendar.
SERVICE_FILING_RELATED = (
    "department__default_standard__current_version__calendar",
    "standard__current_version__calendar",
)


def version_for_service(service) -> StandardVersion | None:
    """The standard version a request to `service` filed now is measured against.

    Free when `service` was read with SERVICE_FILING_RELATED, one query otherwise.
    """
    from departments.models import Department, Service

    if service.standard_id is not None:
        standard_id = service.standard_id
        standard = service.standard if Service.standard.is_cached(service) else None
    else:
        department = service.department
        standard_id = department.default_standard_id
        if standard_id is None:
            return None
        standard = (
            department.default_standard
            if Department.default_standard.is_cached(department)
            else None
        )
    if standard is None or not ServiceStandard.current_version.is_cached(standard):
        standard = ServiceStandard.objects.select_related("current_version").get(pk=standard_id)
    return standard.current_version


def version_calendar(version: StandardVersion) -> BusinessCalendar:
    """The pure calendar of `version`; no query when its Calendar row came with it."""
    if StandardVersion.calendar.is_cached(version):
        return business_calendar_of(version.calendar)
    return business_calendar(version.calendar_id)


@dataclass(frozen=True)
class VersionContent:
    """What a standard version promises: targets per priority and its escalation ladder."""

    targets: dict[str, StandardTarget]
    levels: tuple[LadderLevel, ...]


_content_cache: dict[int, VersionContent] = {}


def version_content(version_id: int) -> VersionContent:
    """Targets and ladder of a standard version, cached per process.

    A published version never changes (`standard_publish` writes a new one; the admin shows a
    published version's targets and ladder read-only), so the version id is a complete key
    and nothing needs invalidating; `reports.facts.warning_threshold` relies on the same.
    """
    cached = _content_cache.get(version_id)
    if cached is not None:
        return cached
    content = VersionContent(
        targets={t.priority: t for t in StandardTarget.objects.filter(version_id=version_id)},
        levels=tuple(
            LadderLevel.objects.filter(version_id=version_id).order_by("metric", "threshold")
        ),
    )
    with _cache_lock:
        _content_cache[version_id] = content
    return content


def ladder_levels(version_id: int) -> list[LadderLevel]:
    return list(LadderLevel.objects.filter(version_id=version_id).order_by("metric", "threshold"))


def metric_label(metric: str) -> str:
    return str(Metric(metric).label)


def ticket_clock_rows(*, ticket, now: datetime) -> list[dict]:
    """Per metric: target, elapsed, deadline and state, ready to show or serialise."""
    rows = []
    for clock in ticket.clocks.all():
        calendar = business_calendar(clock.version.calendar_id)
        rows.append(
            {
                "metric": clock.metric,
                "label": metric_label(clock.metric),
                "target": clock.target,
                "elapsed": clock_elapsed(clock=clock, calendar=calendar, now=now),
                "deadline": clock.deadline,
                "state": clock_state(clock=clock, now=now),
                "breached_at": clock.breached_at
                or (
                    clock.deadline
                    if clock.status == SlaClock.Status.RUNNING
                    and clock.deadline
                    and clock.deadline < now
                    else None
                ),
            }
        )
    return rows
