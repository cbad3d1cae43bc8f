"""servicedesk/jinja2.py: `url()` in the Jinja2 partials answers what reverse() answers, also
when the app is served under a script prefix; their messages are in the active language."""

from __future__ import annotations

from django.template import engines
from django.urls import reverse, set_script_prefix
from django.utils import translation

from servicedesk.jinja2 import LANGUAGE_KEY


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
