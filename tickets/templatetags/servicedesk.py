from datetime import timedelta

from django import template
from django.utils import timezone

from slas.selectors import clock_state
from tickets.markdown import render_markdown

register = template.Library()


@register.filter
def markdown(text):
    return render_markdown(text)


@register.filter
def duration(value):
    """4h 30m style for a timedelta."""
    if value is None:
        return "–"
    if not isinstance(value, timedelta):
        return value
    total = int(value.total_seconds())
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = []
    if days:
        parts.append(f"{days}d")
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    if seconds and not days:
        parts.append(f"{seconds}s")
    return sign + (" ".join(parts) or "0m")


@register.filter
def sla_state(clock):
    return clock_state(clock=clock, now=timezone.now())
