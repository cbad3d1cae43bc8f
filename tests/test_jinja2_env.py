"""servicedesk/jinja2.py: `url()` in the Jinja2 partials answers what reverse() answers, also
when the app is served under a script prefix; their messages are in the active language."""

from __future__ import annotations

from django.template import engines
from django.urls import reverse, set_script_prefix
from django.utils import translation

from servicedesk.jinja2 import LANGUAGE_KEY, _translated


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
