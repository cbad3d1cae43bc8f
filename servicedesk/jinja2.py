"""The Jinja2 environment for hot partials: the ticket tables of the queue, my requests and
home (25 rows of badges, links and countdowns) and the body of the ticket page. Jinja2
compiles templates to Python code and renders such a table in about half the CPU time of
Django's template language (issue 10, bench/RESULTS.md).

Pages stay Django templates and pull a partial in with `{% jinja "name" %}`
(tickets/templatetags/servicedesk.py). The helpers here are the functions the Django templates
use, so both engines print the same HTML, and the strings are the same gettext messages.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from django.conf import settings
from django.template.defaultfilters import capfirst, filesizeformat
from django.templatetags.static import static
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import translation
from django.utils.formats import date_format
from django.utils.html import avoid_wrapping, conditional_escape
from django.utils.timezone import get_current_timezone, localtime
from jinja2 import Environment, pass_context
from markupsafe import Markup


def _date(value, fmt: str = "DATETIME_FORMAT") -> str:
    """Django's `date` filter: local time, Django's format characters."""
    if value is None:
        return ""
    if fmt == "c":
        return localtime(value).isoformat()
    return date_format(localtime(value), fmt)


def _django_escape(value) -> str:
    """Text escaped as Django templates escape it (&quot; and &#x27;, where Jinja2 writes
    &#34; and &#39;), so a page rendered by a Jinja2 partial is byte for byte the page the
    Django template printed; safe strings (widgets, badges, Markdown) pass unchanged."""
    return conditional_escape(value)


def _url(name: str, *args) -> str:
    return _reverse(name, args, get_script_prefix(), get_urlconf() or settings.ROOT_URLCONF)


@lru_cache(maxsize=4096)
def _reverse(name: str, args: tuple, script_prefix: str, urlconf) -> str:
    # reverse() is a pure function of these, and ~40 µs: a queue page links 25 tickets, the
    # same ones on every reload.
    return reverse(name, args=args or None, urlconf=urlconf)


# The language and time zone the {% jinja %} tag found active when the render began
# (tickets/templatetags/servicedesk.py): one lookup per render instead of one or two per
# string, badge and countdown (asgiref Local reads: ~4 % of a queue page).
LANGUAGE_KEY = "_active_language"
ZONE_KEY = "_active_time_zone"


@lru_cache(maxsize=4096)
def _translated(language: str | None, message: str) -> str:
    # A template's messages are a fixed set of literals: a bounded memo per language.
    with translation.override(language):
        return translation.gettext(message)


@lru_cache(maxsize=4096)
def _translated_plural(language: str | None, singular: str, plural: str, number: int) -> str:
    with translation.override(language):
        return translation.ngettext(singular, plural, number)


def _language(context) -> str | None:
    language = context.get(LANGUAGE_KEY)
    return language if language is not None else translation.get_language()


@pass_context
def _gettext(context, message: str) -> str:
    return _translated(_language(context), message)


@pass_context
def _ngettext(context, singular: str, plural: str, number: int) -> str:
    return _translated_plural(_language(context), singular, plural, number)


@lru_cache(maxsize=4096)
def _formatted(language: str | None, message: str, autoescape: bool) -> str:
    # What jinja2.ext's newstyle gettext returns for a message without variables: it still
    # formats (so "%%" prints "%"), and a page asks for the same few dozen messages again
    # and again.
    translated = _translated(language, message)
    return (Markup(translated) if autoescape else translated) % {}


@pass_context
def _newstyle_gettext(context, message: str, /, **variables) -> str:
    """jinja2.ext's newstyle `gettext` and `_` (the i18n extension's alias of it): the same
    result, memoised for messages without variables (~90 lookups per queue page)."""
    autoescape = context.eval_ctx.autoescape
    if not variables:
        return _formatted(_language(context), message, autoescape)
    translated = _translated(_language(context), message)
    return (Markup(translated) if autoescape else translated) % variables


# django.utils.timesince.TIME_STRINGS: Django's messages, translated by Django's catalogue.
_TIME_UNITS = {
    "year": ("%(num)d year", "%(num)d years"),
    "month": ("%(num)d month", "%(num)d months"),
    "week": ("%(num)d week", "%(num)d weeks"),
    "day": ("%(num)d day", "%(num)d days"),
    "hour": ("%(num)d hour", "%(num)d hours"),
    "minute": ("%(num)d minute", "%(num)d minutes"),
}


def _unit(language: str | None, key: str, number: int) -> str:
    """ "3 days": one of Django's timesince units, from the plural memo."""
    return avoid_wrapping(_translated_plural(language, *_TIME_UNITS[key], number) % {"num": number})


_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# django.utils.timesince's units below months, in seconds.
_TIME_CHUNKS = (604_800, 86_400, 3_600, 60)
_UNIT_KEYS = tuple(_TIME_UNITS)


@pass_context
def _timesince(context, value: datetime, now: datetime | None = None) -> str:
    """Django's `timesince` (a queue page prints 25) for aware datetimes: the same
    algorithm and words (tests/test_jinja2_env.py compares them), its messages and the ", "
    between units from the per-language memo instead of a translation lookup each."""
    language = _language(context)
    now = now.astimezone(value.tzinfo) if now else datetime.now(value.tzinfo)
    delta = now - value
    if delta.days * 86_400 + delta.seconds <= 0:
        return _unit(language, "minute", 0)
    total_months = (now.year - value.year) * 12 + (now.month - value.month)
    if value.day > now.day or (value.day == now.day and value.time() > now.time()):
        total_months -= 1
    years, months = divmod(total_months, 12)
    pivot = value
    if years or months:
        year, month = value.year + years, value.month + months
        if month > 12:
            month -= 12
            year += 1
        pivot = datetime(
            year,
            month,
            min(_MONTH_DAYS[month - 1], value.day),
            value.hour,
            value.minute,
            value.second,
            tzinfo=value.tzinfo,
        )
    remaining = (now - pivot).total_seconds()
    partials = [years, months]
    for chunk in _TIME_CHUNKS:
        count = int(remaining // chunk)
        partials.append(count)
        remaining -= chunk * count
    first = next((i for i, count in enumerate(partials) if count), None)
    if first is None:
        return _unit(language, "minute", 0)
    parts = []
    for i in range(first, min(first + 2, len(partials))):
        if not partials[i]:
            break
        parts.append(_unit(language, _UNIT_KEYS[i], partials[i]))
    return _translated(language, ", ").join(parts)


def _zone(context):
    zone = context.get(ZONE_KEY)
    return zone if zone is not None else get_current_timezone()


def _in_render_language(per_language_function):
    """A tickets.templatetags `@per_language` function in the render's language."""
    in_language = per_language_function.in_language

    @pass_context
    def call(context, *args, **kwargs):
        return in_language(_language(context), *args, **kwargs)

    return call


def environment(**options) -> Environment:
    from tickets.templatetags import servicedesk as tags

    options.setdefault("extensions", []).append("jinja2.ext.i18n")
    env = Environment(**options)
    # Django's active language, as the {% trans %} tags use it.
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)
    env.globals.update(gettext=_newstyle_gettext, _=_newstyle_gettext)
    env.globals.update(
        url=_url,
        static=static,
        countdown=pass_context(
            lambda context, deadline, now=None, label="": tags.countdown_in(
                _language(context), _zone(context), deadline, now, label
            )
        ),
        sla_badge=_in_render_language(tags.sla_badge),
        status_badge=_in_render_language(tags.status_badge),
        priority_badge=_in_render_language(tags.priority_badge),
        event_sentence=tags.event_sentence,
        attachment_url=tags.attachment_url,
        notification_bell=tags.notification_bell,
    )
    env.filters.update(
        date=_date,
        timesince=_timesince,
        markdown=tags.markdown,
        duration=tags.duration,
        business_duration=tags.business_duration,
        filesizeformat=filesizeformat,
        capfirst=capfirst,
        dj=_django_escape,
        has_preview=tags.has_preview,
    )
    return env
