"""Reads of tickets shared by the UI and the API; permission filtering happens here, once."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet
from django.http import Http404

from servicedesk import permissions
from slas.models import SlaClock
from tickets.models import Comment, Event, Ticket


def ticket_base_queryset() -> QuerySet[Ticket]:
    return Ticket.objects.select_related(
        "service",
        "supplier_department",
        "customer_department",
        "requester",
        "assignee",
    ).prefetch_related(
        Prefetch("clocks", queryset=SlaClock.objects.select_related("version").order_by("metric"))
    )


def ticket_list(*, user, filters: dict | None = None) -> QuerySet[Ticket]:
    """Tickets `user` may see, optionally narrowed by simple field filters."""
    queryset = permissions.visible_tickets(ticket_base_queryset(), user)
    for field, value in (filters or {}).items():
        if value in (None, ""):
            continue
        queryset = queryset.filter(**{field: value})
    return queryset


def ticket_get_for_user(*, user, reference: str, lock: bool = False) -> Ticket:
    """Return the ticket if `user` may see it, otherwise raise Http404 (ids do not leak)."""
    queryset = ticket_base_queryset() if not lock else Ticket.objects.select_for_update()
    try:
        ticket = queryset.get(reference=reference)
    except Ticket.DoesNotExist:
        raise Http404 from None
    if not permissions.can_view_ticket(user, ticket):
        raise Http404
    return ticket


def ticket_comments_for_user(*, user, ticket: Ticket) -> QuerySet[Comment]:
    """The conversation; internal notes only for those allowed to see them."""
    comments = ticket.comments.select_related("author").prefetch_related("attachments")
    if not permissions.can_see_internal_notes(user, ticket):
        comments = comments.filter(internal=False)
    return comments


def ticket_events_for_user(*, user, ticket: Ticket) -> QuerySet[Event]:
    events = ticket.events.select_related("actor")
    if not permissions.can_see_internal_notes(user, ticket):
        events = events.filter(internal=False)
    return events


def ticket_chain(*, user, ticket: Ticket) -> dict:
    """The chain of internal suppliers: where this request came from and what it opened."""
    upstream = []
    current = ticket
    seen = {ticket.pk}
    while current.linked_from_id and current.linked_from_id not in seen:
        current = Ticket.objects.select_related("supplier_department").get(
            pk=current.linked_from_id
        )
        seen.add(current.pk)
        upstream.append(current)
    downstream = list(
        Ticket.objects.select_related("supplier_department").filter(linked_from=ticket)
    )
    visible = lambda t: permissions.can_view_ticket(user, t)  # noqa: E731
    return {
        "upstream": [(t, visible(t)) for t in reversed(upstream)],
        "downstream": [(t, visible(t)) for t in downstream],
    }
