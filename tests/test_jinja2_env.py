"""servicedesk/jinja2.py: `url()` in the Jinja2 partials answers what reverse() answers, also
when the app is served under a script prefix."""

from __future__ import annotations

from django.template import engines
from django.urls import reverse, set_script_prefix


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
