"""Issue 10 performance pieces: Ticket.sla_deadline (the queue's indexed sort key) stays equal
to the running clocks; the queue paginator counts no further than its cap."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from slas.models import SlaClock
from slas.services import sla_refresh_deadlines
from tests.conftest import MONDAY_10
from tickets import services
from tickets.models import Ticket


def _nearest_running_deadline(ticket: Ticket):
    deadlines = [
        c.deadline
        for c in SlaClock.objects.filter(ticket=ticket)
        if c.status == SlaClock.Status.RUNNING and c.deadline is not None
    ]
    return min(deadlines) if deadlines else None


def test_new_ticket_stores_its_nearest_running_deadline(org):
    with time_machine.travel(MONDAY_10, tick=False):
        ticket = services.ticket_create(
            requester=org.employee, service=org.service, title="Printer", priority="P2"
        )
    ticket.refresh_from_db()
    assert ticket.sla_deadline is not None
    assert ticket.sla_deadline == _nearest_running_deadline(ticket)


def test_pausing_every_clock_clears_the_deadline(org):
    with time_machine.travel(MONDAY_10, tick=False):
        ticket = services.ticket_create(
            requester=org.employee, service=org.service, title="Printer", priority="P2"
        )
        services.ticket_transition(ticket=ticket, actor=org.it_agent, to_status="open")
        services.ticket_transition(
            ticket=ticket, actor=org.it_agent, to_status="waiting_on_customer"
        )
    ticket.refresh_from_db()
    assert ticket.sla_deadline is None


def test_bulk_refresh_recomputes_deadlines_from_clocks(org):
    with time_machine.travel(MONDAY_10, tick=False):
        ticket = services.ticket_create(
            requester=org.employee, service=org.service, title="Printer", priority="P2"
        )
    Ticket.objects.filter(pk=ticket.pk).update(sla_deadline=None)
    sla_refresh_deadlines(ticket_ids=[ticket.pk])
    ticket.refresh_from_db()
    assert ticket.sla_deadline == _nearest_running_deadline(ticket)


def test_queue_count_stops_at_the_cap(client, org, monkeypatch):
    from django.urls import reverse

    from tickets.pagination import CappedPaginator

    monkeypatch.setattr(CappedPaginator, "cap", 3)
    monkeypatch.setattr("tickets.views.PAGE_SIZE", 2)
    with time_machine.travel(MONDAY_10, tick=False):
        for n in range(5):
            services.ticket_create(
                requester=org.employee, service=org.service, title=f"T{n}", priority="P3"
            )
        client.force_login(org.it_agent)
        response = client.get(reverse("queue"))
    assert response.status_code == 200
    assert response.context["page"].paginator.capped
    assert "more than 3 tickets" in response.content.decode()


def test_api_list_count_stops_at_the_cap_and_next_still_walks(client, org, monkeypatch):
    from rest_framework.authtoken.models import Token

    from servicedesk.api.pagination import CappedKeysetPagination

    monkeypatch.setattr(CappedKeysetPagination, "count_cap", 3)
    with time_machine.travel(MONDAY_10, tick=False):
        for n in range(5):
            services.ticket_create(
                requester=org.employee, service=org.service, title=f"T{n}", priority="P3"
            )
    token = Token.objects.create(user=org.it_agent)
    headers = {"HTTP_AUTHORIZATION": f"Token {token.key}"}
    first = client.get("/api/v1/tickets/?page_size=2", **headers).json()
    assert first["count"] == 3 and first["count_capped"] is True
    seen = [t["reference"] for t in first["results"]]
    url = first["next"]
    while url:
        page = client.get(url, **headers).json()
        seen += [t["reference"] for t in page["results"]]
        url = page["next"]
    assert len(seen) == len(set(seen)) == 5


def test_api_list_pages_by_keyset_forward_and_back_in_every_ordering(client, org):
    from rest_framework.authtoken.models import Token

    for n in range(7):
        with time_machine.travel(MONDAY_10 + timedelta(minutes=n % 3), tick=False):
            services.ticket_create(
                requester=org.employee,
                service=org.service,
                title=f"T{n}",
                priority=["P1", "P2", "P3"][n % 3],
            )
    token = Token.objects.create(user=org.it_agent)
    headers = {"HTTP_AUTHORIZATION": f"Token {token.key}"}
    for ordering in ("", "&ordering=priority", "&ordering=-number"):
        first = client.get(f"/api/v1/tickets/?page_size=3{ordering}", **headers).json()
        assert "cursor=" in first["next"] and first["previous"] is None
        pages = [[t["reference"] for t in first["results"]]]
        url = first["next"]
        while url:
            body = client.get(url, **headers).json()
            pages.append([t["reference"] for t in body["results"]])
            last, url = body, body["next"]
        walked = [ref for page in pages for ref in page]
        assert len(walked) == len(set(walked)) == 7
        # Back from the last page: the previous pages again, in the same order.
        back = client.get(last["previous"], **headers).json()
        assert [t["reference"] for t in back["results"]] == pages[-2], ordering


def test_api_list_bad_cursor_answers_404_not_500(client, org):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=org.it_agent)
    response = client.get(
        "/api/v1/tickets/?cursor=not-a-cursor", HTTP_AUTHORIZATION=f"Token {token.key}"
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("query", "in_order"),
    [
        ("", True),
        ("?status=open", True),
        ("?sort=updated", False),
        ("?sort=priority", False),
        ("?status=resolved", False),
        ("?status=all", False),
    ],
)
def test_queue_count_walks_the_list_order_only_where_an_index_serves_it(
    client, org, query, in_order, monkeypatch
):
    """The capped count in the deadline order of active tickets walks ticket_queue_deadline;
    in any other order it would sort the department's whole backlog before counting."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from servicedesk.prepared import PreparedShapes
    from tickets import selectors
    from tickets.pagination import COUNT_CAP

    # Shapes no earlier test learnt: their SQL goes out with this request's PREPARE.
    monkeypatch.setattr(selectors, "_QUEUE_SHAPES", PreparedShapes())

    with time_machine.travel(MONDAY_10, tick=False):
        services.ticket_create(requester=org.employee, service=org.service, title="T")
        client.force_login(org.it_agent)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(reverse("queue") + query)
    assert response.status_code == 200
    statements = [q["sql"] for q in queries.captured_queries]
    counts = [sql for sql in statements if sql.startswith("SELECT COUNT(*)") and "ticket" in sql]
    # Compiled for this request, or prepared once for its shape (PREPARE … AS SELECT …).
    capped_ids = [
        sql
        for sql in statements
        if 'SELECT "tickets_ticket"."id"' in sql and f"LIMIT {COUNT_CAP + 1}" in sql
    ]
    if in_order:
        # One read of the first cap + 1 ids in order is both the count and the page.
        assert counts == [] and len(capped_ids) == 1 and "ORDER BY" in capped_ids[0]
    else:
        (count,) = counts
        assert "ORDER BY" not in count and capped_ids == []
