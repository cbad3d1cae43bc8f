"""The agent queue: who may open it, filters, deadline-first sorting, pagination, quick and
bulk changes through the services, and a fixed query count whatever the number of rows."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape

from tests import factories
from tests.conftest import MONDAY_10
from tickets import services
from tickets.models import Status, Ticket


def file(org, title="Request", *, requester=None, service=None, priority=None) -> Ticket:
    return services.ticket_create(
        requester=requester or org.employee,
        service=service or org.service,
        title=title,
        priority=priority,
    )


def queue_refs(client, user, query: str = "") -> list[str]:
    """References in the order the queue shows them."""
    client.force_login(user)
    response = client.get(reverse("queue") + query)
    assert response.status_code == 200
    body = response.content.decode()
    return [chunk.split('"')[0] for chunk in body.split('name="tickets" value="')[1:]]


# --- Access -------------------------------------------------------------------------------


def test_queue_answers_404_to_an_employee_who_is_no_agent(client, org):
    client.force_login(org.employee)
    assert client.get(reverse("queue")).status_code == 404
    assert client.post(reverse("queue_bulk"), {"action": "assign_me"}).status_code == 404


def test_queue_needs_sign_in(client, org):
    response = client.get(reverse("queue"))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_agent_sees_only_active_tickets_of_own_department_by_default(client, org):
    mine = file(org, "Mine")
    closed = file(org, "Gone")
    services.ticket_transition(ticket=closed, actor=org.it_agent, to_status="cancelled")
    hr = file(org, "HR", service=org.hr_service)
    refs = queue_refs(client, org.it_agent)
    assert refs == [mine.reference]
    assert hr.reference not in queue_refs(client, org.it_agent, "?status=all")
    assert set(queue_refs(client, org.it_agent, "?status=all")) == {
        mine.reference,
        closed.reference,
    }


def test_admin_queue_spans_all_departments(client, org):
    it, hr = file(org), file(org, service=org.hr_service)
    assert set(queue_refs(client, org.admin)) == {it.reference, hr.reference}


def test_home_sends_agents_to_their_queue(client, org):
    client.force_login(org.it_agent)
    response = client.get(reverse("home"))
    assert response.status_code == 302 and response["Location"] == reverse("queue")


# --- Filters ------------------------------------------------------------------------------


def test_filter_by_status(client, org):
    new, opened = file(org), file(org)
    services.ticket_transition(ticket=opened, actor=org.it_agent, to_status="open")
    assert queue_refs(client, org.it_agent, "?status=open") == [opened.reference]
    assert queue_refs(client, org.it_agent, "?status=new") == [new.reference]


def test_filter_by_priority(client, org):
    file(org, priority="P3")
    urgent = file(org, priority="P1")
    assert queue_refs(client, org.it_agent, "?priority=P1") == [urgent.reference]


def test_filter_by_assignee_me_nobody_and_a_person(client, org):
    mine, lead, nobody = file(org), file(org), file(org)
    services.ticket_assign(ticket=mine, actor=org.it_agent, assignee=org.it_agent)
    services.ticket_assign(ticket=lead, actor=org.it_agent, assignee=org.it_lead)
    assert queue_refs(client, org.it_agent, "?assignee=me") == [mine.reference]
    assert queue_refs(client, org.it_agent, "?assignee=none") == [nobody.reference]
    assert queue_refs(client, org.it_agent, f"?assignee={org.it_lead.pk}") == [lead.reference]


def test_filter_by_service(client, org):
    printer = factories.ServiceFactory(department=org.it, name="Printer")
    file(org)
    paper = file(org, service=printer)
    assert queue_refs(client, org.it_agent, f"?service={printer.pk}") == [paper.reference]


def test_filter_by_customer_department(client, org):
    file(org, requester=org.employee)  # Finance
    from_hr = file(org, requester=org.hr_agent)
    assert queue_refs(client, org.it_agent, f"?customer_department={org.hr.pk}") == [
        from_hr.reference
    ]


def test_search_by_reference_or_title_words(client, org):
    file(org, "Printer jam")
    screen = file(org, "Screen flickers")
    assert queue_refs(client, org.it_agent, "?q=flick") == [screen.reference]
    assert queue_refs(client, org.it_agent, f"?q={screen.reference.lower()}") == [screen.reference]


@pytest.mark.parametrize(
    "query",
    ["?priority=P9", "?service=abc", "?assignee=ghost", "?sort=sideways", "?status=flying"],
)
def test_invalid_filter_values_are_reported_and_ignored_not_a_500(client, org, query):
    ticket = file(org)
    client.force_login(org.it_agent)
    response = client.get(reverse("queue") + query)
    assert response.status_code == 200
    assert 'class="errorlist"' in response.content.decode()
    assert ticket.reference in response.content.decode()


def test_sla_filters_find_at_risk_and_breached_tickets(client, org):
    # P3: first response 4 business hours, warning at 75 % (3 h); Monday 10:00 Berlin.
    with time_machine.travel(MONDAY_10, tick=False):
        early = file(org, "Early")
    with time_machine.travel(MONDAY_10 + timedelta(hours=1, minutes=30), tick=False):
        later = file(org, "Later")
    with time_machine.travel(MONDAY_10 + timedelta(hours=3, minutes=30), tick=False):
        assert queue_refs(client, org.it_agent, "?sla=at_risk") == [early.reference]
        assert queue_refs(client, org.it_agent, "?sla=breached") == []
    with time_machine.travel(MONDAY_10 + timedelta(hours=4, minutes=40), tick=False):
        assert queue_refs(client, org.it_agent, "?sla=at_risk") == [later.reference]
        assert queue_refs(client, org.it_agent, "?sla=breached") == [early.reference]


# --- Sorting and pagination ---------------------------------------------------------------


def test_default_order_is_next_deadline_first_paused_last(client, org):
    with time_machine.travel(MONDAY_10, tick=False):
        p3 = file(org, "P3", priority="P3")  # first response due 14:00
        waiting = file(org, "Waiting", priority="P1")
        services.ticket_transition(ticket=waiting, actor=org.it_agent, to_status="open")
        services.ticket_transition(
            ticket=waiting, actor=org.it_agent, to_status="waiting_on_customer"
        )
    with time_machine.travel(MONDAY_10 + timedelta(minutes=10), tick=False):
        p1 = file(org, "P1", priority="P1")  # first response due 10:40
        p2 = file(org, "P2", priority="P2")  # due 11:10
        assert queue_refs(client, org.it_agent) == [
            p1.reference,
            p2.reference,
            p3.reference,
            waiting.reference,
        ]
        assert queue_refs(client, org.it_agent, "?sort=newest")[-1] == p3.reference


def test_queue_is_paginated(client, org):
    with time_machine.travel(MONDAY_10, tick=False):
        for i in range(27):
            file(org, f"T{i}")
        first = queue_refs(client, org.it_agent)
        second = queue_refs(client, org.it_agent, "?page=2")
        beyond = queue_refs(client, org.it_agent, "?page=99")
        garbage = queue_refs(client, org.it_agent, "?page=abc")
    assert len(first) == 25 and len(second) == 2
    assert not set(first) & set(second)
    assert beyond == second and garbage == first


def test_pagination_links_keep_the_filters(client, org):
    for i in range(26):
        file(org, f"T{i}", priority="P2")
    client.force_login(org.it_agent)
    body = client.get(reverse("queue") + "?priority=P2").content.decode()
    assert 'href="?priority=P2&amp;page=2"' in body


# --- Quick and bulk changes ---------------------------------------------------------------


def test_quick_assign_to_me(client, org):
    ticket = file(org)
    client.force_login(org.it_agent)
    response = client.post(reverse("queue_bulk"), {"assign_me": ticket.reference})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.assignee == org.it_agent


def test_bulk_assign_to_me_changes_every_selected_ticket(client, org):
    a, b, untouched = file(org), file(org), file(org)
    client.force_login(org.it_agent)
    client.post(
        reverse("queue_bulk"), {"tickets": [a.reference, b.reference], "action": "assign_me"}
    )
    assert set(Ticket.objects.filter(assignee=org.it_agent)) == {a, b}
    untouched.refresh_from_db()
    assert untouched.assignee is None


def test_bulk_assign_to_a_colleague(client, org):
    a = file(org)
    client.force_login(org.it_agent)
    client.post(
        reverse("queue_bulk"), {"tickets": [a.reference], "action": "assign", "assignee": "itlead"}
    )
    a.refresh_from_db()
    assert a.assignee == org.it_lead


def test_bulk_reports_each_refusal_and_changes_the_rest(client, org):
    ok = file(org)
    already_open = file(org)
    services.ticket_transition(ticket=already_open, actor=org.it_agent, to_status="open")
    hidden = file(org, service=org.hr_service)
    client.force_login(org.it_agent)
    response = client.post(
        reverse("queue_bulk"),
        {
            "tickets": [ok.reference, already_open.reference, hidden.reference],
            "action": "status",
            "to_status": "open",
        },
        follow=True,
    )
    body = response.content.decode()
    ok.refresh_from_db()
    hidden.refresh_from_db()
    assert ok.status == Status.OPEN
    assert hidden.status == Status.NEW
    assert f"Updated 1 ticket(s): {ok.reference}." in body
    assert (
        f"{already_open.reference} was not changed: A ticket that is open cannot become open."
        in (body)
    )
    assert f"{hidden.reference} was not changed: not found" in body


def test_bulk_assign_to_someone_outside_the_department_is_refused_per_ticket(client, org):
    a = file(org)
    client.force_login(org.it_agent)
    response = client.post(
        reverse("queue_bulk"),
        {"tickets": [a.reference], "action": "assign", "assignee": "employee"},
        follow=True,
    )
    assert "is not an agent of IT" in response.content.decode()
    a.refresh_from_db()
    assert a.assignee is None


def test_bulk_without_selection_says_so(client, org):
    client.force_login(org.it_agent)
    response = client.post(reverse("queue_bulk"), {"action": "assign_me"}, follow=True)
    assert "Select at least one ticket." in response.content.decode()


def test_bulk_status_without_a_status_says_so(client, org):
    a = file(org)
    client.force_login(org.it_agent)
    response = client.post(
        reverse("queue_bulk"), {"tickets": [a.reference], "action": "status"}, follow=True
    )
    assert "Choose the new status." in response.content.decode()


def test_bulk_returns_to_the_filtered_queue(client, org):
    a = file(org)
    client.force_login(org.it_agent)
    response = client.post(
        reverse("queue_bulk"),
        {"tickets": [a.reference], "action": "assign_me", "back": "priority=P3"},
    )
    assert response["Location"] == reverse("queue") + "?priority=P3"


def test_bulk_change_is_audited_per_ticket(client, org):
    a, b = file(org), file(org)
    client.force_login(org.it_agent)
    client.post(
        reverse("queue_bulk"), {"tickets": [a.reference, b.reference], "action": "assign_me"}
    )
    for ticket in (a, b):
        assert ticket.events.filter(kind="assigned", actor=org.it_agent).count() == 1


# --- Query budget -------------------------------------------------------------------------


def _queries(client, url) -> int:
    client.get(url)  # warm per-process caches (calendars)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize("query", ["", "?sla=at_risk", "?sla=breached&sort=priority"])
def test_queue_runs_a_fixed_number_of_queries(client, org, query):
    client.force_login(org.it_agent)
    url = reverse("queue") + query
    with time_machine.travel(MONDAY_10, tick=False):
        for i in range(3):
            file(org, f"T{i}")
    with time_machine.travel(MONDAY_10 + timedelta(hours=5), tick=False):
        few = _queries(client, url)
    with time_machine.travel(MONDAY_10 + timedelta(minutes=30), tick=False):
        for i in range(30):
            services.ticket_assign(
                ticket=file(org, f"U{i}", priority="P2"), actor=org.it_agent, assignee=org.it_lead
            )
    with time_machine.travel(MONDAY_10 + timedelta(hours=5), tick=False):
        many = _queries(client, url)
    assert few == many


def test_queue_heading_names_the_agents_departments_and_the_filter_offers_active_customers(
    client, org
):
    archive = factories.DepartmentFactory(name="Archive", code="ARC", active=False)
    factories.MembershipFactory(user=org.it_agent, department=archive)
    client.force_login(org.it_agent)
    body = client.get(reverse("queue")).content.decode()
    assert '<p class="meta">Archive, IT</p>' in body
    choices = body[body.index('name="customer_department"') :]
    choices = choices[: choices.index("</select>")]
    assert f'value="{org.finance.pk}">Finance</option>' in choices
    assert "Archive" not in choices


def _options(body: str, name: str) -> list[str]:
    """The labels of the options of the select called `name`."""
    import re

    select = body[body.index(f'name="{name}"') :]
    return re.findall(r"<option [^>]*>([^<]*)</option>", select[: select.index("</select>")])


def test_the_filter_offers_the_people_and_services_of_every_department_the_agent_works(client, org):
    from departments.models import User
    from tickets.table_rows import display_name

    factories.MembershipFactory(user=org.it_agent, department=org.hr)
    factories.ServiceFactory(department=org.hr, name="Archived letters", active=False)
    client.force_login(org.it_agent)
    body = client.get(reverse("queue")).content.decode()
    members = (
        User.objects.filter(memberships__department__in=[org.it, org.hr])
        .distinct()
        .order_by("first_name", "last_name", "username")
    )
    # Each person once (itagent works both departments), by name.
    assert _options(body, "assignee")[3:] == [
        escape(display_name(u.username, u.first_name, u.last_name)) for u in members
    ]
    assert len(members) == 3
    assert _options(body, "service")[1:] == [
        "HR · Archived letters",
        "HR · Employment letter",
        "IT · Laptop problem",
    ]


def test_queue_query_budget(client, org, django_assert_max_num_queries):
    for i in range(30):
        file(org, f"T{i}")
    client.force_login(org.it_agent)
    client.get(reverse("queue"))
    with django_assert_max_num_queries(10):
        body = client.get(reverse("queue")).content.decode()
    assert body.count('<tr class="sla-row-') == 25
    with django_assert_max_num_queries(10):
        client.get(reverse("queue") + "?sla=at_risk")


# --- Row columns (tickets/table_rows.py) --------------------------------------------------


def test_a_queue_row_names_people_by_full_name_or_username_and_shows_a_dash_for_no_customer(
    client, org
):
    nameless = factories.UserFactory(
        username="nameless", first_name="", last_name="", home_department=None
    )
    from_nowhere = file(org, "No customer department", requester=nameless)
    named = file(org, "Named requester")
    services.ticket_assign(ticket=named, actor=org.it_agent, assignee=org.it_agent)
    client.force_login(org.it_lead)
    body = client.get(reverse("queue")).content.decode()
    rows = {chunk.split('"')[0]: chunk for chunk in body.split('name="tickets" value="')[1:]}
    nameless_row = rows[from_nowhere.reference]
    assert "· nameless</div>" in nameless_row
    assert '<td data-label="Customer">–</td>' in nameless_row
    assert '<span class="muted">Unassigned</span>' in nameless_row
    named_row = rows[named.reference]
    assert f"· {escape(org.employee.get_full_name())}</div>" in named_row
    assert '<td data-label="Customer">Finance</td>' in named_row
    assert f'<td data-label="Assignee">{escape(org.it_agent.get_full_name())}</td>' in named_row
