"""Plain-JSON pictures of configuration objects, for the before → after of audit records."""

from __future__ import annotations


def calendar_snapshot(calendar) -> dict | None:
    """Name, time zone, weekly intervals and holidays of a calendar as stored now."""
    if calendar is None or calendar.pk is None:
        return None
    return {
        "name": calendar.name,
        "timezone": calendar.timezone,
        "always_open": calendar.always_open,
        "holiday_country": calendar.holiday_country,
        "holiday_subdivision": calendar.holiday_subdivision,
        "week": [
            f"{interval.weekday} {interval.start:%H:%M}-{interval.end:%H:%M}"
            for interval in calendar.intervals.order_by("weekday", "start")
        ],
        "holidays": [holiday.date.isoformat() for holiday in calendar.holidays.order_by("date")],
    }


def standard_version_snapshot(version) -> dict | None:
    """Number, calendar, targets and ladder of one standard version."""
    if version is None:
        return None
    return {
        "version": version.number,
        "calendar": version.calendar.name if version.calendar_id else None,
        "targets": {
            target.priority: [str(target.first_response), str(target.resolution)]
            for target in version.targets.order_by("priority")
        },
        "ladder": [
            [level.metric, str(level.threshold), list(level.actions)]
            for level in version.levels.order_by("metric", "threshold")
        ],
    }
