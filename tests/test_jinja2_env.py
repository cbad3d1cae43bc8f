"""servicedesk/jinja2.py: `url()` in the Jinja2 partials answers what reverse() answers, also
when the app is served under a script prefix; their messages are in the active language."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
from django.template import engines
from django.urls import reverse, set_script_prefix
from django.utils import translation
from django.utils.timesince import timesince
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import Environment
from markupsafe import escape

from servicedesk.jinja2 import (
    LANGUAGE_KEY,
    ZONE_KEY,
    _gettext,
    _ngettext,
    _translated,
    environment,
)


def _render_url(*args) -> str:
    return engines["jinja2"].from_string("{{ url(*args) }}").render({"args": args})


def test_url_in_a_partial_is_reverse():
    assert _render_url("ticket_detail", "IT-000042") == reverse("ticket_detail", args=["IT-000042"])
    assert _render_url("queue") == reverse("queue")


def test_url_in_a_partial_follows_the_script_prefix():
    before = _render_url("ticket_detail", "IT-000042")
    set_script_prefix("/desk/")
    try:
        assert _render_url("ticket_detail", "IT-000042") == "/desk" + before
    finally:
        set_script_prefix("/")
    assert _render_url("ticket_detail", "IT-000042") == before


def _render(source: str, **context) -> str:
    return engines["jinja2"].from_string(source).render(context)


def test_messages_in_a_partial_follow_the_active_language():
    source = "{{ _('Monday') }}, {{ ngettext('%(num)d minute', '%(num)d minutes', 5, num=5) }}"
    with translation.override("de"):
        assert _render(source) == "Montag, 5 Minuten"
    with translation.override("en"):
        assert _render(source) == "Monday, 5 minutes"


def test_messages_in_a_partial_take_the_language_its_render_began_with():
    # The {% jinja %} tag reads the active language once and passes it in the context.
    with translation.override("en"):
        assert _render("{{ _('Monday') }}", **{LANGUAGE_KEY: "de"}) == "Montag"
        assert _render("{{ _('Monday') }}") == "Monday"


def test_a_message_looked_up_first_for_another_language_is_not_kept_for_it():
    # The memo is per language: a first lookup for German while English is active must
    # still remember German text for German.
    _translated.cache_clear()
    with translation.override("en"):
        assert _render("{{ _('Tuesday') }}", **{LANGUAGE_KEY: "de"}) == "Dienstag"
    with translation.override("de"):
        assert _render("{{ _('Tuesday') }}") == "Dienstag"


def test_the_site_header_renders_without_a_signed_in_person_in_the_context():
    # Error pages (403 CSRF, 500) render base.html without the request's context.
    html = engines["jinja2"].get_template("_site_header.html").render({})
    assert '<nav class="site-nav"' in html and "Sign out" not in html


STOCK_GETTEXT_SOURCES = [
    "{{ _('Monday') }}",
    "{{ gettext('Monday') }}",
    "{{ _('100%% sure <b>') }}",
    "{{ _('filed %(when)s ago', when='<3 days>') }}",
    "{{ _('Page %(n)s of %(total)s', n=2, total=7) }}",
    "{% trans %}Monday{% endtrans %}",
    "{% trans who='<x>' %}Hello {{ who }}{% endtrans %}",
    "{% trans count=3 %}{{ count }} day{% pluralize %}{{ count }} days{% endtrans %}",
]


@pytest.mark.parametrize("source", STOCK_GETTEXT_SOURCES)
@pytest.mark.parametrize("autoescape", [True, False])
@pytest.mark.parametrize("language", ["en", "de"])
def test_gettext_in_a_partial_returns_what_jinja2s_newstyle_gettext_returns(
    source, autoescape, language
):
    stock = Environment(extensions=["jinja2.ext.i18n"], autoescape=autoescape)
    stock.install_gettext_callables(_gettext, _ngettext, newstyle=True)
    ours = environment(autoescape=autoescape)
    with translation.override(language):
        expected = stock.from_string(source).render()
        # Twice: the second answer comes from the memo.
        assert ours.from_string(source).render() == expected
        assert ours.from_string(source).render() == expected


@pytest.mark.parametrize("language", ["en", "de", "pl"])
def test_timesince_in_a_partial_prints_what_djangos_timesince_prints(language):
    now = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
    template = engines["jinja2"].from_string("{{ filed|timesince(now) }}")
    spans = [
        timedelta(0),
        timedelta(seconds=59),
        timedelta(minutes=1),
        timedelta(minutes=2, seconds=5),
        timedelta(hours=1),
        timedelta(hours=5, minutes=21),
        timedelta(days=1, hours=22),
        timedelta(days=2),
        timedelta(days=5),
        timedelta(days=13, hours=3),
        timedelta(days=22),
        timedelta(days=40),
        timedelta(days=400),
        timedelta(days=800, hours=7),
        timedelta(minutes=-5),
    ]
    with translation.override(language):
        for span in spans:
            filed = now - span
            assert template.render({"filed": filed, "now": now}) == str(
                escape(timesince(filed, now))
            )


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York"])
def test_badges_and_countdowns_in_a_partial_print_what_the_template_tags_print(language, zone):
    import zoneinfo

    from django.utils import timezone

    from tickets.templatetags import servicedesk as tags

    now = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
    source = (
        "{{ sla_badge('at_risk') }}{{ status_badge('open') }}{{ priority_badge('P2') }}"
        "{{ countdown(deadline, now, 'Resolution') }}{{ countdown(late, now) }}"
    )
    context = {"deadline": now + timedelta(hours=3, minutes=20), "late": now - timedelta(days=2)}
    with translation.override(language), timezone.override(zoneinfo.ZoneInfo(zone)):
        expected = "".join(
            [
                tags.sla_badge("at_risk"),
                tags.status_badge("open"),
                tags.priority_badge("P2"),
                tags.countdown(context["deadline"], now, "Resolution"),
                tags.countdown(context["late"], now),
            ]
        )
        # As the {% jinja %} tag renders it (language and zone in the context), and without.
        with_keys = {LANGUAGE_KEY: language, ZONE_KEY: timezone.get_current_timezone()}
        assert _render(source, now=now, **context, **with_keys) == expected
        assert _render(source, now=now, **context) == expected
    # The case is one of the language and zone asked for (a German weekday, the zone's name).
    assert ("So 29 Nov" in expected) is (language == "de")
    assert ("CET" in expected) is (zone == "Europe/Berlin")


@settings(max_examples=300, deadline=None)
@given(
    filed=st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2030, 12, 31),
        timezones=st.sampled_from([UTC, zoneinfo.ZoneInfo("Europe/Berlin")]),
    ),
    span=st.one_of(
        st.timedeltas(min_value=timedelta(days=-2), max_value=timedelta(days=3)),
        st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3000)),
    ),
    language=st.sampled_from(["en", "de"]),
)
def test_timesince_in_a_partial_is_djangos_for_any_instants(filed, span, language):
    now = (filed + span).astimezone(UTC)
    template = engines["jinja2"].from_string("{{ filed|timesince(now) }}")
    with translation.override(language):
        assert template.render({"filed": filed, "now": now}) == str(escape(timesince(filed, now)))
