"""SPEC §6 per role, through the selectors and pages: what may not be seen answers 404."""

import pytest
from django.urls import reverse

from servicedesk import permissions
from tickets import selectors, services
from tickets.models import Ticket


@pytest.fixture
def ticket(org):
    ticket = services.ticket_create(requester=org.employee, service=org.service, title="Mouse")
    services.ticket_comment(ticket=ticket, author=org.it_agent, body="SECRET NOTE", internal=True)
    services.ticket_comment(ticket=ticket, author=org.it_agent, body="Public answer")
    return ticket


def visible(user):
    return set(selectors.ticket_list(user=user).values_list("reference", flat=True))


def test_requester_sees_own_request(org, ticket):
    assert visible(org.employee) == {ticket.reference}


def test_agent_sees_department_queue(org, ticket):
    assert ticket.reference in visible(org.it_agent)


def test_agent_of_other_department_does_not_see_ticket(org, ticket):
    assert visible(org.hr_agent) == set()


def test_customer_lead_does_not_see_colleagues_requests(org, ticket):
    assert visible(org.finance_lead) == set()


def test_watcher_sees_ticket(org, ticket):
    services.ticket_set_watcher(ticket=ticket, actor=org.it_agent, user=org.outsider)
    assert visible(org.outsider) == {ticket.reference}


def test_admin_sees_everything(org, ticket):
    assert ticket.reference in visible(org.admin)


def test_queryset_and_object_rules_agree(org, ticket):
    users = [
        org.employee,
        org.it_agent,
        org.it_lead,
        org.hr_agent,
        org.finance_lead,
        org.admin,
        org.outsider,
    ]
    for user in users:
        assert permissions.can_view_ticket(user, ticket) == (ticket.reference in visible(user))


@pytest.mark.parametrize("who", ["hr_agent", "finance_lead", "outsider"])
def test_ticket_page_answers_404_for_those_who_may_not_see(client, org, ticket, who):
    client.force_login(getattr(org, who))
    response = client.get(reverse("ticket_detail", args=[ticket.reference]))
    assert response.status_code == 404


def test_unknown_reference_answers_404(client, org):
    client.force_login(org.employee)
    assert client.get(reverse("ticket_detail", args=["IT-999"])).status_code == 404


def test_requester_never_sees_internal_note(client, org, ticket):
    client.force_login(org.employee)
    body = client.get(reverse("ticket_detail", args=[ticket.reference])).content.decode()
    assert "Public answer" in body
    assert "SECRET NOTE" not in body


def test_agent_sees_internal_note(client, org, ticket):
    client.force_login(org.it_agent)
    body = client.get(reverse("ticket_detail", args=[ticket.reference])).content.decode()
    assert "SECRET NOTE" in body


def test_employee_cannot_add_internal_note(org, ticket):
    from servicedesk.errors import DomainError

    with pytest.raises(DomainError):
        services.ticket_comment(ticket=ticket, author=org.employee, body="x", internal=True)


def test_anonymous_is_sent_to_login(client, ticket):
    response = client.get(reverse("ticket_detail", args=[ticket.reference]))
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_confidential_ticket_hidden_from_unnamed_agents_and_leads(org):
    org.service.confidential = True
    org.service.save()
    org.service.handlers.add(org.it_agent)
    secret = services.ticket_create(requester=org.employee, service=org.service, title="Pay")
    assert secret.reference in visible(org.it_agent)
    assert secret.reference not in visible(org.it_lead)
    assert secret.reference not in visible(org.finance_lead)
    assert permissions.can_view_ticket(org.it_lead, secret) is False


def test_dashboard_permission_is_lead_of_own_department(org):
    assert permissions.can_view_dashboard(org.it_lead, org.it)
    assert not permissions.can_view_dashboard(org.it_agent, org.it)
    assert not permissions.can_view_dashboard(org.finance_lead, org.it)
    assert permissions.can_view_dashboard(org.admin, org.hr)


def test_standards_config_only_where_admin_allows(org):
    assert not permissions.can_configure_department(org.it_lead, org.it)
    org.it.leads_may_configure = True
    assert permissions.can_configure_department(org.it_lead, org.it)
    assert not permissions.can_configure_department(org.it_agent, org.it)
    assert permissions.can_configure_department(org.admin, org.hr)


def fresh(user):
    """The person as a new request loads it: no permission answers cached yet."""
    return type(user).objects.get(pk=user.pk)


def test_roles_and_configurable_departments_are_read_in_one_query(org, django_assert_num_queries):
    org.it.leads_may_configure = True
    org.it.save()
    lead = fresh(org.it_lead)
    with django_assert_num_queries(1):
        assert permissions.is_agent(lead) and permissions.is_lead(lead)
        assert permissions.configurable_department_ids(lead) == {org.it.pk}
        assert permissions.can_open_configuration(lead)
        assert permissions.memberships(lead) == {org.it.pk: "lead"}


def test_configurable_departments_need_the_lead_role_and_the_departments_consent(org):
    org.it.leads_may_configure = True
    org.it.save()
    assert permissions.configurable_department_ids(fresh(org.it_agent)) == set()
    assert permissions.configurable_department_ids(fresh(org.finance_lead)) == set()
    assert not permissions.can_open_configuration(fresh(org.finance_lead))


def test_removing_a_lead_clears_both_cached_permission_answers(org):
    from departments.services import membership_set

    org.it.leads_may_configure = True
    org.it.save()
    lead = fresh(org.it_lead)
    assert permissions.can_open_configuration(lead)
    membership_set(user=lead, department=org.it, role=None)
    assert permissions.memberships(lead) == {}
    assert permissions.configurable_department_ids(lead) == set()


def test_queue_lists_only_own_department(client, org, ticket):
    hr_ticket = services.ticket_create(requester=org.employee, service=org.hr_service, title="HR")
    client.force_login(org.it_agent)
    body = client.get(reverse("queue")).content.decode()
    assert ticket.reference in body
    assert hr_ticket.reference not in body
    assert Ticket.objects.count() == 2


def test_queue_shows_exactly_the_visible_tickets_of_the_agents_departments(org):
    """permissions.department_tickets_filter (the queue's) against visible_tickets_filter
    narrowed to the agent's departments, over every combination that decides visibility."""
    from django.utils import timezone

    from departments.models import Membership, Service
    from tests.factories import MembershipFactory, UserFactory

    handler = UserFactory(username="handler", home_department=org.it)
    MembershipFactory(user=handler, department=org.it)
    both = UserFactory(username="both", home_department=org.hr)
    MembershipFactory(user=both, department=org.it)
    MembershipFactory(user=both, department=org.hr, role=Membership.Role.LEAD)
    it_secret = Service.objects.create(department=org.it, name="IT secret", confidential=True)
    it_secret.handlers.add(handler)
    hr_secret = Service.objects.create(department=org.hr, name="HR secret", confidential=True)
    hr_secret.handlers.add(both)
    people = [org.it_agent, handler, both, org.hr_agent, org.employee]
    for service in (org.service, it_secret, org.hr_service, hr_secret):
        for requester in people:
            for assignee in (None, org.it_agent, both):
                for watcher in (None, org.it_agent, org.hr_agent):
                    ticket = services.ticket_create(
                        requester=requester, service=service, title="Case"
                    )
                    Ticket.objects.filter(pk=ticket.pk).update(assignee=assignee)
                    if watcher:
                        ticket.watchers.add(watcher)
    lens = selectors.SlaLens(now=timezone.now())
    for agent in (org.it_agent, handler, both, org.hr_agent, org.admin):
        agent = fresh(agent)
        queue = selectors.ticket_queue(user=agent, filters={"status": "all"}, lens=lens)
        everything = permissions.visible_tickets(Ticket.objects.all(), agent)
        if not permissions.is_admin(agent):
            everything = everything.filter(
                supplier_department_id__in=permissions.agent_department_ids(agent)
            )
        expected = set(everything.values_list("pk", flat=True))
        assert set(queue.values_list("pk", flat=True)) == expected, agent.username
        assert expected  # each sees some of the world


def test_department_tickets_filter_refuses_departments_the_person_does_not_work(org):
    with pytest.raises(ValueError):
        permissions.department_tickets_filter(fresh(org.it_agent), {org.hr.pk})
