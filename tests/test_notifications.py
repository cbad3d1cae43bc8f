"""In-app notifications (bell, list, mark as read) and their e-mail copies (SPEC §4).

Times are shown in the recipient's own time zone, on the page and in the e-mail.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.db import transaction
from django.urls import reverse

from tests.escalation_helpers import celery_broker, drain
from tests.factories import UserFactory
from tickets import services
from tickets.models import Notification
from tickets.notifications import (
    email_batch,
    notification_mark_all_read,
    notify,
    unread_count,
)
from tickets.tasks import notification_email_sweep, notification_send_emails

# 2026-01-12 14:30 UTC = 15:30 in Berlin = 09:30 in New York = 23:30 in Tokyo.
WHEN = datetime(2026, 1, 12, 14, 30, tzinfo=UTC)


@pytest.fixture
def broker():
    with celery_broker("memory://"):
        drain()
        yield
        drain()


@pytest.fixture
def ticket(org):
    return services.ticket_create(requester=org.employee, service=org.service, title="Laptop")


def make(user, ticket=None, key="k1", message="IT-1 needs attention", read=False):
    return Notification.objects.create(
        recipient=user,
        ticket=ticket,
        message=message,
        dedupe_key=key,
        created_at=WHEN,
        read_at=WHEN if read else None,
    )


# --- notify -----------------------------------------------------------------------------------


def test_notify_creates_one_notification_per_recipient(org, ticket, broker):
    notify(
        recipients=[org.it_agent, org.it_lead, org.it_agent],
        ticket=ticket,
        message="m",
        dedupe_key="esc:1",
        now=WHEN,
    )
    assert sorted(Notification.objects.values_list("recipient__username", flat=True)) == [
        "itagent",
        "itlead",
    ]


def test_notify_twice_for_the_same_cause_notifies_once(org, ticket, broker):
    for _ in range(2):
        notify(recipients=[org.it_agent], ticket=ticket, message="m", dedupe_key="x", now=WHEN)
    assert Notification.objects.filter(recipient=org.it_agent).count() == 1


def test_notify_skips_inactive_people(org, ticket, broker):
    org.it_lead.is_active = False
    org.it_lead.save()
    notify(recipients=[org.it_lead], ticket=ticket, message="m", dedupe_key="x", now=WHEN)
    assert Notification.objects.count() == 0


def test_email_is_queued_only_after_commit(org, ticket, broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        notify(recipients=[org.it_agent], ticket=ticket, message="m", dedupe_key="x", now=WHEN)
        assert drain() == []  # nothing leaves before the commit
    assert len(callbacks) == 1
    [published] = drain()
    assert published.task == "tickets.tasks.notification_send_emails"


def test_rolled_back_change_queues_no_email(
    org, ticket, broker, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        notify(recipients=[org.it_agent], ticket=ticket, message="m", dedupe_key="x", now=WHEN)
        raise RuntimeError("the change fails")
    assert callbacks == []
    assert drain() == []
    assert Notification.objects.count() == 0


# --- e-mail -----------------------------------------------------------------------------------


def test_email_task_sends_once_and_records_it(org, ticket):
    notification = make(org.it_agent, ticket)
    assert notification_send_emails.run([notification.pk]) == 1
    assert notification_send_emails.run([notification.pk]) == 0
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [org.it_agent.email]
    assert ticket.reference in mail.outbox[0].body
    notification.refresh_from_db()
    assert notification.emailed_at is not None


@pytest.mark.parametrize(
    ("zone", "shown"),
    [("America/New_York", "9:30"), ("Asia/Tokyo", "11:30"), ("", "3:30")],
)
def test_email_shows_the_time_in_the_recipients_time_zone(org, ticket, zone, shown):
    org.it_agent.time_zone = zone
    org.it_agent.save()
    notification_send_emails.run([make(org.it_agent, ticket).pk])
    body = mail.outbox[0].body
    assert shown in body
    assert (zone or "Europe/Berlin") in body  # no zone set: the organisation's


def test_email_task_skips_people_without_an_address(org, ticket):
    org.it_agent.email = ""
    org.it_agent.save()
    assert notification_send_emails.run([make(org.it_agent, ticket).pk]) == 0
    assert mail.outbox == []


# --- pages ------------------------------------------------------------------------------------


def test_bell_shows_the_unread_count(client, org, ticket):
    make(org.it_agent, ticket, key="a")
    make(org.it_agent, ticket, key="b")
    make(org.it_agent, ticket, key="c", read=True)
    client.force_login(org.it_agent)
    body = client.get(reverse("notifications")).content.decode()
    assert "Notifications, 2 unread" in body
    assert 'class="bell-count" aria-hidden="true">2<' in body


def test_bell_without_unread_shows_no_count(client, org):
    client.force_login(org.employee)
    body = client.get(reverse("notifications")).content.decode()
    assert "Notifications, 0 unread" in body
    assert "bell-count" not in body


def test_list_shows_only_my_notifications(client, org, ticket):
    make(org.it_agent, ticket, message="for the agent")
    make(org.it_lead, ticket, message="for the lead")
    client.force_login(org.it_agent)
    body = client.get(reverse("notifications")).content.decode()
    assert "for the agent" in body
    assert "for the lead" not in body
    assert reverse("ticket_detail", args=[ticket.reference]) in body


@pytest.mark.parametrize(
    ("zone", "shown"),
    [("America/New_York", "9:30 a.m."), ("Asia/Tokyo", "11:30 p.m."), ("", "3:30 p.m.")],
)
def test_list_shows_times_in_my_time_zone(client, org, ticket, zone, shown):
    org.it_agent.time_zone = zone
    org.it_agent.save()
    make(org.it_agent, ticket)
    client.force_login(org.it_agent)
    body = client.get(reverse("notifications")).content.decode()
    assert shown in body
    assert 'datetime="2026-01-12T14:30:00+00:00"' in body


def test_list_can_show_unread_only(client, org, ticket):
    make(org.it_agent, ticket, key="a", message="still new")
    make(org.it_agent, ticket, key="b", message="seen already", read=True)
    client.force_login(org.it_agent)
    body = client.get(reverse("notifications") + "?unread=1").content.decode()
    assert "still new" in body
    assert "seen already" not in body


def test_mark_as_read(client, org, ticket):
    notification = make(org.it_agent, ticket)
    client.force_login(org.it_agent)
    response = client.post(reverse("notification_read", args=[notification.pk]))
    assert response.status_code == 302
    notification.refresh_from_db()
    assert notification.read_at is not None
    assert unread_count(user=org.it_agent) == 0


def test_mark_as_read_keeps_the_first_instant(client, org, ticket):
    notification = make(org.it_agent, ticket, read=True)
    client.force_login(org.it_agent)
    client.post(reverse("notification_read", args=[notification.pk]))
    notification.refresh_from_db()
    assert notification.read_at == WHEN


def test_mark_as_read_returns_to_a_local_next_page_only(client, org, ticket):
    notification = make(org.it_agent, ticket)
    client.force_login(org.it_agent)
    url = reverse("notification_read", args=[notification.pk])
    assert client.post(url, {"next": "/notifications/?unread=1"}).url == "/notifications/?unread=1"
    assert client.post(url, {"next": "https://evil.example/"}).url == reverse("notifications")


def test_someone_elses_notification_answers_404(client, org, ticket):
    notification = make(org.it_lead, ticket)
    client.force_login(org.it_agent)
    assert client.post(reverse("notification_read", args=[notification.pk])).status_code == 404
    notification.refresh_from_db()
    assert notification.read_at is None


def test_admin_cannot_read_someone_elses_notification(client, org, ticket):
    notification = make(org.it_lead, ticket)
    client.force_login(org.admin)
    assert client.post(reverse("notification_read", args=[notification.pk])).status_code == 404


def test_mark_as_read_needs_post(client, org, ticket):
    notification = make(org.it_agent, ticket)
    client.force_login(org.it_agent)
    assert client.get(reverse("notification_read", args=[notification.pk])).status_code == 405


def test_mark_all_as_read_touches_only_mine(client, org, ticket):
    make(org.it_agent, ticket, key="a")
    make(org.it_agent, ticket, key="b")
    make(org.it_lead, ticket, key="a")
    client.force_login(org.it_agent)
    assert client.post(reverse("notification_read_all")).status_code == 302
    assert unread_count(user=org.it_agent) == 0
    assert unread_count(user=org.it_lead) == 1


def test_mark_all_read_service_returns_how_many_changed(org, ticket):
    make(org.it_agent, ticket, key="a")
    make(org.it_agent, ticket, key="b", read=True)
    assert notification_mark_all_read(user=org.it_agent, now=WHEN) == 1


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get(reverse("notifications"))
    assert response.status_code == 302
    assert reverse("login") in response.url


def test_unread_count_is_one_query(org, ticket, django_assert_max_num_queries):
    someone = UserFactory()
    make(someone, ticket)
    with django_assert_max_num_queries(1):
        assert unread_count(user=someone) == 1


def test_unread_count_counts_only_the_persons_unread(org, ticket):
    someone, other = UserFactory(), UserFactory()
    make(someone, ticket, key="a")
    make(someone, ticket, key="b")
    make(someone, ticket, key="c", read=True)
    make(other, ticket, key="a")
    assert unread_count(user=someone) == 2
    assert unread_count(user=someone) == 2  # again, through the statement now prepared
    assert unread_count(user=UserFactory()) == 0


def test_email_sweep_queues_emails_whose_task_was_lost(org, ticket, broker):
    lost = make(org.it_agent, ticket, key="lost")
    sent = make(org.it_lead, ticket, key="sent")
    Notification.objects.filter(pk=sent.pk).update(emailed_at=WHEN)
    with time_machine.travel(WHEN + timedelta(minutes=5), tick=False):
        assert notification_email_sweep.run() == 1
    [published] = drain()
    assert (published.task, published.args) == (
        "tickets.tasks.notification_send_emails",
        [[lost.pk]],
    )


def test_email_sweep_leaves_fresh_notifications_to_their_own_task(org, ticket, broker):
    make(org.it_agent, ticket)
    with time_machine.travel(WHEN + timedelta(seconds=10), tick=False):
        assert notification_email_sweep.run() == 0
    assert drain() == []


def test_email_batch_queues_one_task_for_the_committed_changes_only(
    org, ticket, broker, transactional_db
):
    drain()
    with email_batch():
        with transaction.atomic():
            notify(recipients=[org.it_agent], ticket=ticket, message="m", dedupe_key="a", now=WHEN)
        with pytest.raises(RuntimeError), transaction.atomic():
            notify(recipients=[org.it_lead], ticket=ticket, message="m", dedupe_key="b", now=WHEN)
            raise RuntimeError("rolled back")
        with transaction.atomic():
            notify(recipients=[org.it_lead], ticket=ticket, message="m", dedupe_key="c", now=WHEN)
        assert drain() == []  # collected, not yet queued
    [published] = drain()
    assert sorted(published.args[0]) == sorted(
        Notification.objects.filter(dedupe_key__in=["a", "c"]).values_list("pk", flat=True)
    )


def test_email_task_sends_many_in_chunks_each_once(org, ticket):
    people = [UserFactory() for _ in range(45)]
    ids = [make(person, ticket, key=f"k{n}").pk for n, person in enumerate(people)]
    assert notification_send_emails.run(ids) == 45
    assert notification_send_emails.run(ids) == 0
    assert sorted(m.to[0] for m in mail.outbox) == sorted(p.email for p in people)
    assert not Notification.objects.filter(emailed_at__isnull=True).exists()
