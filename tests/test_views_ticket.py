"""The ticket pages per role: filing, the conversation, status changes, watchers, links,
rating, and the query budget of a long ticket."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from departments.models import Membership
from servicedesk import permissions
from tests import factories
from tests.conftest import MONDAY_10
from tickets import selectors, services
from tickets.api import ticket_etag
from tickets.forms import ServiceChangeForm
from tickets.models import Attachment, Event, SatisfactionRating, Status, Ticket


def page(client, user, ticket):
    client.force_login(user)
    return client.get(reverse("ticket_detail", args=[ticket.reference]))


def post(client, user, name, ticket, data, **extra):
    client.force_login(user)
    return client.post(reverse(name, args=[ticket.reference]), data, **extra)


@pytest.fixture
def ticket(org):
    return services.ticket_create(
        requester=org.employee,
        service=org.service,
        title="Laptop will not start",
        description="It **beeps** twice.",
    )


# --- Filing a request ---------------------------------------------------------------------


def test_new_request_form_preselects_the_service_from_the_catalogue(client, org):
    client.force_login(org.employee)
    body = client.get(reverse("ticket_new") + f"?service={org.service.pk}").content.decode()
    assert f'<option value="{org.service.pk}" selected data-default-priority="P3"' in body


def test_filing_a_request_redirects_to_its_page(client, org):
    client.force_login(org.employee)
    response = client.post(
        reverse("ticket_new"),
        {"service": org.service.pk, "title": "Broken screen", "description": "Cracked"},
    )
    ticket = Ticket.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("ticket_detail", args=[ticket.reference])
    assert ticket.requester == org.employee
    assert ticket.customer_department == org.finance


def test_missing_title_is_shown_next_to_the_field_and_typed_text_is_kept(client, org):
    client.force_login(org.employee)
    response = client.post(
        reverse("ticket_new"),
        {"service": org.service.pk, "title": "", "description": "My long explanation"},
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert 'id="id_title_error"' in body
    assert 'aria-invalid="true"' in body
    assert "My long explanation" in body
    assert Ticket.objects.count() == 0


def test_attachment_over_the_size_limit_is_refused_with_a_clear_message(client, org, settings):
    settings.ATTACHMENT_MAX_BYTES = 1024 * 1024
    client.force_login(org.employee)
    big = SimpleUploadedFile("huge.pdf", b"x" * (1024 * 1024 + 1), content_type="application/pdf")
    response = client.post(
        reverse("ticket_new"),
        {"service": org.service.pk, "title": "Scan", "description": "Kept", "attachments": big},
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert "huge.pdf is larger than the 1 MB limit." in body
    assert 'id="id_attachments_error"' in body
    assert "Kept" in body and 'value="Scan"' in body
    assert Ticket.objects.count() == 0


def test_attachment_of_a_refused_type_is_refused_with_a_clear_message(client, org):
    client.force_login(org.employee)
    exe = SimpleUploadedFile("tool.exe", b"MZ", content_type="application/x-msdownload")
    response = client.post(
        reverse("ticket_new"),
        {"service": org.service.pk, "title": "Tool", "attachments": exe},
    )
    assert response.status_code == 400
    assert "tool.exe: files of type application/x-msdownload are not accepted." in (
        response.content.decode()
    )


def test_accepted_attachment_is_listed_on_the_ticket(client, org):
    client.force_login(org.employee)
    pdf = SimpleUploadedFile("invoice.pdf", b"%PDF-1.4", content_type="application/pdf")
    client.post(
        reverse("ticket_new"), {"service": org.service.pk, "title": "Pay", "attachments": pdf}
    )
    ticket = Ticket.objects.get()
    assert Attachment.objects.get().filename == "invoice.pdf"
    assert "invoice.pdf" in page(client, org.employee, ticket).content.decode()


def test_priority_refused_by_the_service_is_shown_next_to_the_priority(client, org):
    org.service.requester_may_set_priority = False
    org.service.save()
    client.force_login(org.employee)
    response = client.post(
        reverse("ticket_new"), {"service": org.service.pk, "title": "Now!", "priority": "P1"}
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert 'id="id_priority_error"' in body
    assert "does not let requesters choose the priority" in body


def test_preview_without_javascript_renders_sanitised_markdown_and_files_nothing(client, org):
    client.force_login(org.employee)
    response = client.post(
        reverse("ticket_new"),
        {
            "service": org.service.pk,
            "title": "Kept title",
            "description": "**bold** <script>alert(1)</script>",
            "preview": "description",
        },
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "<strong>bold</strong>" in body
    assert "<script>alert(1)</script>" not in body
    assert 'value="Kept title"' in body
    assert Ticket.objects.count() == 0


def test_preview_endpoint_uses_the_same_sanitiser(client, org):
    client.force_login(org.employee)
    response = client.post(
        reverse("markdown_preview"),
        {"text": "*hi* [x](javascript:alert(1)) <img src=x onerror=alert(1)>"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "<em>hi</em>" in html
    assert "javascript:" not in html
    assert "onerror" not in html and "<img" not in html


def test_preview_endpoint_needs_sign_in_and_post(client, org):
    assert client.post(reverse("markdown_preview"), {"text": "x"}).status_code == 302
    client.force_login(org.employee)
    assert client.get(reverse("markdown_preview")).status_code == 405


def test_preview_of_text_over_the_limit_is_a_400(client, org):
    client.force_login(org.employee)
    response = client.post(reverse("markdown_preview"), {"text": "x" * 100_001})
    assert response.status_code == 400


# --- Who sees the ticket page -------------------------------------------------------------


@pytest.mark.parametrize("who", ["employee", "it_agent", "it_lead", "admin"])
def test_ticket_page_opens_for_requester_supplier_and_admin(client, org, ticket, who):
    assert page(client, getattr(org, who), ticket).status_code == 200


@pytest.mark.parametrize("who", ["hr_agent", "finance_lead", "outsider"])
def test_ticket_page_and_its_actions_answer_404_to_others(client, org, ticket, who):
    user = getattr(org, who)
    assert page(client, user, ticket).status_code == 404
    for name, data in [
        ("ticket_comment", {"body": "hi"}),
        ("ticket_transition", {"to_status": "cancelled"}),
        ("ticket_assign", {"assignee": user.username}),
        ("ticket_priority", {"priority": "P1"}),
        ("ticket_watchers", {"username": user.username, "action": "add"}),
        ("ticket_rate", {"rating": 5}),
        ("ticket_link", {"service": org.hr_service.pk, "title": "x"}),
        ("ticket_service", {"service": org.service.pk}),
    ]:
        assert post(client, user, name, ticket, data).status_code == 404, name
    ticket.refresh_from_db()
    assert ticket.status == Status.NEW
    assert ticket.comments.count() == 0


def test_confidential_ticket_answers_404_to_an_agent_who_is_not_a_named_handler(client, org):
    org.service.confidential = True
    org.service.save()
    org.service.handlers.add(org.it_agent)
    secret = services.ticket_create(requester=org.employee, service=org.service, title="Pay")
    assert page(client, org.it_lead, secret).status_code == 404
    assert page(client, org.it_agent, secret).status_code == 200


def test_watcher_from_another_department_sees_the_ticket_but_no_agent_tools(client, org, ticket):
    services.ticket_set_watcher(ticket=ticket, actor=org.it_agent, user=org.outsider)
    body = page(client, org.outsider, ticket).content.decode()
    assert "Stop watching" in body
    assert reverse("ticket_assign", args=[ticket.reference]) not in body


@pytest.mark.parametrize(
    "name,data",
    [
        ("ticket_assign", {"assignee": "employee"}),
        ("ticket_priority", {"priority": "P1"}),
        ("ticket_service", {"service": 1}),
        ("ticket_link", {"service": 1, "title": "x"}),
    ],
)
def test_requester_may_not_use_agent_actions(client, org, ticket, name, data):
    assert post(client, org.employee, name, ticket, data).status_code == 403


# --- Conversation -------------------------------------------------------------------------


def test_requester_never_sees_internal_notes_their_attachments_or_their_history(
    client, org, ticket
):
    note_file = SimpleUploadedFile("salary.csv", b"a,b", content_type="text/csv")
    services.ticket_comment(
        ticket=ticket,
        author=org.it_agent,
        body="INTERNAL: check the warranty",
        internal=True,
        attachments=[note_file],
    )
    services.ticket_comment(ticket=ticket, author=org.it_agent, body="We are on it")
    body = page(client, org.employee, ticket).content.decode()
    assert "We are on it" in body
    assert "INTERNAL" not in body
    assert "salary.csv" not in body
    assert "added an internal note" not in body
    assert "Internal note" not in body


def test_agent_sees_internal_note_marked_distinctly_from_public_replies(client, org, ticket):
    services.ticket_comment(ticket=ticket, author=org.it_agent, body="Note text", internal=True)
    services.ticket_comment(ticket=ticket, author=org.it_agent, body="Reply text")
    body = page(client, org.it_agent, ticket).content.decode()
    note = body.split("Note text")[0].rsplit('<li class="comment', 1)[1]
    reply = body.split("Reply text")[0].rsplit('<li class="comment', 1)[1]
    assert note.startswith(" internal")
    assert "Internal note – not visible to the requester" in note
    assert reply.startswith(" public")
    assert "Public reply" in reply


def test_agent_posts_a_public_reply(client, org, ticket):
    response = post(
        client, org.it_agent, "ticket_comment", ticket, {"body": "Hello", "visibility": "public"}
    )
    assert response.status_code == 302
    comment = ticket.comments.get()
    assert comment.internal is False
    ticket.refresh_from_db()
    assert ticket.status == Status.OPEN  # the first supplier reply opens it


def test_agent_posts_an_internal_note(client, org, ticket):
    post(client, org.it_agent, "ticket_comment", ticket, {"body": "Hm", "visibility": "internal"})
    assert ticket.comments.get().internal is True


def test_requester_cannot_sneak_an_internal_note(client, org, ticket):
    post(client, org.employee, "ticket_comment", ticket, {"body": "x", "visibility": "internal"})
    assert ticket.comments.get().internal is False


def test_requester_page_has_no_internal_note_choice(client, org, ticket):
    body = page(client, org.employee, ticket).content.decode()
    assert 'name="visibility"' not in body
    assert 'name="visibility"' in page(client, org.it_agent, ticket).content.decode()


def test_empty_reply_keeps_the_form_and_shows_the_error(client, org, ticket):
    response = post(client, org.employee, "ticket_comment", ticket, {"body": ""})
    assert response.status_code == 400
    assert 'id="id_body_error"' in response.content.decode()


def test_refused_reply_attachment_keeps_the_typed_message(client, org, ticket):
    exe = SimpleUploadedFile("x.exe", b"MZ", content_type="application/x-msdownload")
    response = post(
        client,
        org.employee,
        "ticket_comment",
        ticket,
        {"body": "My typed words", "attachments": exe},
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert "My typed words" in body
    assert "are not accepted" in body
    assert ticket.comments.count() == 0


def test_reply_preview_without_javascript_keeps_the_message(client, org, ticket):
    response = post(
        client, org.employee, "ticket_comment", ticket, {"body": "_draft_", "preview": "body"}
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "<em>draft</em>" in body
    assert "_draft_" in body
    assert ticket.comments.count() == 0


def test_description_markdown_is_rendered_sanitised(client, org):
    ticket = services.ticket_create(
        requester=org.employee,
        service=org.service,
        title="XSS",
        description="**ok** <script>alert(1)</script>",
    )
    body = page(client, org.employee, ticket).content.decode()
    assert "<strong>ok</strong>" in body
    assert "<script>alert(1)</script>" not in body


def test_attachment_is_listed_by_name_and_linked_only_if_the_download_view_exists(
    client, org, ticket
):
    services.ticket_comment(
        ticket=ticket,
        author=org.employee,
        body="See file",
        attachments=[SimpleUploadedFile("photo.png", b"\x89PNG", content_type="image/png")],
    )
    body = page(client, org.employee, ticket).content.decode()
    assert "photo.png" in body
    attachment = Attachment.objects.get()
    try:
        url = reverse("attachment_download", kwargs={"pk": attachment.pk})
    except Exception:
        url = None
    if url:
        assert f'href="{url}"' in body
    else:
        assert "/media" not in body and attachment.file.name not in body


# --- Status: offered only when allowed ----------------------------------------------------


def offered(client, user, ticket) -> set[str]:
    body = page(client, user, ticket).content.decode()
    return {chunk.split('"')[0] for chunk in body.split('name="to_status" value="')[1:]}


def test_agent_is_offered_the_transitions_of_the_status_graph(client, org, ticket):
    assert offered(client, org.it_agent, ticket) == {"open", "cancelled"}
    services.ticket_transition(ticket=ticket, actor=org.it_agent, to_status="open")
    assert offered(client, org.it_agent, ticket) == {"waiting_on_customer", "resolved", "cancelled"}


def test_requester_is_offered_only_cancel_while_the_ticket_is_worked(client, org, ticket):
    assert offered(client, org.employee, ticket) == {"cancelled"}


def test_requester_cancels_own_request(client, org, ticket):
    response = post(client, org.employee, "ticket_transition", ticket, {"to_status": "cancelled"})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == Status.CANCELLED


def test_requester_may_not_resolve_and_is_told_so(client, org, ticket):
    response = post(
        client, org.employee, "ticket_transition", ticket, {"to_status": "resolved"}, follow=True
    )
    ticket.refresh_from_db()
    assert ticket.status == Status.NEW
    assert "cannot become" in response.content.decode() or "may not" in response.content.decode()


def test_unknown_status_is_a_message_not_a_500(client, org, ticket):
    response = post(
        client, org.it_agent, "ticket_transition", ticket, {"to_status": "flying"}, follow=True
    )
    assert response.status_code == 200
    assert "Choose a valid status." in response.content.decode()


def _resolve(org, ticket):
    services.ticket_comment(ticket=ticket, author=org.it_agent, body="Fixed")
    services.ticket_transition(ticket=ticket, actor=org.it_agent, to_status="resolved")


def test_requester_is_offered_reopen_within_the_window(client, org, ticket, settings):
    settings.REOPEN_WINDOW_DAYS = 14
    with time_machine.travel(MONDAY_10, tick=False):
        _resolve(org, ticket)
    with time_machine.travel(MONDAY_10 + timedelta(days=13), tick=False):
        assert "open" in offered(client, org.employee, ticket)
        body = page(client, org.employee, ticket).content.decode()
        assert "You can reopen it until" in body
        post(client, org.employee, "ticket_transition", ticket, {"to_status": "open"})
    ticket.refresh_from_db()
    assert ticket.status == Status.OPEN


def test_requester_is_not_offered_reopen_after_the_window(client, org, ticket, settings):
    settings.REOPEN_WINDOW_DAYS = 14
    with time_machine.travel(MONDAY_10, tick=False):
        _resolve(org, ticket)
    with time_machine.travel(MONDAY_10 + timedelta(days=15), tick=False):
        assert "open" not in offered(client, org.employee, ticket)
        assert "reopen window has passed" in page(client, org.employee, ticket).content.decode()
        response = post(
            client, org.employee, "ticket_transition", ticket, {"to_status": "open"}, follow=True
        )
    assert "file a new one" in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.status == Status.RESOLVED


# --- Rating -------------------------------------------------------------------------------


def test_rating_prompt_appears_for_the_requester_once_resolved(client, org, ticket):
    assert "How did it go?" not in page(client, org.employee, ticket).content.decode()
    _resolve(org, ticket)
    assert "How did it go?" in page(client, org.employee, ticket).content.decode()
    assert "How did it go?" not in page(client, org.it_agent, ticket).content.decode()


def test_requester_rates_once_and_the_prompt_disappears(client, org, ticket):
    _resolve(org, ticket)
    response = post(
        client, org.employee, "ticket_rate", ticket, {"rating": 4, "comment": "Quick, thanks"}
    )
    assert response.status_code == 302
    rating = SatisfactionRating.objects.get()
    assert (rating.rating, rating.comment) == (4, "Quick, thanks")
    body = page(client, org.employee, ticket).content.decode()
    assert "How did it go?" not in body
    assert "You rated this resolution 4 out of 5" in body
    again = post(client, org.employee, "ticket_rate", ticket, {"rating": 1})
    assert again.status_code == 400
    assert SatisfactionRating.objects.count() == 1


def test_rating_out_of_range_is_a_form_error(client, org, ticket):
    _resolve(org, ticket)
    response = post(client, org.employee, "ticket_rate", ticket, {"rating": 9})
    assert response.status_code == 400
    assert SatisfactionRating.objects.count() == 0


# --- Agent tools --------------------------------------------------------------------------


def test_agent_assigns_to_self(client, org, ticket):
    response = post(client, org.it_agent, "ticket_assign", ticket, {"assignee": "itagent"})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.assignee == org.it_agent


def test_assigning_to_a_non_agent_is_refused_next_to_the_field(client, org, ticket):
    response = post(client, org.it_agent, "ticket_assign", ticket, {"assignee": "employee"})
    assert response.status_code == 400
    assert "is not an agent of IT" in response.content.decode()


def test_assigning_to_nobody_known_is_a_form_error(client, org, ticket):
    response = post(client, org.it_agent, "ticket_assign", ticket, {"assignee": "ghost"})
    assert response.status_code == 400
    assert "There is nobody called ghost." in response.content.decode()


def test_agent_changes_priority_and_history_tells_it(client, org, ticket):
    post(client, org.it_agent, "ticket_priority", ticket, {"priority": "P1"})
    ticket.refresh_from_db()
    assert ticket.priority == "P1"
    assert (
        "changed the priority from P3 to P1" in page(client, org.it_agent, ticket).content.decode()
    )


def test_agent_moves_ticket_to_another_service_of_the_department(client, org, ticket):
    other = factories.ServiceFactory(department=org.it, name="Printer")
    post(client, org.it_agent, "ticket_service", ticket, {"service": other.pk})
    ticket.refresh_from_db()
    assert ticket.service == other


def test_service_of_another_department_is_not_a_choice(client, org, ticket):
    response = post(client, org.it_agent, "ticket_service", ticket, {"service": org.hr_service.pk})
    assert response.status_code == 400
    ticket.refresh_from_db()
    assert ticket.service == org.service


def test_agent_adds_and_removes_a_watcher(client, org, ticket):
    post(client, org.it_agent, "ticket_watchers", ticket, {"username": "finlead", "action": "add"})
    assert list(ticket.watchers.all()) == [org.finance_lead]
    assert "Finance" not in [] and org.finance_lead.get_full_name() in (
        page(client, org.it_agent, ticket).content.decode()
    )
    post(
        client, org.it_agent, "ticket_watchers", ticket, {"username": "finlead", "action": "remove"}
    )
    assert ticket.watchers.count() == 0


def test_unknown_watcher_is_a_form_error(client, org, ticket):
    response = post(
        client, org.it_agent, "ticket_watchers", ticket, {"username": "ghost", "action": "add"}
    )
    assert response.status_code == 400
    assert "There is nobody called ghost." in response.content.decode()


def test_watcher_stops_watching_and_loses_sight_of_the_ticket(client, org, ticket):
    services.ticket_set_watcher(ticket=ticket, actor=org.it_agent, user=org.outsider)
    response = post(
        client,
        org.outsider,
        "ticket_watchers",
        ticket,
        {"username": "outsider", "action": "remove"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("my_requests")
    assert page(client, org.outsider, ticket).status_code == 404


def test_requester_may_not_add_watchers(client, org, ticket):
    response = post(
        client, org.employee, "ticket_watchers", ticket, {"username": "finlead", "action": "add"}
    )
    assert response.status_code == 403
    assert ticket.watchers.count() == 0


def test_agent_opens_a_linked_request_shown_on_both_tickets(client, org, ticket):
    response = post(
        client,
        org.it_agent,
        "ticket_link",
        ticket,
        {"service": org.hr_service.pk, "title": "Confirm contract", "description": "Please"},
    )
    assert response.status_code == 302
    child = Ticket.objects.get(linked_from=ticket)
    assert child.supplier_department == org.hr
    assert child.customer_department == org.it
    parent_page = page(client, org.it_agent, ticket).content.decode()
    assert child.reference in parent_page and "Depends on" in parent_page
    assert "opened the linked request " + child.reference in parent_page
    child_page = page(client, org.hr_agent, child).content.decode()
    assert ticket.reference in child_page and "Opened from" in child_page
    # HR sees the chain but may not open IT's ticket: no link to it.
    assert reverse("ticket_detail", args=[ticket.reference]) not in child_page


def test_linked_request_to_own_department_is_not_offered(client, org, ticket):
    response = post(
        client, org.it_agent, "ticket_link", ticket, {"service": org.service.pk, "title": "x"}
    )
    assert response.status_code == 400
    assert Ticket.objects.count() == 1


def test_ask_another_department_is_a_page_of_its_own_linked_from_the_ticket(client, org, ticket):
    body = page(client, org.it_agent, ticket).content.decode()
    url = reverse("ticket_link", args=[ticket.reference])
    assert f'href="{url}"' in body
    form = client.get(url)
    assert form.status_code == 200
    html = form.content.decode()
    # Every other department's services are offered, never the ticket's own department's.
    assert f'value="{org.hr_service.pk}"' in html
    assert f'value="{org.service.pk}"' not in html
    assert reverse("ticket_detail", args=[ticket.reference]) in html


def test_requester_is_not_offered_ask_another_department(client, org, ticket):
    body = page(client, org.employee, ticket).content.decode()
    assert reverse("ticket_link", args=[ticket.reference]) not in body
    assert client.get(reverse("ticket_link", args=[ticket.reference])).status_code == 403


def test_linked_request_form_errors_keep_the_typed_text(client, org, ticket):
    response = post(
        client,
        org.it_agent,
        "ticket_link",
        ticket,
        {"service": org.hr_service.pk, "title": "", "description": "Keep me"},
    )
    assert response.status_code == 400
    assert "Keep me" in response.content.decode()


def test_history_lists_every_event_in_words(client, org, ticket):
    services.ticket_assign(ticket=ticket, actor=org.it_agent, assignee=org.it_agent)
    services.ticket_comment(ticket=ticket, author=org.it_agent, body="Hi")
    body = page(client, org.it_agent, ticket).content.decode()
    assert "filed the request (P3, Laptop problem)" in body
    assert "assigned to itagent" in body
    assert "changed the status from new to open" in body
    assert body.count('class="event event-') == ticket.events.count()


# --- Query budget -------------------------------------------------------------------------


def _long_ticket(org, n: int) -> Ticket:
    ticket = services.ticket_create(requester=org.employee, service=org.service, title="Long")
    for i in range(n):
        author = org.it_agent if i % 2 else org.employee
        services.ticket_comment(
            ticket=ticket,
            author=author,
            body=f"message {i}",
            internal=bool(i % 4 == 1),
            attachments=[
                SimpleUploadedFile(f"f{i}.txt", b"x", content_type="text/plain"),
            ],
        )
    other = factories.UserFactory(home_department=org.it)
    Membership.objects.create(user=other, department=org.it)
    services.ticket_set_watcher(ticket=ticket, actor=org.it_agent, user=other)
    services.ticket_link_request(
        ticket=ticket, actor=org.it_agent, service=org.hr_service, title="Needs HR"
    )
    return ticket


def _count(client, user, ticket) -> int:
    client.force_login(user)
    url = reverse("ticket_detail", args=[ticket.reference])
    client.get(url)  # warm per-process caches (calendars)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize("who", ["it_agent", "employee"])
def test_ticket_page_runs_a_fixed_number_of_queries(client, org, who):
    user = getattr(org, who)
    short, long = _long_ticket(org, 2), _long_ticket(org, 40)
    assert Event.objects.filter(ticket=long).count() > 80
    assert _count(client, user, short) == _count(client, user, long)


def test_ticket_page_query_budget(client, org, django_assert_max_num_queries):
    ticket = _long_ticket(org, 40)
    client.force_login(org.it_agent)
    url = reverse("ticket_detail", args=[ticket.reference])
    client.get(url)
    with django_assert_max_num_queries(24):
        client.get(url)


def test_new_request_says_what_happens_next_for_the_chosen_service(client, org):
    with time_machine.travel(MONDAY_10, tick=False):
        client.force_login(org.employee)
        body = client.get(reverse("ticket_new") + f"?service={org.service.pk}").content.decode()
    assert "What happens next" in body
    assert "IT receives your request" in body
    assert "First response within 4 business hours, by Mon 12 Jan, 14:00." in body
    assert "Resolution within 2 business days, by Wed 14 Jan, 10:00." in body
    # Every option carries its promise, so the panel follows another choice (app.js).
    assert 'data-promise-first="First response within 4 business hours' in body
    assert f'data-promise-department="{org.hr.name}"' in body


def test_new_request_without_a_service_explains_the_steps(client, org):
    client.force_login(org.employee)
    body = client.get(reverse("ticket_new")).content.decode()
    assert "Choose a service to see when to expect a first answer." in body


# --- The page's rendering and reads (issue 10) ----------------------------------------------


def _pdf(name: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, b"%PDF-1.4 hello", content_type="application/pdf")


def test_ticket_page_escapes_text_as_django_templates_do(client, org):
    # The page body renders with Jinja2; its text must come out escaped the Django way
    # (&quot; &#x27;), not Jinja2's (&#34; &#39;), for the same HTML as before.
    org.it_agent.first_name, org.it_agent.last_name = "Seán", "O'Brien"
    org.it_agent.save()
    ticket = services.ticket_create(
        requester=org.employee, service=org.service, title='He said "no" & it\'s <b>late</b>'
    )
    services.ticket_assign(ticket=ticket, actor=org.it_agent, assignee=org.it_agent)
    ink = factories.ServiceFactory(department=org.it, name='Ink & "toner" it\'s')
    services.ticket_change_service(ticket=ticket, actor=org.it_agent, service=ink)
    body = page(client, org.it_agent, ticket).content.decode()
    assert "He said &quot;no&quot; &amp; it&#x27;s &lt;b&gt;late&lt;/b&gt;" in body
    assert "to Ink &amp; &quot;toner&quot; it&#x27;s</span>" in body  # the history's sentence
    assert "<dd>Seán O&#x27;Brien</dd>" in body  # the assignee
    assert "<strong>Seán O&#x27;Brien</strong> assigned to" in body  # who did it


def test_ticket_page_lists_each_file_under_its_own_comment(client, org):
    ticket = services.ticket_create(
        requester=org.employee, service=org.service, title="Files", attachments=[_pdf("own.pdf")]
    )
    reply = services.ticket_comment(
        ticket=ticket, author=org.employee, body="More", attachments=[_pdf("reply.pdf")]
    )
    body = page(client, org.it_agent, ticket).content.decode()
    description, conversation = body.split('id="conversation"')
    assert "own.pdf" in description
    assert "reply.pdf" not in description
    own_comment = conversation.split(f'id="c{reply.pk}"')[1].split("</li>\n    \n    </ol>")[0]
    assert "reply.pdf" in own_comment


def test_conversation_hides_the_files_of_internal_notes_from_the_requester(org):
    ticket = services.ticket_create(requester=org.employee, service=org.service, title="Files")
    note = services.ticket_comment(
        ticket=ticket,
        author=org.it_agent,
        body="Secret",
        internal=True,
        attachments=[_pdf("secret.pdf")],
    )
    agent_comments, _ = selectors.ticket_conversation(user=org.it_agent, ticket=ticket)
    requester_comments, own = selectors.ticket_conversation(user=org.employee, ticket=ticket)
    assert [c.pk for c in agent_comments] == [note.pk]
    assert [a.filename for a in agent_comments[0].attachments.all()] == ["secret.pdf"]
    assert requester_comments == []
    assert own == []


def test_conversation_reads_every_comments_files_in_two_queries(org, django_assert_num_queries):
    ticket = services.ticket_create(requester=org.employee, service=org.service, title="Files")
    for n in range(3):
        services.ticket_comment(
            ticket=ticket, author=org.employee, body=f"{n}", attachments=[_pdf(f"{n}.pdf")]
        )
    permissions.memberships(org.it_agent)  # the agent's roles, read once per request
    with django_assert_num_queries(2):
        comments, _ = selectors.ticket_conversation(user=org.it_agent, ticket=ticket)
        files = [[a.filename for a in c.attachments.all()] for c in comments]
    assert files == [["0.pdf"], ["1.pdf"], ["2.pdf"]]


def test_service_change_form_shows_the_services_it_is_given(org):
    other = factories.ServiceFactory(department=org.it, name="Printer")
    form = ServiceChangeForm(department_id=org.it.pk, shown=[other])
    options = str(form["service"])
    assert f'value="{other.pk}"' in options
    assert f'value="{org.service.pk}"' not in options


def test_service_change_form_given_its_rows_renders_without_a_query(org, django_assert_num_queries):
    shown = [org.service]
    with django_assert_num_queries(0):
        form = ServiceChangeForm(
            initial={"service": org.service.pk}, department_id=org.it.pk, shown=shown
        )
        options = str(form["service"])
    assert f'<option value="{org.service.pk}" selected>IT · Laptop problem</option>' in options


def test_service_change_form_validates_against_the_department_whatever_it_shows(org):
    form = ServiceChangeForm(
        {"service": org.hr_service.pk}, department_id=org.it.pk, shown=[org.hr_service]
    )
    assert not form.is_valid()
    assert "service" in form.errors


def test_rating_moves_updated_at_and_so_the_etag(org, ticket):
    _resolve(org, ticket)
    ticket.refresh_from_db()
    before_at, before_etag = ticket.updated_at, ticket_etag(ticket)
    with time_machine.travel(ticket.updated_at + timedelta(minutes=5), tick=False):
        services.ticket_rate(ticket=ticket, actor=org.employee, rating=5)
    ticket.refresh_from_db()
    assert ticket.updated_at == before_at + timedelta(minutes=5)
    assert ticket_etag(ticket) != before_etag
