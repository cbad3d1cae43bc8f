"""The API ticket list is written from plain rows (tickets/api_rows.py): its responses must be
byte for byte those of the list through TicketSerializer and model instances, for every kind
of ticket, filter, ordering, time zone and cursor page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIRequestFactory, force_authenticate

from departments.models import Service
from slas.escalation import sla_escalate
from slas.models import Escalation, SlaClock
from tests.api_helpers import _fresh_throttles  # noqa: F401
from tests.factories import MembershipFactory
from tickets import services
from tickets.api import TicketFilter, TicketSerializer, TicketViewSet, _attach_sla
from tickets.models import Ticket


class SerializerListViewSet(TicketViewSet):
    """The list as it was written before api_rows: model instances through TicketSerializer."""

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        tickets = _attach_sla(list(page), now=timezone.now())
        return self.get_paginated_response(TicketSerializer(tickets, many=True).data)


rows_list = TicketViewSet.as_view({"get": "list"})
serializer_list = SerializerListViewSet.as_view({"get": "list"})


def _get(view, user, url: str):
    request = APIRequestFactory().get(url)
    force_authenticate(request, user=user)
    response = view(request)
    response.render()
    return response


def _same_response(user, url: str) -> dict:
    """Both lists' answers to `url` as `user`; they must be the same bytes. The rows' page."""
    expected = _get(serializer_list, user, url)
    actual = _get(rows_list, user, url)
    assert actual.status_code == expected.status_code == 200
    assert actual.content == expected.content
    return actual.data


# Filed a few hours apart on a Monday (Berlin office hours 9–17), read on Tuesday at 11:00.
FILED = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)
READ_AT = FILED + timedelta(days=1, hours=1)


@pytest.fixture
def tickets(org):
    """Tickets covering what the representation varies on: customer department or none,
    assignee or none, running / paused / met / breached / cancelled clocks, escalations with a
    ladder level, without one, and off the ladder, and a confidential request."""

    def file(title: str, minutes: int, **kwargs) -> Ticket:
        return services.ticket_create(
            requester=org.employee,
            service=org.service,
            title=title,
            description=f"About {title}.",
            now=FILED + timedelta(minutes=minutes),
            **kwargs,
        )

    made = {
        "plain": file("Plain", 0),
        "no_customer": file("No customer department", 10),
        "assigned": file("Assigned", 20),
        "paused": file("Paused", 30),
        "met": file("Met", 40, priority="P3"),
        "cancelled": file("Cancelled", 50),
        "escalated": file("Escalated", 60, priority="P3"),
        "off_ladder": file("Off the ladder", 70, priority="P3"),
    }
    later = FILED + timedelta(hours=2)
    Ticket.objects.filter(pk=made["no_customer"].pk).update(customer_department=None)
    services.ticket_assign(ticket=made["assigned"], actor=org.it_agent, assignee=org.it_agent)
    for status in ("open", "waiting_on_customer"):
        services.ticket_transition(
            ticket=made["paused"], actor=org.it_agent, to_status=status, now=later
        )
    for status in ("open", "resolved"):
        services.ticket_transition(
            ticket=made["met"], actor=org.it_agent, to_status=status, now=later
        )
    services.ticket_transition(ticket=made["cancelled"], actor=org.employee, to_status="cancelled")
    # P3 first response is 4 business hours: by Tuesday 11:00 both levels have fired.
    for key in ("escalated", "off_ladder"):
        sla_escalate(ticket_id=made[key].pk, now=READ_AT)
    fired = Escalation.objects.filter(ticket=made["off_ladder"]).order_by("threshold")
    # A level deleted from its version (SET_NULL): the level is found through the clock.
    Escalation.objects.filter(pk=fired[0].pk).update(level=None)
    # A threshold no ladder has: no level.
    Escalation.objects.filter(pk=fired[1].pk).update(level=None, threshold=Decimal("0.90"))
    grievances = Service.objects.create(department=org.hr, name="Grievance", confidential=True)
    grievances.handlers.add(org.hr_agent)
    made["confidential"] = services.ticket_create(
        requester=org.employee, service=grievances, title="Secret", now=FILED
    )
    return made


@pytest.fixture
def read_at():
    with time_machine.travel(READ_AT, tick=False):
        yield READ_AT


def test_fixture_covers_every_kind_of_clock_and_escalation(tickets, read_at):
    states = {
        row["state"]
        for ticket in TicketSerializer(
            _attach_sla(list(Ticket.objects.all()), now=read_at), many=True
        ).data
        for row in ticket["sla"]
    }
    assert {"running", "paused", "met", "breached", "cancelled"} <= states
    assert SlaClock.objects.filter(breached_at__isnull=False).exists()
    levels = [
        row["level"]
        for ticket in TicketSerializer(
            _attach_sla(list(Ticket.objects.all()), now=read_at), many=True
        ).data
        for row in ticket["escalations"]
    ]
    assert None in levels and 1 in levels and 2 in levels


def test_every_kind_of_ticket_is_written_as_the_serializer_writes_it(org, tickets, read_at):
    page = _same_response(org.admin, "/api/v1/tickets/")
    assert page["count"] == len(tickets)


@pytest.mark.parametrize("zone", ["America/New_York", "UTC", "Asia/Kolkata"])
def test_instants_are_in_the_current_time_zone_as_the_serializer_writes_them(
    org, tickets, read_at, zone
):
    with timezone.override(ZoneInfo(zone)):
        page = _same_response(org.admin, "/api/v1/tickets/")
    if zone == "UTC":
        assert page["results"][0]["created_at"].endswith("Z")


def test_confidential_tickets_other_agents_may_not_see_are_left_out(org, tickets, read_at):
    colleague = MembershipFactory(department=org.hr, user__home_department=org.hr).user
    page = _same_response(colleague, "/api/v1/tickets/?supplier_department=hr")
    assert page["count"] == 0
    page = _same_response(org.it_agent, "/api/v1/tickets/")
    references = {row["reference"] for row in page["results"]}
    assert tickets["confidential"].reference not in references
    assert tickets["plain"].reference in references


def test_the_requester_and_a_handler_see_the_confidential_ticket_alike(org, tickets, read_at):
    for user in (org.employee, org.hr_agent):
        page = _same_response(user, "/api/v1/tickets/")
        assert tickets["confidential"].reference in {row["reference"] for row in page["results"]}


def test_a_user_who_sees_no_ticket_gets_the_same_empty_page(org, tickets, read_at):
    page = _same_response(org.outsider, "/api/v1/tickets/")
    assert page["results"] == []


@pytest.mark.parametrize(
    "query",
    [
        "status=waiting_on_customer",
        "status=new",
        "priority=P3",
        "assignee=itagent",
        "requester=employee",
        "supplier_department=it",
        "customer_department=finance",
        "created_after=2026-01-12T09:30:00Z&created_before=2026-01-12T10:05:00%2B00:00",
    ],
)
def test_filters_give_the_same_page(org, tickets, read_at, query):
    page = _same_response(org.admin, f"/api/v1/tickets/?{query}")
    assert page["results"]


@pytest.mark.parametrize(
    "ordering", ["created_at", "-updated_at", "priority", "-priority", "status", "number"]
)
def test_orderings_give_the_same_page(org, tickets, read_at, ordering):
    _same_response(org.admin, f"/api/v1/tickets/?ordering={ordering}")


@pytest.mark.parametrize("ordering", ["-created_at", "priority", "-updated_at"])
def test_cursor_pages_are_the_same_forwards_and_backwards(org, tickets, read_at, ordering):
    url = f"/api/v1/tickets/?ordering={ordering}&page_size=2"
    seen = []
    pages = 0
    while url:
        page = _same_response(org.admin, url)
        seen += [row["reference"] for row in page["results"]]
        last_url, url = url, page["next"]
        pages += 1
    assert len(seen) == len(set(seen)) == len(tickets)
    url = _same_response(org.admin, last_url)["previous"]
    while url:
        url = _same_response(org.admin, url)["previous"]
        pages -= 1
    assert pages == 1


def test_the_list_keeps_its_query_count(org, tickets, read_at, django_assert_max_num_queries):
    # The view itself (the token and memberships are read before it): the page's ids and then
    # their columns, the count, clocks with their calendars' freshness keys, and escalations
    # (ladders come from the version content cache).
    with django_assert_max_num_queries(5):
        _get(rows_list, org.admin, "/api/v1/tickets/")


def test_a_list_naming_no_filter_builds_no_filterset(org, tickets, read_at, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a FilterSet was built")

    monkeypatch.setattr(TicketFilter, "__init__", refuse)
    assert _get(rows_list, org.admin, "/api/v1/tickets/?ordering=number").status_code == 200
    with pytest.raises(AssertionError, match="FilterSet was built"):
        _get(rows_list, org.admin, "/api/v1/tickets/?status=new")


def test_the_list_documents_the_same_filter_parameters():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    names = {p["name"] for p in schema["paths"]["/api/v1/tickets/"]["get"]["parameters"]}
    assert set(TicketFilter.base_filters) <= names
