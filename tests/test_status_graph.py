"""SPEC §2: the status graph — every allowed transition works, every other is refused."""

import itertools
from datetime import timedelta

import pytest

from servicedesk.errors import DomainError
from tickets import services
from tickets.models import ALLOWED_TRANSITIONS, Event, Status, Ticket

ALL = [s.value for s in Status]
ALLOWED = sorted((a, b) for a, targets in ALLOWED_TRANSITIONS.items() for b in targets)
REFUSED = sorted((a, b) for a, b in itertools.product(ALL, ALL) if (a, b) not in ALLOWED)
# The shortest path from `new` to each status, through the graph itself.
PATH = {
    "new": [],
    "open": ["open"],
    "waiting_on_customer": ["open", "waiting_on_customer"],
    "resolved": ["open", "resolved"],
    "closed": ["open", "resolved", "closed"],
    "cancelled": ["cancelled"],
}


def _ticket_in(org, status):
    ticket = services.ticket_create(requester=org.employee, service=org.service, title="Printer")
    for step in PATH[status]:
        ticket = services.ticket_transition(ticket=ticket, actor=org.it_agent, to_status=step)
    assert ticket.status == status
    return ticket


def test_graph_matches_spec():
    assert ALLOWED == sorted(
        [
            ("new", "open"),
            ("new", "cancelled"),
            ("open", "waiting_on_customer"),
            ("open", "resolved"),
            ("open", "cancelled"),
            ("waiting_on_customer", "open"),
            ("waiting_on_customer", "cancelled"),
            ("resolved", "closed"),
            ("resolved", "open"),
            ("resolved", "cancelled"),
        ]
    )


@pytest.mark.parametrize(("source", "target"), ALLOWED)
def test_allowed_transition_is_made_and_audited(org, source, target):
    ticket = _ticket_in(org, source)
    ticket = services.ticket_transition(ticket=ticket, actor=org.it_agent, to_status=target)
    assert Ticket.objects.get(pk=ticket.pk).status == target
    event = Event.objects.filter(ticket=ticket, kind=Event.Kind.STATUS).last()
    assert (event.before, event.after, event.actor) == (source, target, org.it_agent)


@pytest.mark.parametrize(("source", "target"), REFUSED)
def test_transition_outside_graph_is_refused_with_message(org, source, target):
    ticket = _ticket_in(org, source)
    events_before = Event.objects.filter(ticket=ticket).count()
    with pytest.raises(DomainError) as refused:
        services.ticket_transition(ticket=ticket, actor=org.it_agent, to_status=target)
    assert "cannot become" in str(refused.value)
    assert Ticket.objects.get(pk=ticket.pk).status == source
    assert Event.objects.filter(ticket=ticket).count() == events_before


def test_unknown_status_is_refused(org):
    ticket = _ticket_in(org, "new")
    with pytest.raises(DomainError):
        services.ticket_transition(ticket=ticket, actor=org.it_agent, to_status="bogus")


def test_requester_cannot_resolve_own_request(org):
    ticket = _ticket_in(org, "open")
    with pytest.raises(DomainError):
        services.ticket_transition(ticket=ticket, actor=org.employee, to_status="resolved")


def test_requester_may_cancel_own_request(org):
    ticket = _ticket_in(org, "new")
    ticket = services.ticket_transition(ticket=ticket, actor=org.employee, to_status="cancelled")
    assert ticket.status == "cancelled"


def test_requester_cannot_reopen_after_window(org, settings):
    settings.REOPEN_WINDOW_DAYS = 14
    ticket = _ticket_in(org, "resolved")
    later = ticket.resolved_at + timedelta(days=15)
    with pytest.raises(DomainError) as refused:
        services.ticket_transition(ticket=ticket, actor=org.employee, to_status="open", now=later)
    assert "days ago" in str(refused.value)
