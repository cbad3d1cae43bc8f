"""Every change to a ticket writes its audit Event in the same transaction."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError, connection, transaction

from tickets import services
from tickets.models import Event


@pytest.fixture
def ticket(org):
    return services.ticket_create(requester=org.employee, service=org.service, title="VPN")


def kinds(ticket):
    return list(Event.objects.filter(ticket=ticket).values_list("kind", flat=True))


def test_filing_writes_created_event(ticket):
    assert kinds(ticket) == ["created"]


def test_assign_writes_event_with_before_and_after(org, ticket):
    services.ticket_assign(ticket=ticket, actor=org.it_lead, assignee=org.it_agent)
    event = Event.objects.get(ticket=ticket, kind="assigned")
    assert (event.before, event.after, event.actor) == (None, "itagent", org.it_lead)


def test_public_reply_writes_comment_event(org, ticket):
    services.ticket_comment(ticket=ticket, author=org.employee, body="More detail")
    assert "comment" in kinds(ticket)


def test_internal_note_writes_internal_event(org, ticket):
    services.ticket_comment(ticket=ticket, author=org.it_agent, body="Looks odd", internal=True)
    assert Event.objects.get(ticket=ticket, kind="note").internal is True


def test_priority_change_writes_event(org, ticket):
    services.ticket_change_priority(ticket=ticket, actor=org.it_agent, priority="P1")
    event = Event.objects.get(ticket=ticket, kind="priority")
    assert (event.before, event.after) == ("P3", "P1")


def test_service_change_writes_event(org, ticket):
    from tests.factories import ServiceFactory

    other = ServiceFactory(department=org.it, name="Access")
    services.ticket_change_service(ticket=ticket, actor=org.it_agent, service=other)
    assert Event.objects.get(ticket=ticket, kind="service").after == "Access"


def test_watcher_change_writes_event(org, ticket):
    services.ticket_set_watcher(ticket=ticket, actor=org.it_agent, user=org.finance_lead)
    assert Event.objects.get(ticket=ticket, kind="watcher").after == "finlead"


def test_linked_request_writes_event_on_both_tickets(org, ticket):
    child = services.ticket_link_request(
        ticket=ticket, actor=org.it_agent, service=org.hr_service, title="Need a letter"
    )
    assert Event.objects.get(ticket=ticket, kind="link").after == child.reference
    assert Event.objects.get(ticket=child, kind="link").after == ticket.reference
    assert child.linked_from == ticket
    assert child.customer_department == org.it


def test_attachment_writes_event(org, ticket):
    upload = SimpleUploadedFile("log.txt", b"hello", content_type="text/plain")
    services.ticket_comment(ticket=ticket, author=org.employee, body="log", attachments=[upload])
    assert Event.objects.get(ticket=ticket, kind="attachment").after == "log.txt"


def test_rating_writes_event(org, ticket):
    services.ticket_transition(ticket=ticket, actor=org.it_agent, to_status="open")
    services.ticket_transition(ticket=ticket, actor=org.it_agent, to_status="resolved")
    services.ticket_rate(ticket=ticket, actor=org.employee, rating=4)
    assert Event.objects.get(ticket=ticket, kind="rating").after == 4


def test_refused_change_writes_no_event(org, ticket):
    from servicedesk.errors import DomainError

    with pytest.raises(DomainError):
        services.ticket_assign(ticket=ticket, actor=org.employee, assignee=org.employee)
    assert kinds(ticket) == ["created"]


def test_events_cannot_be_updated_or_deleted(ticket):
    event = Event.objects.get(ticket=ticket)
    event.kind = "status"
    with pytest.raises(RuntimeError):
        event.save()
    with pytest.raises(RuntimeError):
        event.delete()


def test_event_queryset_refuses_update_and_delete(ticket):
    events = Event.objects.filter(ticket=ticket)
    with pytest.raises(RuntimeError, match="append-only"):
        events.update(kind="status")
    with pytest.raises(RuntimeError, match="append-only"):
        events.bulk_update(list(events), ["kind"])
    with pytest.raises(RuntimeError, match="append-only"):
        events.delete()
    assert kinds(ticket) == ["created"]


@pytest.mark.parametrize(
    "assignment", ["kind = 'status'", "after = '{}'::jsonb", "created_at = now()"]
)
def test_database_refuses_a_raw_update_of_an_event(ticket, assignment):
    event = Event.objects.get(ticket=ticket)
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"UPDATE tickets_event SET {assignment} WHERE id = %s", [event.pk])
    assert Event.objects.get(pk=event.pk).kind == "created"


def test_database_refuses_setting_an_actor_that_was_not_there(org, ticket):
    event = Event.objects.get(ticket=ticket)
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "UPDATE tickets_event SET actor_id = %s WHERE id = %s", [org.it_agent.pk, event.pk]
        )


def test_deleting_a_user_keeps_their_events_without_the_actor(org, ticket):
    from tests.factories import MembershipFactory, UserFactory

    leaver = UserFactory(username="leaver", home_department=org.it)
    MembershipFactory(user=leaver, department=org.it)
    services.ticket_assign(ticket=ticket, actor=leaver, assignee=org.it_agent)
    event = Event.objects.get(ticket=ticket, kind="assigned")
    assert event.actor_id == leaver.pk
    leaver.delete()  # on_delete=SET_NULL: the one UPDATE the trigger lets through
    kept = Event.objects.get(pk=event.pk)
    assert (kept.actor_id, kept.kind, kept.after) == (None, event.kind, event.after)


def test_rating_once_per_resolution(org, ticket):
    from servicedesk.errors import DomainError

    services.ticket_transition(ticket=ticket, actor=org.it_agent, to_status="open")
    services.ticket_transition(ticket=ticket, actor=org.it_agent, to_status="resolved")
    services.ticket_rate(ticket=ticket, actor=org.employee, rating=5)
    with pytest.raises(DomainError):
        services.ticket_rate(ticket=ticket, actor=org.employee, rating=1)
