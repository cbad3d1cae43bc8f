"""Confidential requests (issue 9 §2): visible only to the requester and the supplier
department's named handlers (and admins) — not to every agent of the department, not to its
lead, not to the customer department's lead, not in dashboard lists; counts still include them.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from departments.models import Membership, Service
from reports import selectors as report_selectors
from servicedesk import permissions
from servicedesk.errors import DomainError
from tests.factories import MembershipFactory, UserFactory
from tickets import selectors, services

SECRET_TITLE = "Grievance about my manager Zebulon"


@pytest.fixture
def people(org):
    hr_lead = UserFactory(username="hrlead", home_department=org.hr)
    MembershipFactory(user=hr_lead, department=org.hr, role=Membership.Role.LEAD)
    hr_colleague = UserFactory(username="hrcolleague", home_department=org.hr)
    MembershipFactory(user=hr_colleague, department=org.hr)
    return {"hr_lead": hr_lead, "hr_colleague": hr_colleague}


@pytest.fixture
def grievances(org):
    service = Service.objects.create(department=org.hr, name="Grievance", confidential=True)
    service.handlers.add(org.hr_agent)
    return service


@pytest.fixture
def secret(org, grievances):
    return services.ticket_create(
        requester=org.employee, service=grievances, title=SECRET_TITLE, description="details"
    )


ALLOWED = ["employee", "hr_agent", "admin"]
REFUSED = ["hr_lead", "hr_colleague", "finance_lead", "it_agent", "it_lead", "outsider"]


def _user(org, people, who):
    return people.get(who) or getattr(org, who)


def test_ticket_snapshots_the_confidential_flag(secret):
    assert secret.confidential is True


@pytest.mark.parametrize("who", ALLOWED)
def test_requester_handler_and_admin_see_it(client, org, people, secret, who):
    user = _user(org, people, who)
    assert permissions.can_view_ticket(user, secret)
    assert selectors.ticket_list(user=user).filter(pk=secret.pk).exists()
    client.force_login(user)
    assert client.get(reverse("ticket_detail", args=[secret.reference])).status_code == 200


@pytest.mark.parametrize("who", REFUSED)
def test_nobody_else_sees_it_anywhere(client, org, people, secret, who):
    user = _user(org, people, who)
    assert not permissions.can_view_ticket(user, secret)
    assert not selectors.ticket_list(user=user).filter(pk=secret.pk).exists()
    client.force_login(user)
    assert client.get(reverse("ticket_detail", args=[secret.reference])).status_code == 404
    api = client.get(f"/api/v1/tickets/{secret.reference}/")
    assert api.status_code == 404
    listing = client.get("/api/v1/tickets/", {"page_size": 500})
    assert secret.reference not in listing.content.decode()
    comments = client.get(f"/api/v1/tickets/{secret.reference}/comments/")
    assert comments.status_code == 404


@pytest.mark.parametrize("who", ["hr_lead", "hr_colleague"])
def test_department_queue_and_search_do_not_show_it(client, org, people, secret, who):
    client.force_login(people[who])
    for params in ({}, {"q": "Zebulon"}, {"q": secret.reference}, {"status": "all"}):
        page = client.get(reverse("queue"), params)
        assert page.status_code == 200
        body = page.content.decode()
        assert SECRET_TITLE not in body and f">{secret.reference}<" not in body


def test_a_watcher_outside_the_handlers_still_gets_404(client, org, secret):
    services.ticket_set_watcher(ticket=secret, actor=org.hr_agent, user=org.outsider)
    client.force_login(org.outsider)
    assert client.get(reverse("ticket_detail", args=[secret.reference])).status_code == 404


def test_only_named_handlers_can_be_assigned(org, people, secret):
    with pytest.raises(DomainError):
        services.ticket_assign(ticket=secret, actor=org.hr_agent, assignee=people["hr_colleague"])
    services.ticket_assign(ticket=secret, actor=org.hr_agent, assignee=org.hr_agent)
    secret.refresh_from_db()
    assert secret.assignee == org.hr_agent
    assert not permissions.can_view_ticket(people["hr_colleague"], secret)


def test_moving_a_ticket_to_a_confidential_service_makes_it_confidential(org, grievances):
    plain = Service.objects.create(department=org.hr, name="Letters")
    ticket = services.ticket_create(requester=org.employee, service=plain, title="Letter")
    assert permissions.can_view_ticket(org.hr_agent, ticket)
    ticket = services.ticket_change_service(ticket=ticket, actor=org.hr_agent, service=grievances)
    assert ticket.confidential
    moved_back = services.ticket_change_service(ticket=ticket, actor=org.hr_agent, service=plain)
    assert moved_back.confidential  # once confidential, always confidential


# --- Dashboards: counts include it, lists do not ---------------------------------------------


def test_supplier_dashboard_counts_it(org, secret):
    scope = report_selectors.department_scope(org.hr, "supplier")
    assert report_selectors.live_figures(scope=scope)["open"] == 1


def test_customer_dashboard_counts_it(org, secret):
    scope = report_selectors.department_scope(org.finance, "customer")
    assert report_selectors.live_figures(scope=scope)["open"] == 1


@pytest.mark.parametrize(
    ("who", "side", "department"),
    [("hr_lead", "supplier", "hr"), ("finance_lead", "customer", "finance")],
)
def test_dashboard_drill_down_does_not_list_it(client, org, people, secret, who, side, department):
    user = _user(org, people, who)
    filters = {f"{side}_department": getattr(org, department)}
    listed = report_selectors.dashboard_tickets(user=user, filters=filters)
    assert not listed.filter(pk=secret.pk).exists()
    client.force_login(user)
    page = client.get(reverse("reports:tickets"), {side: department})
    assert page.status_code == 200
    body = page.content.decode()
    assert secret.reference not in body and "Zebulon" not in body


def test_dashboard_drill_down_lists_it_for_the_handler_when_lead(client, org, secret):
    Membership.objects.filter(user=org.hr_agent, department=org.hr).update(role="lead")
    client.force_login(org.hr_agent)
    page = client.get(reverse("reports:tickets"), {"supplier": "hr"})
    assert secret.reference in page.content.decode()


def _rate_badly(org, ticket):
    services.ticket_transition(ticket=ticket, actor=org.hr_agent, to_status="open")
    services.ticket_transition(ticket=ticket, actor=org.hr_agent, to_status="resolved")
    services.ticket_rate(
        ticket=ticket, actor=org.employee, rating=1, comment="Zebulon still shouts at me"
    )


@pytest.mark.parametrize(
    ("who", "url"),
    [
        ("hr_lead", lambda: reverse("reports:department", args=["hr", "supplier"])),
        ("finance_lead", lambda: reverse("reports:department", args=["finance", "customer"])),
        ("hr_lead", lambda: reverse("reports:satisfaction")),
        ("finance_lead", lambda: reverse("reports:satisfaction")),
        ("admin", lambda: reverse("reports:satisfaction")),
    ],
)
def test_low_rating_comment_of_a_confidential_request_is_not_shown(
    client, org, people, secret, who, url
):
    _rate_badly(org, secret)
    client.force_login(_user(org, people, who))
    page = client.get(url())
    assert page.status_code == 200
    assert "Zebulon" not in page.content.decode()


def test_low_rating_comment_of_an_ordinary_request_is_shown(client, org, people):
    plain = Service.objects.create(department=org.hr, name="Letters")
    ticket = services.ticket_create(requester=org.employee, service=plain, title="Letter")
    _rate_badly(org, ticket)
    client.force_login(people["hr_lead"])
    page = client.get(reverse("reports:department", args=["hr", "supplier"]))
    assert "Zebulon still shouts" in page.content.decode()


# --- Escalations and notifications ----------------------------------------------------------


def test_notification_about_a_confidential_request_is_redacted_for_those_who_cannot_see_it(
    org, people, secret
):
    from django.utils import timezone

    from tickets.models import Notification
    from tickets.notifications import notify

    notify(
        recipients=[org.hr_agent, people["hr_lead"], org.finance_lead],
        ticket=secret,
        message=f"{secret.reference} “{SECRET_TITLE}”: the resolution target is breached.",
        dedupe_key="test-redaction",
        now=timezone.now(),
        email=False,
    )
    handler = Notification.objects.get(recipient=org.hr_agent)
    assert handler.ticket == secret and "Zebulon" in handler.message
    for lead in (people["hr_lead"], org.finance_lead):
        notice = Notification.objects.get(recipient=lead)
        assert notice.ticket is None
        assert "Zebulon" not in notice.message and secret.reference not in notice.message
        assert "confidential" in notice.message


def test_escalation_of_a_confidential_request_tells_leads_nothing_and_assigns_no_outsider(
    org, people
):
    from datetime import timedelta

    from django.utils import timezone

    from slas import escalation
    from slas import services as sla_services
    from tests import factories
    from tickets.models import Notification

    always = sla_services.calendar_save(name="24x7", timezone_name="UTC", always_open=True)
    hour = timedelta(hours=1)
    standard = factories.standard(
        name="Grievances",
        calendar=always,
        targets={"P3": (hour, 2 * hour)},
        ladder=[
            (
                "resolution",
                1.0,
                ["notify_supplier_lead", "notify_customer_lead", "reassign_to_lead"],
            )
        ],
    )
    service = Service.objects.create(
        department=org.hr, name="Grievance", confidential=True, standard=standard
    )
    service.handlers.add(org.hr_agent)
    filed_at = timezone.now() - 3 * hour
    ticket = services.ticket_create(
        requester=org.employee, service=service, title=SECRET_TITLE, now=filed_at
    )
    escalation.sla_escalate(ticket_id=ticket.pk, now=filed_at + 2 * hour + timedelta(seconds=1))
    notices = Notification.objects.filter(recipient__in=[people["hr_lead"], org.finance_lead])
    assert notices.count() == 2
    for notice in notices:
        assert notice.ticket is None and "Zebulon" not in notice.message
    ticket.refresh_from_db()
    assert ticket.assignee_id != people["hr_lead"].pk
    assert not permissions.can_view_ticket(people["hr_lead"], ticket)


@pytest.mark.parametrize(("who", "side"), [("hr_lead", "supplier"), ("finance_lead", "customer")])
def test_csv_export_of_tickets_leaves_it_out(client, org, people, secret, who, side):
    department = "hr" if side == "supplier" else "finance"
    client.force_login(_user(org, people, who))
    response = client.get(reverse("reports:export_csv", args=["tickets"]), {side: department})
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    assert "reference" in body  # the header row: the export ran
    assert secret.reference not in body and "Zebulon" not in body


def test_reassign_to_lead_hands_it_to_a_lead_who_is_a_named_handler(org, people):
    """The positive side of the rule above: a lead who *is* a named handler is picked (and,
    since it may open the request, its notice is not redacted)."""
    from datetime import timedelta

    from django.utils import timezone

    from slas import escalation
    from slas import services as sla_services
    from slas.models import Escalation
    from tests import factories
    from tickets.models import Event, Notification

    second_lead = UserFactory(username="hrlead2", home_department=org.hr)
    MembershipFactory(user=second_lead, department=org.hr, role=Membership.Role.LEAD)
    always = sla_services.calendar_save(name="24x7", timezone_name="UTC", always_open=True)
    hour = timedelta(hours=1)
    standard = factories.standard(
        name="Grievances",
        calendar=always,
        targets={"P3": (hour, 2 * hour)},
        ladder=[("resolution", 1.0, ["notify_supplier_lead", "reassign_to_lead"])],
    )
    service = Service.objects.create(
        department=org.hr, name="Grievance", confidential=True, standard=standard
    )
    # Of the two HR leads only the second is a named handler (hrlead sorts first).
    service.handlers.add(org.hr_agent, second_lead)
    filed_at = timezone.now() - 3 * hour
    ticket = services.ticket_create(
        requester=org.employee, service=service, title=SECRET_TITLE, now=filed_at
    )
    services.ticket_assign(ticket=ticket, actor=org.hr_agent, assignee=org.hr_agent, now=filed_at)

    escalation.sla_escalate(ticket_id=ticket.pk, now=filed_at + 2 * hour + timedelta(seconds=1))

    ticket.refresh_from_db()
    assert ticket.assignee_id == second_lead.pk
    assert Event.objects.filter(ticket=ticket, kind="assigned", after="hrlead2").exists()
    fired = Escalation.objects.get(ticket=ticket)
    assert {"action": "reassign_to_lead", "before": "hragent", "after": "hrlead2"} in fired.actions
    handler_notice = Notification.objects.get(recipient=second_lead)
    assert handler_notice.ticket == ticket and "Zebulon" in handler_notice.message
    outsider_notice = Notification.objects.get(recipient=people["hr_lead"])
    assert outsider_notice.ticket is None and "Zebulon" not in outsider_notice.message


def test_email_copy_of_a_redacted_notice_has_no_title_reference_or_link(org, people, secret):
    from django.core import mail
    from django.utils import timezone

    from tickets.models import Notification
    from tickets.notifications import notify
    from tickets.tasks import notification_send_emails

    notify(
        recipients=[org.hr_agent, people["hr_lead"]],
        ticket=secret,
        message=f"{secret.reference} “{SECRET_TITLE}”: the resolution target is breached.",
        dedupe_key="test-redacted-email",
        now=timezone.now(),
        email=False,
    )
    notification_send_emails(list(Notification.objects.values_list("pk", flat=True)))

    sent = {message.to[0]: message for message in mail.outbox}
    lead_mail = sent[people["hr_lead"].email]
    for text in (lead_mail.subject, lead_mail.body):
        assert "Zebulon" not in text and secret.reference not in text
    assert "/tickets/" not in lead_mail.body
    handler_mail = sent[org.hr_agent.email]
    assert "Zebulon" in handler_mail.subject
    assert f"/tickets/{secret.reference}/" in handler_mail.body


# --- Every ticket route answers a refused user as if the request did not exist ---------------


def _ticket_routes():
    """Every route of the project (UI and API, from the URL resolver) that names a ticket by
    its reference, so a new ticket page or action is covered automatically."""
    from tests.test_permission_matrix import walk

    return [route for route in walk() if "reference" in route.params]


def _routes_url(route, reference: str) -> str:
    kwargs = {"reference": reference}
    if "format" in route.params:
        kwargs["format"] = "json"
    return reverse(route.name, kwargs=kwargs)


def test_the_sweep_finds_the_ui_and_api_ticket_routes():
    names = {route.name for route in _ticket_routes()}
    assert {"ticket_detail", "ticket_comment", "ticket_rate", "ticket-detail"} <= names
    assert {"ticket-comments", "ticket-transition", "ticket-assign"} <= names


@pytest.mark.parametrize("who", REFUSED)
def test_every_ticket_route_answers_as_for_a_ticket_that_does_not_exist(
    client, org, people, secret, who
):
    from tickets.models import Comment, Event

    user = _user(org, people, who)
    client.force_login(user)
    before = (Event.objects.count(), Comment.objects.count(), secret.watchers.count())
    body = {"body": "hello", "to_status": "cancelled", "assignee": user.username, "rating": 1}
    problems = []
    for route in _ticket_routes():
        api = route.pattern.startswith("api/")
        methods = ("get", "post", "put", "patch", "delete") if api else ("get", "post")
        for method in methods:
            answers = []
            for reference in (secret.reference, "HR-999999"):
                url = _routes_url(route, reference)
                if api and method != "get":
                    response = getattr(client, method)(
                        url, data=body, content_type="application/json"
                    )
                else:
                    response = getattr(client, method)(
                        url, **({"data": body} if method == "post" else {})
                    )
                answers.append(response.status_code)
                if reference == secret.reference:
                    content = b"".join(response) if response.streaming else response.content
                    if b"Zebulon" in content:
                        problems.append(f"{method.upper()} {url}: the title leaks")
            if answers[0] != answers[1] or answers[0] not in (404, 405):
                problems.append(
                    f"{method.upper()} {route.pattern}: {answers[0]} for the confidential "
                    f"request, {answers[1]} for a missing one"
                )
    assert not problems, "\n".join(problems)
    assert (Event.objects.count(), Comment.objects.count(), secret.watchers.count()) == before


@pytest.mark.parametrize("who", REFUSED)
def test_its_attachments_answer_404(client, org, people, grievances, who):
    from django.core.files.uploadedfile import SimpleUploadedFile

    ticket = services.ticket_create(
        requester=org.employee,
        service=grievances,
        title=SECRET_TITLE,
        attachments=[SimpleUploadedFile("zebulon.txt", b"notes", content_type="text/plain")],
    )
    client.force_login(_user(org, people, who))
    url = reverse("attachment_download", args=[ticket.attachments.get().pk])
    assert client.get(url).status_code == 404
