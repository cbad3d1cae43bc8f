"""SLA at a glance: the exact "at risk" rule (tickets/selectors.py), shared by the queue filter
and every badge, and the live countdown markup (text plus colour, never colour alone)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone, translation

from tests import factories
from tests.conftest import MONDAY_10
from tickets import selectors, services
from tickets.models import Ticket
from tickets.table_rows import row_values, table_rows
from tickets.templatetags.servicedesk import countdown


def file(org, service=None, priority="P3") -> Ticket:
    return services.ticket_create(
        requester=org.employee, service=service or org.service, title="Help", priority=priority
    )


def state_at(ticket: Ticket, when: datetime) -> str:
    """The badge state (first clock is first response; P3 first response target 4 h)."""
    lens = selectors.SlaLens(now=when)
    fresh = selectors.ticket_base_queryset().get(pk=ticket.pk)
    return lens.summary(fresh)["state"]


def at_risk_refs(user, when: datetime) -> set[str]:
    lens = selectors.SlaLens(now=when)
    queryset = selectors.ticket_queue(user=user, filters={"sla": "at_risk"}, lens=lens)
    return set(queryset.values_list("reference", flat=True))


def test_at_risk_starts_exactly_at_the_warning_threshold(org):
    with time_machine.travel(MONDAY_10, tick=False):
        ticket = file(org)
    three_hours = MONDAY_10 + timedelta(hours=3)  # 0.75 × 4 h of first response
    assert state_at(ticket, three_hours - timedelta(seconds=1)) == "on_track"
    assert state_at(ticket, three_hours) == "at_risk"
    assert at_risk_refs(org.it_agent, three_hours - timedelta(seconds=1)) == set()
    assert at_risk_refs(org.it_agent, three_hours) == {ticket.reference}


def test_at_risk_counts_business_time_not_wall_clock(org):
    # Filed Monday 16:00 Berlin: 1 business hour on Monday, first response due Tuesday 12:00.
    monday_16 = datetime(2026, 1, 12, 15, 0, tzinfo=UTC)
    with time_machine.travel(monday_16, tick=False):
        ticket = file(org)
    monday_night = datetime(2026, 1, 12, 22, 0, tzinfo=UTC)  # 13 wall hours to go, 3 business
    tuesday_11 = datetime(2026, 1, 13, 10, 0, tzinfo=UTC)  # 3 business hours used
    assert state_at(ticket, monday_night) == "on_track"
    assert state_at(ticket, tuesday_11 - timedelta(minutes=1)) == "on_track"
    assert state_at(ticket, tuesday_11) == "at_risk"
    assert at_risk_refs(org.it_agent, monday_night) == set()
    assert at_risk_refs(org.it_agent, tuesday_11) == {ticket.reference}


def test_at_risk_follows_the_first_warning_level_of_the_ladder(org):
    early_warning = factories.standard(
        name="Early warning",
        ladder=[("first_response", 0.5, ["notify_assignee"]), ("first_response", 1.0, [])],
    )
    service = factories.ServiceFactory(department=org.it, standard=early_warning)
    with time_machine.travel(MONDAY_10, tick=False):
        ticket = file(org, service=service)
    assert state_at(ticket, MONDAY_10 + timedelta(hours=2) - timedelta(seconds=1)) == "on_track"
    assert state_at(ticket, MONDAY_10 + timedelta(hours=2)) == "at_risk"
    assert at_risk_refs(org.it_agent, MONDAY_10 + timedelta(hours=2)) == {ticket.reference}


def test_at_risk_uses_three_quarters_when_the_ladder_has_no_warning(org):
    silent = factories.standard(name="No ladder", ladder=[])
    service = factories.ServiceFactory(department=org.it, standard=silent)
    with time_machine.travel(MONDAY_10, tick=False):
        ticket = file(org, service=service)
    assert state_at(ticket, MONDAY_10 + timedelta(hours=3) - timedelta(seconds=1)) == "on_track"
    assert state_at(ticket, MONDAY_10 + timedelta(hours=3)) == "at_risk"


def test_past_the_deadline_is_breached_not_at_risk(org):
    with time_machine.travel(MONDAY_10, tick=False):
        ticket = file(org)
    after = MONDAY_10 + timedelta(hours=4, seconds=1)
    assert state_at(ticket, after) == "breached"
    assert at_risk_refs(org.it_agent, after) == set()


def test_paused_clocks_are_never_at_risk(org):
    with time_machine.travel(MONDAY_10, tick=False):
        ticket = file(org)
        services.ticket_transition(ticket=ticket, actor=org.it_agent, to_status="open")
    with time_machine.travel(MONDAY_10 + timedelta(hours=3, minutes=30), tick=False):
        services.ticket_transition(
            ticket=ticket, actor=org.it_agent, to_status="waiting_on_customer"
        )
    later = MONDAY_10 + timedelta(hours=3, minutes=45)
    assert state_at(ticket, later) == "paused"
    assert at_risk_refs(org.it_agent, later) == set()


def test_a_met_first_response_leaves_the_resolution_clock_in_charge(org):
    with time_machine.travel(MONDAY_10, tick=False):
        ticket = file(org)
        services.ticket_comment(ticket=ticket, author=org.it_agent, body="On it")
    # Resolution (16 h) is at risk after 12 business hours: Tuesday 14:00 Berlin.
    assert state_at(ticket, datetime(2026, 1, 13, 12, 59, tzinfo=UTC)) == "on_track"
    assert state_at(ticket, datetime(2026, 1, 13, 13, 0, tzinfo=UTC)) == "at_risk"


def test_breached_filter_includes_clocks_stopped_late(org):
    with time_machine.travel(MONDAY_10, tick=False):
        ticket = file(org)
    with time_machine.travel(MONDAY_10 + timedelta(hours=5), tick=False):
        services.ticket_comment(ticket=ticket, author=org.it_agent, body="Sorry, late")
    # The resolution clock still runs on time; the stopped first response was breached.
    lens = selectors.SlaLens(now=MONDAY_10 + timedelta(hours=5, minutes=1))
    refs = selectors.ticket_queue(user=org.it_agent, filters={"sla": "breached"}, lens=lens)
    assert list(refs.values_list("reference", flat=True)) == [ticket.reference]


@pytest.mark.parametrize("minutes", [0, 150, 181, 241])
def test_the_queue_filter_and_the_badges_agree(client, org, minutes):
    with time_machine.travel(MONDAY_10, tick=False):
        file(org)
    with time_machine.travel(MONDAY_10 + timedelta(minutes=60), tick=False):
        file(org)
        file(org, priority="P2")
    now = MONDAY_10 + timedelta(minutes=minutes)
    lens = selectors.SlaLens(now=now)
    tickets = table_rows(
        row_values(selectors.ticket_queue(user=org.it_agent, filters={}, lens=lens)), lens=lens
    )
    badge_at_risk = {t.reference for t in tickets if t.sla["state"] == "at_risk"}
    assert at_risk_refs(org.it_agent, now) == badge_at_risk


# --- Markup -------------------------------------------------------------------------------


def test_badges_say_the_state_in_words_and_the_countdown_is_a_time_element(client, org):
    with time_machine.travel(MONDAY_10, tick=False):
        ticket = file(org)
    with time_machine.travel(MONDAY_10 + timedelta(hours=3, minutes=20), tick=False):
        client.force_login(org.it_agent)
        body = client.get(reverse("queue")).content.decode()
    assert 'class="badge sla sla-at_risk"><span aria-hidden="true">▲</span> At risk</span>' in body
    deadline = (MONDAY_10 + timedelta(hours=4)).isoformat()
    assert f'data-countdown="{deadline}"' in body
    assert f'<time datetime="{deadline}"' in body
    assert "first response <time" in body
    assert "due in 40 min</time>" in body
    assert ticket.reference in body


def test_countdown_says_overdue_once_the_deadline_passed(client, org):
    with time_machine.travel(MONDAY_10, tick=False):
        ticket = file(org)
    with time_machine.travel(MONDAY_10 + timedelta(hours=6, minutes=5), tick=False):
        client.force_login(org.employee)
        body = client.get(reverse("ticket_detail", args=[ticket.reference])).content.decode()
    assert "Breached</span>" in body
    assert "overdue by 2 h 5 min</time>" in body
    assert 'class="countdown overdue"' in body


def test_countdown_markup_carries_translated_words_for_the_script(client, org):
    file(org)
    client.force_login(org.employee)
    body = client.get(reverse("my_requests")).content.decode()
    assert 'data-due-text="due in %(span)s"' in body
    assert 'data-overdue-text="overdue by %(span)s"' in body
    assert 'data-breached-text="Breached"' in body


def test_countdown_titles_one_deadline_in_each_viewers_time_zone():
    deadline = datetime(2026, 1, 12, 13, 0, tzinfo=UTC)
    now = deadline - timedelta(hours=1)
    with timezone.override(ZoneInfo("Europe/Berlin")):
        berlin = countdown(deadline, now)
    with timezone.override(ZoneInfo("America/New_York")):
        new_york = countdown(deadline, now)
    assert 'title="Mon 12 Jan 2026, 14:00 CET"' in berlin
    assert 'title="Mon 12 Jan 2026, 08:00 EST"' in new_york


def test_countdown_words_follow_the_clock_for_the_same_deadline():
    deadline = datetime(2026, 1, 12, 13, 0, tzinfo=UTC)
    assert "due in 1 h 1 min</time>" in countdown(deadline, deadline - timedelta(minutes=61))
    assert "due in less than a minute</time>" in countdown(
        deadline, deadline - timedelta(seconds=5)
    )
    late = countdown(deadline, deadline + timedelta(days=2, hours=3, seconds=1))
    assert "overdue by 2 d 3 h</time>" in late
    assert 'class="countdown overdue"' in late


def test_countdown_escapes_a_plain_label_and_keeps_a_safe_one():
    from django.utils.safestring import mark_safe

    deadline = datetime(2026, 1, 12, 13, 0, tzinfo=UTC)
    now = deadline - timedelta(hours=1)
    assert "&lt;b&gt;first&lt;/b&gt; <time" in countdown(deadline, now, "<b>first</b>")
    assert "<b>first</b> <time" in countdown(deadline, now, mark_safe("<b>first</b>"))


def test_ticket_page_shows_each_clock_with_target_used_and_deadline(client, org):
    with time_machine.travel(MONDAY_10, tick=False):
        ticket = file(org)
    with time_machine.travel(MONDAY_10 + timedelta(hours=1), tick=False):
        client.force_login(org.employee)
        body = client.get(reverse("ticket_detail", args=[ticket.reference])).content.decode()
    assert "First response" in body and "Resolution" in body
    assert "4 business hours" in body and "2 business days" in body
    assert "1h</dd>" in body  # used so far
    assert "due in 3 h</time>" in body
    assert timezone.localtime(MONDAY_10 + timedelta(hours=4)).strftime("%H:%M") in body


def test_ticket_page_shows_deadlines_in_the_viewers_time_zone(client, org):
    with time_machine.travel(MONDAY_10, tick=False):
        ticket = file(org)
    org.employee.time_zone = "America/New_York"
    org.employee.save(update_fields=["time_zone"])
    with time_machine.travel(MONDAY_10 + timedelta(hours=1), tick=False):
        client.force_login(org.employee)
        body = client.get(reverse("ticket_detail", args=[ticket.reference])).content.decode()
    # First response: 4 business hours from Monday 10:00 Berlin = 14:00 Berlin = 08:00 New York.
    assert "Mon 12 Jan, 08:00" in body
    assert "Mon 12 Jan, 14:00" not in body
    # Resolution: 16 business hours = Wednesday 10:00 Berlin = 04:00 New York.
    assert "Wed 14 Jan, 04:00" in body


def _sla_side(client, user, ticket) -> str:
    client.force_login(user)
    body = client.get(reverse("ticket_detail", args=[ticket.reference])).content.decode()
    return body[body.index('id="sla-h"') :]


def test_ticket_page_names_each_clock_state_in_words(client, org):
    with time_machine.travel(MONDAY_10, tick=False):
        ticket = file(org)
        side = _sla_side(client, org.employee, ticket)
        assert side.count("sla-on_track") == 2 and "On track" in side  # running
    with time_machine.travel(MONDAY_10 + timedelta(hours=1), tick=False):
        services.ticket_comment(ticket=ticket, author=org.it_agent, body="On it")
        services.ticket_transition(
            ticket=ticket, actor=org.it_agent, to_status="waiting_on_customer"
        )
        side = _sla_side(client, org.employee, ticket)
        assert "sla-met" in side and "Met" in side  # first response answered in time
        assert "sla-paused" in side and "Paused" in side  # resolution waits on the customer
    with time_machine.travel(MONDAY_10 + timedelta(hours=2), tick=False):
        services.ticket_transition(ticket=ticket, actor=org.employee, to_status="cancelled")
        side = _sla_side(client, org.employee, ticket)
        assert side.count("sla-cancelled") == 2 and "Cancelled" in side
    with time_machine.travel(MONDAY_10, tick=False):
        late = file(org)
    with time_machine.travel(MONDAY_10 + timedelta(hours=5), tick=False):
        side = _sla_side(client, org.employee, late)
        assert "sla-breached" in side and "Breached" in side  # past 4 h, still running


def test_a_countdowns_deadline_in_words_follows_the_active_time_zone_and_language_once_cached():
    deadline = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)
    now = deadline - timedelta(hours=2)
    with timezone.override(ZoneInfo("Europe/Paris")):
        paris = countdown(deadline, now)
        assert countdown(deadline, now) == paris  # served from the cache
    with timezone.override(ZoneInfo("America/New_York")):
        new_york = countdown(deadline, now)
    with timezone.override(ZoneInfo("Europe/Paris")), translation.override("de"):
        german = countdown(deadline, now)
    assert 'title="Tue 1 Dec 2026, 14:00 CET"' in paris
    assert 'title="Tue 1 Dec 2026, 08:00 EST"' in new_york
    assert 'title="Di 1 Dez 2026, 14:00 CET"' in german
