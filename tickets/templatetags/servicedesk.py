"""Template helpers of the browser UI: Markdown, durations, SLA badges and countdowns, and the
audit history told as sentences."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache, wraps

from django import template
from django.template import engines
from django.urls import NoReverseMatch, reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeData, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from departments.models import Priority
from servicedesk.jinja2 import LANGUAGE_KEY, ZONE_KEY
from slas.selectors import clock_state
from tickets.markdown import render_markdown
from tickets.models import Event, Status
from tickets.notifications import unread_count

register = template.Library()

_BELL_ICON = mark_safe(  # noqa: S308 - a constant
    '<svg aria-hidden="true" focusable="false" width="18" height="18" viewBox="0 0 24 24">'
    '<path fill="currentColor" d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22zm7-6V11a7'
    ' 7 0 0 0-5.5-6.84V3a1.5 1.5 0 0 0-3 0v1.16A7 7 0 0 0 5 11v5l-2 2v1h18v-1z"/></svg>'
)


def per_language(build):
    """Cache `build`, whose output depends only on its arguments and the active language
    (badges, the countdown's words): built once per language, not once per table row."""

    @lru_cache(maxsize=512)
    def cached(language, args, kwargs):
        with translation.override(language):
            return build(*args, **dict(kwargs))

    def in_language(language, *args, **kwargs):
        # For a caller that knows the language already (the Jinja2 partials).
        return cached(language, args, tuple(sorted(kwargs.items())))

    @wraps(build)
    def wrapper(*args, **kwargs):
        return in_language(translation.get_language(), *args, **kwargs)

    wrapper.in_language = in_language
    return wrapper


@register.simple_tag(takes_context=True)
def jinja(context, template_name: str, **extra):
    """Render a hot partial with the Jinja2 engine (servicedesk/jinja2.py), given this
    template's context plus `extra`, like `{% include … with … %}`."""
    data = context.flatten()
    data.update(extra)
    data[LANGUAGE_KEY] = translation.get_language()
    data[ZONE_KEY] = timezone.get_current_timezone()
    template = engines["jinja2"].get_template(template_name)
    return mark_safe(template.render(data, request=data.get("request")))  # noqa: S308 - autoescaped by Jinja2


@register.filter
def markdown(text):
    return render_markdown(text)


@register.filter
def duration(value):
    """Compact "4h 30m" for a timedelta (elapsed and targets on the ticket page)."""
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
    if seconds and not days and not hours:
        parts.append(f"{seconds}s")
    return sign + (" ".join(parts) or "0m")


def _span(value: timedelta) -> str:
    """Wall-clock span in words for countdowns: "3 h 20 min", "2 d 4 h", "45 min"."""
    minutes = int(abs(value.total_seconds()) // 60)
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    if days:
        return (
            _("%(d)d d %(h)d h") % {"d": days, "h": hours} if hours else _("%(d)d d") % {"d": days}
        )
    if hours:
        return (
            _("%(h)d h %(m)d min") % {"h": hours, "m": minutes}
            if minutes
            else _("%(h)d h") % {"h": hours}
        )
    return _("%(m)d min") % {"m": max(minutes, 1)} if minutes else _("less than a minute")


@register.filter
def business_duration(value: timedelta, calendar=None) -> str:
    """A published target in words: "4 business hours", "2 business days", "30 minutes"."""
    if value is None:
        return "–"
    always_open = calendar is None or calendar.typical_working_day() >= timedelta(hours=24)
    day = timedelta(hours=24) if always_open else calendar.typical_working_day()
    if day and value >= day and value % day == timedelta(0):
        n = value // day
        return (
            ngettext("%(n)d day", "%(n)d days", n)
            if always_open
            else ngettext("%(n)d business day", "%(n)d business days", n)
        ) % {"n": n}
    minutes = int(value.total_seconds() // 60)
    if minutes % 60 == 0:
        n = minutes // 60
        return (
            ngettext("%(n)d hour", "%(n)d hours", n)
            if always_open
            else ngettext("%(n)d business hour", "%(n)d business hours", n)
        ) % {"n": n}
    return (
        ngettext("%(n)d minute", "%(n)d minutes", minutes)
        if always_open
        else ngettext("%(n)d business minute", "%(n)d business minutes", minutes)
    ) % {"n": minutes}


SLA_LABELS = {
    "breached": (_("Breached"), "✖"),
    "at_risk": (_("At risk"), "▲"),
    "on_track": (_("On track"), "●"),
    "running": (_("On track"), "●"),
    "paused": (_("Paused"), "❚❚"),
    "met": (_("Met"), "✔"),
    "cancelled": (_("Cancelled"), "–"),
}


@register.simple_tag
@per_language
def sla_badge(state: str, label: str = ""):
    """Colour plus words plus a shape: the state is never told by colour alone."""
    text, icon = SLA_LABELS.get(state, (state, "•"))
    if label:
        return format_html(
            '<span class="badge sla sla-{}"><span aria-hidden="true">{}</span> {}: {}</span>',
            state,
            icon,
            label,
            text,
        )
    return format_html(
        '<span class="badge sla sla-{}"><span aria-hidden="true">{}</span> {}</span>',
        state,
        icon,
        text,
    )


@register.simple_tag
def countdown(deadline: datetime | None, now: datetime | None = None, label: str = ""):
    """A server-rendered countdown to `deadline` that static/js/app.js keeps live."""
    return countdown_in(
        translation.get_language(), timezone.get_current_timezone(), deadline, now, label
    )


def countdown_in(language, zone, deadline, now=None, label: str = ""):
    """`countdown` in `language` and time zone `zone` (the active ones when the Jinja2
    partials' render began)."""
    if deadline is None:
        return ""
    now = now or timezone.now()
    seconds = (deadline - now).total_seconds()
    overdue = seconds <= 0
    # A queue shows 25 countdowns per page: the markup around the words is the same on every
    # reload, and the words depend only on the whole minutes left, so both are built once.
    head = _countdown_head(deadline, overdue, label, isinstance(label, SafeData), language, zone)
    words = _countdown_words.in_language(language, overdue, int(abs(seconds) // 60))
    return mark_safe(head + words + "</time></span>")  # noqa: S308 - parts escaped where built


@lru_cache(maxsize=4096)
def _countdown_head(deadline, overdue, label, label_is_safe, language, zone) -> str:
    # `label_is_safe` keeps a safe label and an equal plain one apart; the words and the
    # date format are `language`'s.
    with translation.override(language):
        return format_html(
            '<span class="countdown{}" data-countdown="{}"{}>{}<time datetime="{}" title="{}">',
            " overdue" if overdue else "",
            deadline.isoformat(),
            _countdown_texts.in_language(language),
            format_html("{} ", label) if label else "",
            deadline.isoformat(),
            date_format(timezone.localtime(deadline, zone), "D j M Y, H:i T"),
        )


@per_language
def _countdown_words(overdue: bool, minutes: int) -> str:
    """ "due in 3 h 20 min" or "overdue by 45 min", escaped."""
    span = _span(timedelta(minutes=minutes))
    text = (
        _("overdue by %(span)s") % {"span": span}
        if overdue
        else _("due in %(span)s") % {"span": span}
    )
    return conditional_escape(text)


@per_language
def _countdown_texts() -> str:
    """The words static/js/app.js needs to keep a countdown live."""
    return format_html(
        ' data-due-text="{}" data-overdue-text="{}" data-breached-text="{}" data-units="{}"',
        _("due in %(span)s"),
        _("overdue by %(span)s"),
        SLA_LABELS["breached"][0],
        "|".join([_("d"), _("h"), _("min"), _("less than a minute")]),
    )


@register.simple_tag
@per_language
def status_badge(status: str):
    icon = {
        Status.NEW: "✦",
        Status.OPEN: "○",
        Status.WAITING_ON_CUSTOMER: "…",
        Status.RESOLVED: "✔",
        Status.CLOSED: "■",
        Status.CANCELLED: "✖",
    }.get(status, "•")
    return format_html(
        '<span class="badge status status-{}"><span aria-hidden="true">{}</span> {}</span>',
        status,
        icon,
        Status(status).label if status in Status.values else status,
    )


@register.simple_tag
@per_language
def priority_badge(priority: str):
    label = Priority(priority).label if priority in Priority.values else priority
    return format_html(
        '<span class="badge priority priority-{}" title="{}">{}</span>',
        priority.lower(),
        label,
        priority,
    )


@register.simple_tag
def attachment_url(attachment) -> str:
    """The permission-checked download URL once tickets/attachments.py provides it, else ""."""
    try:
        return reverse("attachment_download", kwargs={"pk": attachment.pk})
    except NoReverseMatch:
        return ""


def _label(value, choices) -> str:
    try:
        return str(choices(value).label)
    except ValueError:
        return str(value)


@register.simple_tag
def event_sentence(event: Event) -> str:
    """What happened, in words ("changed the status from open to resolved")."""
    kind, before, after = event.kind, event.before, event.after
    if kind == Event.Kind.CREATED:
        details = after if isinstance(after, dict) else {}
        if details.get("priority") and details.get("service"):
            return _("filed the request (%(priority)s, %(service)s)") % {
                "priority": details["priority"],
                "service": details["service"],
            }
        return _("filed the request")
    if kind == Event.Kind.STATUS:
        return _("changed the status from %(before)s to %(after)s") % {
            "before": _label(before, Status),
            "after": _label(after, Status),
        }
    if kind == Event.Kind.ASSIGNED:
        if after and before:
            return _("reassigned from %(before)s to %(after)s") % {"before": before, "after": after}
        if after:
            return _("assigned to %(after)s") % {"after": after}
        return _("removed the assignee %(before)s") % {"before": before}
    if kind == Event.Kind.PRIORITY:
        return _("changed the priority from %(before)s to %(after)s") % {
            "before": before,
            "after": after,
        }
    if kind == Event.Kind.SERVICE:
        return _("moved it from %(before)s to %(after)s") % {"before": before, "after": after}
    if kind == Event.Kind.COMMENT:
        return _("replied")
    if kind == Event.Kind.NOTE:
        return _("added an internal note")
    if kind == Event.Kind.WATCHER:
        if after:
            return _("added %(who)s as a watcher") % {"who": after}
        return _("removed %(who)s from the watchers") % {"who": before}
    if kind == Event.Kind.LINK:
        if event.field == "linked_from":
            return _("opened this request on behalf of %(ref)s") % {"ref": after}
        return _("opened the linked request %(ref)s") % {"ref": after}
    if kind == Event.Kind.ATTACHMENT:
        return _("attached %(name)s") % {"name": after}
    if kind == Event.Kind.RATING:
        return _("rated the resolution %(n)s/5") % {"n": after}
    if kind == Event.Kind.ESCALATION:
        detail = after if isinstance(after, str | int | float) else ""
        return (_("escalated: %(detail)s") % {"detail": detail}) if detail else _("escalated")
    label = str(event.get_kind_display())
    if event.field and (before is not None or after is not None):
        return f"{label}: {event.field} {before if before is not None else ''} → {after}"
    return label


@register.filter
def sla_state(clock):
    return clock_state(clock=clock, now=timezone.now())


@register.filter
def has_preview(bound_field) -> bool:
    """Markdown fields get a Preview button (their widget carries data-preview)."""
    return bool(bound_field.field.widget.attrs.get("data-preview"))


def notification_bell(user) -> str:
    """The bell linking to the notifications, with the unread count for screen readers and,
    when there is one, as a badge."""
    unread = unread_count(user=user)
    label = ngettext("Notifications, %(n)s unread", "Notifications, %(n)s unread", unread) % {
        "n": unread
    }
    return format_html(
        '<a class="bell{}" href="{}">{}<span class="visually-hidden">{}</span>{}</a>',
        " has-unread" if unread else "",
        reverse("notifications"),
        _BELL_ICON,
        label,
        format_html('<span class="bell-count" aria-hidden="true">{}</span>', unread)
        if unread
        else "",
    )
