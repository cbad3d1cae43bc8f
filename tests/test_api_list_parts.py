"""The API ticket list is read in parts (a person's requests, what they watch, their departments'
queues), each an index lookup where one query filtered the whole history: the same tickets,
order, cursors and capped count as that one query."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from servicedesk import permissions
from servicedesk.api.pagination import CappedKeysetPagination
from tests.factories import ServiceFactory, UserFactory
from tickets import services
from tickets.models import Ticket


@pytest.fixture
def history(org):
    """The employee's own requests, tickets they watch (one of them confidential, which a
    watcher may not see), and tickets of others that they may not see."""
    secret = ServiceFactory(department=org.it, name="Payroll dispute", confidential=True)
    colleague = UserFactory(home_department=org.finance)
    own = [
        services.ticket_create(requester=org.employee, service=org.service, title=f"Mine {n}")
        for n in range(5)
    ]
    watched = [
        services.ticket_create(requester=colleague, service=service, title=title)
        for service, title in ((org.service, "Watched"), (secret, "Watched secret"))
    ]
    for ticket in watched:
        services.ticket_set_watcher(
            ticket=ticket, actor=org.admin, user=org.employee, watching=True
        )
    for n in range(3):
        services.ticket_create(requester=colleague, service=org.service, title=f"Not mine {n}")
    return {"own": own, "watched": watched}


def _visible_refs(user) -> set[str]:
    return set(
        permissions.visible_tickets(Ticket.objects.all(), user).values_list("reference", flat=True)
    )


def _parts_refs(user) -> set[str]:
    refs = set()
    for part in permissions.visible_ticket_parts(Ticket.objects.all(), user):
        refs |= set(part.values_list("reference", flat=True))
    return refs


@pytest.mark.parametrize(
    "who", ["employee", "it_agent", "it_lead", "admin", "outsider", "finance_lead"]
)
def test_the_parts_of_a_persons_list_are_what_they_may_see(org, history, who):
    user = getattr(org, who)
    assert _parts_refs(user) == _visible_refs(user)


def test_a_list_is_read_in_one_part_per_way_of_seeing_and_an_admins_in_one(org, history):
    assert len(permissions.visible_ticket_parts(Ticket.objects.all(), org.employee)) == 2
    assert len(permissions.visible_ticket_parts(Ticket.objects.all(), org.it_agent)) == 3
    assert len(permissions.visible_ticket_parts(Ticket.objects.all(), org.admin)) == 1


def _get(client, user, url):
    token, _ = Token.objects.get_or_create(user=user)
    response = client.get(url, HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200, response.content
    return response.json()


def _walk(client, user, query: str) -> list[dict]:
    """Every page forward, then back again from the last page; both must agree."""
    pages = [_get(client, user, f"/api/v1/tickets/?{query}")]
    while pages[-1]["next"]:
        pages.append(_get(client, user, pages[-1]["next"]))
    forward = [row["reference"] for page in pages for row in page["results"]]
    back = [pages[-1]]
    while back[-1]["previous"]:
        back.append(_get(client, user, back[-1]["previous"]))
    backward = [row["reference"] for page in reversed(back) for row in page["results"]]
    assert backward == forward
    return pages


@pytest.mark.parametrize("ordering", ["-created_at", "priority", "-priority", "status"])
def test_an_employees_pages_in_parts_list_what_they_see_in_order(client, org, history, ordering):
    pages = _walk(client, org.employee, f"ordering={ordering}&page_size=2")
    listed = [row["reference"] for page in pages for row in page["results"]]
    field = ordering.lstrip("-")
    expected = list(
        permissions.visible_tickets(Ticket.objects.all(), org.employee)
        .order_by(ordering, f"{'-' if ordering.startswith('-') else ''}pk")
        .values_list("reference", flat=True)
    )
    assert listed == expected, field
    assert len(listed) == 6  # five requests and one watched ticket; not the confidential one
    assert pages[0]["count"] == 6 and pages[0]["count_capped"] is False


def test_an_employees_count_in_parts_stops_at_the_cap(client, org, history, monkeypatch):
    monkeypatch.setattr(CappedKeysetPagination, "count_cap", 3)
    page = _get(client, org.employee, "/api/v1/tickets/?page_size=2")
    assert (page["count"], page["count_capped"]) == (3, True)
    monkeypatch.setattr(CappedKeysetPagination, "count_cap", 6)
    page = _get(client, org.employee, "/api/v1/tickets/?page_size=2")
    assert (page["count"], page["count_capped"]) == (6, False)
    monkeypatch.setattr(CappedKeysetPagination, "count_cap", 5)
    page = _get(client, org.employee, "/api/v1/tickets/?page_size=2")
    assert (page["count"], page["count_capped"]) == (5, True)


def test_an_employees_filtered_list_in_parts_applies_the_filter_to_each_part(client, org, history):
    services.ticket_change_priority(ticket=history["watched"][0], actor=org.it_agent, priority="P1")
    services.ticket_change_priority(ticket=history["own"][0], actor=org.it_agent, priority="P1")
    page = _get(client, org.employee, "/api/v1/tickets/?priority=P1")
    assert {row["reference"] for row in page["results"]} == {
        history["watched"][0].reference,
        history["own"][0].reference,
    }
    assert page["count"] == 2


def test_an_employees_list_in_parts_reads_each_part_by_itself(client, org, history, monkeypatch):
    from servicedesk.api import pagination
    from servicedesk.prepared import PreparedShapes

    # Shapes learnt by no earlier test: their SQL goes out with this request's PREPAREs.
    monkeypatch.setattr(pagination, "_SHAPES", PreparedShapes())
    token, _ = Token.objects.get_or_create(user=org.employee)
    with CaptureQueriesContext(connection) as queries:
        client.get("/api/v1/tickets/", HTTP_AUTHORIZATION=f"Token {token.key}")
    unions = [q["sql"] for q in queries.captured_queries if " UNION " in q["sql"]]
    # The page's keys and the count; neither filters the history by an OR of both parts.
    assert len(unions) == 2
    assert all(" OR " not in sql for sql in unions)


@pytest.mark.parametrize("ordering", ["-created_at", "-updated_at", "priority"])
def test_an_agents_pages_in_parts_list_what_they_see_in_order(client, org, history, ordering):
    mine = services.ticket_create(requester=org.it_agent, service=org.hr_service, title="Mine")
    pages = _walk(client, org.it_agent, f"ordering={ordering}&page_size=3")
    listed = [row["reference"] for page in pages for row in page["results"]]
    expected = list(
        permissions.visible_tickets(Ticket.objects.all(), org.it_agent)
        .order_by(ordering, f"{'-' if ordering.startswith('-') else ''}pk")
        .values_list("reference", flat=True)
    )
    assert listed == expected
    assert mine.reference in listed  # filed with HR: seen as its requester, not as an agent
    assert history["watched"][1].reference not in listed  # confidential, not theirs
    assert pages[0]["count"] == len(expected)


def _cursor_of(link):
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(link).query).get("cursor") if link else None


@pytest.mark.parametrize("ordering", ["-created_at", "created_at", "-updated_at", "number"])
@pytest.mark.parametrize("who", ["employee", "it_agent", "admin", "two_departments"])
def test_the_whole_list_by_its_shape_reads_what_the_compiled_list_reads(
    client, org, history, ordering, who
):
    """With no filter, the list's SQL is compiled once per shape and the person's values put
    in (PreparedShapes); `status=` (an empty filter) takes the path that compiles it."""
    from departments.models import Membership
    from tests.factories import MembershipFactory

    if who == "two_departments":
        user = UserFactory(home_department=org.hr)
        MembershipFactory(user=user, department=org.it)
        MembershipFactory(user=user, department=org.hr, role=Membership.Role.LEAD)
    else:
        user = getattr(org, who)
    services.ticket_create(requester=user, service=org.hr_service, title="Their own")
    shaped = _walk(client, user, f"ordering={ordering}&page_size=2")
    compiled = _walk(client, user, f"ordering={ordering}&page_size=2&status=")
    assert len(shaped) == len(compiled) > 1
    for mine, theirs in zip(shaped, compiled, strict=True):
        assert mine["results"] == theirs["results"]
        assert (mine["count"], mine["count_capped"]) == (theirs["count"], theirs["count_capped"])
        assert _cursor_of(mine["next"]) == _cursor_of(theirs["next"])
        assert _cursor_of(mine["previous"]) == _cursor_of(theirs["previous"])


def test_a_shape_learnt_for_one_person_serves_another_without_compiling(client, org, history):
    _get(client, org.employee, "/api/v1/tickets/?page_size=2")
    other = UserFactory(home_department=org.finance)
    mine = services.ticket_create(requester=other, service=org.service, title="Other's")
    with CaptureQueriesContext(connection) as queries:
        page = _get(client, other, "/api/v1/tickets/?page_size=2")
    assert [row["reference"] for row in page["results"]] == [mine.reference]
    assert page["count"] == 1
    ticket_reads = [q["sql"] for q in queries.captured_queries if "tickets_ticket" in q["sql"]]
    assert ticket_reads == []  # every read of the list was an EXECUTE of a prepared statement
