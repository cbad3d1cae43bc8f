"""Template helpers of the dashboards: drill-down links and figure formatting."""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache
from urllib.parse import urlencode

from django import template
from django.urls import reverse
from django.utils.translation import gettext as _

register = template.Library()


def drill_links(base: dict | None = None):
    """A function (**filters) → URL of the ticket list behind a figure, for `base` filters.

    The same URLs as `{% drill %}`, built in Python for the many links of a table (a template
    tag call per cell cost more than the rest of the page)."""
    url = reverse("reports:tickets")
    base = base or {}

    def encode(params: dict) -> str:
        return "&".join(
            _pair(key, value) for key, value in params.items() if value is not None and value != ""
        )

    # The base's part of the query string is encoded once; the filters are appended (the
    # same string urlencode gives for the merged dict, unless a filter replaces a base key).
    prefix = encode(base)

    def link(**filters) -> str:
        if base.keys() & filters.keys():
            query = encode({**base, **filters})
        else:
            query = "&".join(part for part in (prefix, encode(filters)) if part)
        return f"{url}?{query}" if query else url

    return link


@lru_cache(maxsize=4096)
def _pair(key: str, value) -> str:
    """One `key=value` of a query string, as urlencode writes it (few distinct pairs recur:
    states, slugs, ids, the period's days)."""
    return urlencode({key: value.isoformat() if isinstance(value, date) else value})


@register.simple_tag
def drill(base: dict | None = None, **filters) -> str:
    """URL of the ticket list behind a figure: `base` filters of the page plus `filters`."""
    return drill_links(base)(**filters)


@register.filter
def pct(value) -> str:
    """0.8123 → "81.2 %"; None → "–"."""
    if value is None:
        return "–"
    return f"{value * 100:.1f} %"


@register.filter
def business_time(value: timedelta | None) -> str:
    """A business duration as hours and minutes: "3 h 20 min"; None → "–"."""
    if value is None:
        return "–"
    minutes = round(value.total_seconds() / 60)
    hours, minutes = divmod(minutes, 60)
    if hours and minutes:
        return _("%(h)d h %(m)d min") % {"h": hours, "m": minutes}
    if hours:
        return _("%(h)d h") % {"h": hours}
    return _("%(m)d min") % {"m": minutes}


@register.filter
def rating(value) -> str:
    if value is None:
        return "–"
    return f"{value:.2f}"


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None
