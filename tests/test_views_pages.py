"""Sign in and out, the home page per role, the service catalogue with its published
standards and expected-by times, and My requests — with fixed query counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests import factories
from tests.conftest import MONDAY_10
from tickets import services
from tickets.models import Ticket


def file(org, title="Request", *, requester=None, service=None) -> Ticket:
    return services.ticket_create(
        requester=requester or org.employee, service=service or org.service, title=title
    )


# --- Sign in / out ------------------------------------------------------------------------


def test_login_page_has_labelled_fields(client, db):
    body = client.get(reverse("login")).content.decode()
    assert '<label for="id_username">' in body and '<label for="id_password">' in body
    assert '<main id="main"' in body


def test_employee_signs_in_and_lands_on_home(client, org):
    response = client.post(reverse("login"), {"username": "employee", "password": "pw"})
    assert response.status_code == 302 and response["Location"] == reverse("home")
    body = client.get(reverse("home")).content.decode()
    assert "My requests" in body and "Service catalogue" in body


def test_wrong_password_says_so_without_a_500(client, org):
    response = client.post(reverse("login"), {"username": "employee", "password": "nope"})
    assert response.status_code == 200
    assert "did not match" in response.content.decode()


def test_sign_out_is_a_post_and_ends_the_session(client, org):
    client.force_login(org.employee)
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 302


@pytest.mark.parametrize("name", ["home", "catalogue", "my_requests", "queue", "ticket_new"])
def test_pages_send_anonymous_visitors_to_sign_in(client, db, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


# --- Home per role ------------------------------------------------------------------------


def test_employee_home_shows_own_recent_requests_and_the_catalogue(client, org):
    mine = file(org, "Mine")
    other = file(org, "Theirs", requester=org.outsider)
    client.force_login(org.employee)
    body = client.get(reverse("home")).content.decode()
    assert mine.reference in body
    assert other.reference not in body
    assert org.service.name in body and org.hr_service.name in body


@pytest.mark.parametrize("who", ["it_agent", "it_lead", "admin"])
def test_agents_and_leads_start_at_the_queue(client, org, who):
    client.force_login(getattr(org, who))
    assert client.get(reverse("home"))["Location"] == reverse("queue")


def test_navigation_offers_the_queue_only_to_agents(client, org):
    client.force_login(org.employee)
    assert reverse("queue") not in client.get(reverse("my_requests")).content.decode()
    client.force_login(org.it_agent)
    assert f'href="{reverse("queue")}"' in client.get(reverse("my_requests")).content.decode()


def test_current_page_is_marked_for_screen_readers(client, org):
    client.force_login(org.employee)
    body = client.get(reverse("catalogue")).content.decode()
    assert f'<a href="{reverse("catalogue")}" aria-current="page">' in body


# --- Catalogue ----------------------------------------------------------------------------


def test_catalogue_lists_every_supplier_and_its_services(client, org):
    client.force_login(org.employee)
    body = client.get(reverse("catalogue")).content.decode()
    for text in ("IT", "HR", org.service.name, org.hr_service.name):
        assert text in body
    assert f"{reverse('ticket_new')}?service={org.service.pk}" in body


def test_catalogue_publishes_the_standard_in_business_time(client, org):
    client.force_login(org.employee)
    body = client.get(reverse("catalogue")).content.decode()
    # P3 default priority: first response 4 h, resolution 16 h = two 8-hour days.
    assert "within 4 business hours" in body
    assert "within 2 business days" in body


def test_catalogue_says_when_a_request_filed_now_is_expected(client, org):
    with time_machine.travel(MONDAY_10, tick=False):
        client.force_login(org.employee)
        body = client.get(reverse("catalogue")).content.decode()
    # Monday 10:00 Berlin + 4 business hours = Monday 14:00; + 16 = Wednesday 10:00.
    assert "Mon 12 Jan, 14:00" in body
    assert "Wed 14 Jan, 10:00" in body


def test_catalogue_search_narrows_services(client, org):
    factories.ServiceFactory(department=org.it, name="Printer toner", description="Ink")
    client.force_login(org.employee)
    body = client.get(reverse("catalogue") + "?q=toner").content.decode()
    assert "Printer toner" in body
    assert org.service.name not in body
    assert org.hr_service.name not in body


def test_catalogue_search_without_match_explains(client, org):
    client.force_login(org.employee)
    body = client.get(reverse("catalogue") + "?q=zzzz").content.decode()
    assert "No services match" in body


def test_catalogue_hides_inactive_services(client, org):
    factories.ServiceFactory(department=org.it, name="Retired fax", active=False)
    client.force_login(org.employee)
    assert "Retired fax" not in client.get(reverse("catalogue")).content.decode()


def test_service_without_standard_says_so(client, org):
    bare = factories.DepartmentFactory(name="Canteen", code="CAN")
    factories.ServiceFactory(department=bare, name="Lunch order")
    client.force_login(org.employee)
    assert "No published service standard." in client.get(reverse("catalogue")).content.decode()


# --- My requests --------------------------------------------------------------------------


def refs(client, user, query: str = "") -> list[str]:
    client.force_login(user)
    response = client.get(reverse("my_requests") + query)
    assert response.status_code == 200
    body = response.content.decode()
    return [
        chunk.split('"')[0].split("/")[0]
        for chunk in body.split('class="ticket-link" href="/tickets/')[1:]
    ]


def test_my_requests_lists_only_what_i_filed(client, org):
    mine = file(org)
    file(org, requester=org.outsider)
    assert refs(client, org.employee) == [mine.reference]


def test_my_requests_shows_status_supplier_and_sla(client, org):
    file(org)
    client.force_login(org.employee)
    body = client.get(reverse("my_requests")).content.decode()
    assert "status-new" in body
    assert ">IT</td>" in body
    assert "badge sla sla-" in body


def test_my_requests_filters_status_and_supplier(client, org):
    it = file(org)
    hr = file(org, service=org.hr_service)
    services.ticket_transition(ticket=hr, actor=org.employee, to_status="cancelled")
    assert refs(client, org.employee) == [it.reference]
    assert refs(client, org.employee, "?status=cancelled") == [hr.reference]
    assert refs(client, org.employee, f"?status=all&supplier_department={org.hr.pk}") == [
        hr.reference
    ]


def test_my_requests_watching_scope(client, org):
    watched = file(org, requester=org.finance_lead)
    services.ticket_set_watcher(ticket=watched, actor=org.it_agent, user=org.employee)
    own = file(org)
    assert refs(client, org.employee) == [own.reference]
    assert refs(client, org.employee, "?scope=watching") == [watched.reference]


def test_my_requests_empty_state_explains(client, org):
    client.force_login(org.employee)
    assert "No requests match" in client.get(reverse("my_requests")).content.decode()


# --- Query budgets ------------------------------------------------------------------------


def _queries(client, url) -> int:
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize(
    "name,query", [("my_requests", ""), ("my_requests", "?sla=at_risk&status=all"), ("home", "")]
)
def test_employee_lists_run_a_fixed_number_of_queries(client, org, name, query):
    client.force_login(org.employee)
    url = reverse(name) + query
    with time_machine.travel(MONDAY_10, tick=False):
        for i in range(2):
            file(org, f"A{i}")
        few = _queries(client, url)
        for i in range(30):
            file(org, f"B{i}", service=org.hr_service if i % 2 else org.service)
        many = _queries(client, url)
    assert few == many


@pytest.mark.parametrize("name", ["catalogue", "ticket_new"])
def test_catalogue_pages_run_a_fixed_number_of_queries(client, org, name):
    client.force_login(org.employee)
    few = _queries(client, reverse(name))
    for i in range(30):
        factories.ServiceFactory(department=org.hr if i % 2 else org.it, name=f"Extra {i}")
    many = _queries(client, reverse(name))
    assert few == many


def test_list_page_query_budgets(client, org, django_assert_max_num_queries):
    for i in range(30):
        file(org, f"T{i}")
    client.force_login(org.employee)
    for url, budget in [
        (reverse("my_requests"), 12),
        (reverse("home"), 16),
        (reverse("catalogue"), 12),
        (reverse("ticket_new"), 12),
    ]:
        client.get(url)
        with django_assert_max_num_queries(budget):
            client.get(url)


def test_home_lists_at_most_five_recent_requests(client, org):
    with time_machine.travel(MONDAY_10, tick=False):
        tickets = [file(org, f"T{i}") for i in range(7)]
    for i, ticket in enumerate(tickets):
        with time_machine.travel(MONDAY_10 + timedelta(minutes=i + 1), tick=False):
            services.ticket_comment(ticket=ticket, author=org.employee, body="bump")
    client.force_login(org.employee)
    body = client.get(reverse("home")).content.decode()
    shown = [t.reference for t in tickets if f">{t.reference}</span>" in body]
    assert shown == [t.reference for t in tickets[2:]]
