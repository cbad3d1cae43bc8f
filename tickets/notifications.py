"""In-app notifications and their e-mail copies (SPEC §4).

Writes (`notify`, `notification_mark_read`, `notification_mark_all_read`) and reads
(`unread_count`, `notification_list`, `notification_get_for_user`) of tickets.Notification.
A notification is created inside the transaction of the change that caused it; its e-mail is
queued with `transaction.on_commit`, so a rolled-back change notifies nobody.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from django.db import connections, router, transaction
from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from servicedesk import permissions
from servicedesk.bulk_sql import insert_values
from servicedesk.prepared import ServerStatement, plain_int
from tickets.models import Notification, Ticket

EMAIL_BATCH_SIZE = 200
ROW_FIELDS = ("recipient", "ticket", "message", "dedupe_key", "created_at")
_email_batch = threading.local()


@contextmanager
def email_batch():
    """Inside the block, e-mails of notifications whose transaction committed are queued as
    one task per EMAIL_BATCH_SIZE instead of one per transaction (workers firing many tickets
    in a row use it). Rolled-back transactions add nothing: collection happens on commit."""
    previous = getattr(_email_batch, "ids", None)
    collected: list[int] = []
    _email_batch.ids = collected
    try:
        yield
    finally:
        _email_batch.ids = previous
        if collected:
            from tickets.tasks import publish_emails

            publish_emails(notification_ids=collected)


# --- Writes ---------------------------------------------------------------------------------


@dataclass
class Notice:
    """One cause to tell people about: who, about which ticket, what, and its dedupe key."""

    recipients: Iterable
    ticket: Ticket | None
    message: str
    dedupe_key: str


def notify(
    *,
    recipients: Iterable,
    ticket: Ticket | None,
    message: str,
    dedupe_key: str,
    now: datetime,
    email: bool = True,
    new_cause: bool = False,
) -> list[int]:
    """Notify each recipient once per cause (`dedupe_key`); e-mail them after commit.

    Call inside the causing use case's transaction. A repeated call with the same key creates
    nothing new (the `notification_once_per_cause` constraint); the e-mail task is idempotent
    too, so a retried cause never notifies twice. `new_cause=True` says the key was minted in
    this transaction (e.g. it holds a new row's id), which saves a query. Returns the ids not
    yet e-mailed.
    """
    notice = Notice(recipients=recipients, ticket=ticket, message=message, dedupe_key=dedupe_key)
    if new_cause:
        return notify_many(notices=[notice], now=now, email=email)
    people, rows = _rows(notice, now)
    if not rows:
        return []
    insert_values(Notification, ROW_FIELDS, rows, ignore_conflicts=True)
    ids = list(
        Notification.objects.filter(
            dedupe_key=dedupe_key[:120], recipient_id__in=people, emailed_at__isnull=True
        ).values_list("pk", flat=True)
    )
    if email:
        _email_on_commit(ids)
    return ids


def notify_many(*, notices: Iterable[Notice], now: datetime, email: bool = True) -> list[int]:
    """Notify the recipients of several new causes: one INSERT and one on-commit e-mail
    hand-off for all of them (the escalation fires many levels per transaction).

    Every key must have been minted in this transaction (the caller has just recorded what
    the key names, e.g. an Escalation row under its unique constraint), so no row can
    conflict and a plain INSERT hands back the ids in the same round trip. Confidential
    requests are redacted per recipient exactly as in `notify`. Returns the new ids.
    """
    rows, keys = [], set()
    for notice in notices:
        for row in _rows(notice, now)[1]:
            # Two causes with one key (one escalation level notifying the supplier's and the
            # customer's lead, the same person) tell each person once.
            if (row[0], row[3]) not in keys:
                keys.add((row[0], row[3]))
                rows.append(row)
    if not rows:
        return []
    ids = [pk for (pk,) in insert_values(Notification, ROW_FIELDS, rows, returning=["id"])]
    if email:
        _email_on_commit(ids)
    return ids


def _rows(notice: Notice, now: datetime) -> tuple[dict, list[tuple]]:
    """The Notification rows (ROW_FIELDS values) of one cause: one per active recipient,
    redacted for those who may not open a confidential request."""
    ticket = notice.ticket
    people = {user.pk: user for user in notice.recipients if user is not None and user.is_active}
    if not people:
        return people, []
    # Issue 9: the title and reference of a confidential request reach only those who may open
    # it; anyone else an escalation names (a lead) gets a notice without them.
    hidden = (
        {pk for pk, user in people.items() if not permissions.can_view_ticket(user, ticket)}
        if ticket is not None and ticket.confidential
        else set()
    )
    redacted = (
        _("A confidential request to %(dept)s needs attention; its named handlers know more.")
        % {"dept": ticket.supplier_department.name}
        if hidden
        else ""
    )
    ticket_id = ticket.pk if ticket is not None else None
    return people, [
        (
            user_id,
            None if user_id in hidden else ticket_id,
            (redacted if user_id in hidden else notice.message)[:300],
            notice.dedupe_key[:120],
            now,
        )
        for user_id in sorted(people)
    ]


def _email_on_commit(ids: list[int]) -> None:
    """Queue the e-mail copies of `ids` once the transaction commits (batched inside
    `email_batch`); a rolled-back transaction queues nothing."""
    if not ids:
        return
    from tickets.tasks import publish_emails  # the tasks module imports this one

    def send() -> None:
        collecting = getattr(_email_batch, "ids", None)
        if collecting is None:
            publish_emails(notification_ids=ids)
        else:
            collecting.extend(ids)
            if len(collecting) >= EMAIL_BATCH_SIZE:
                publish_emails(notification_ids=list(collecting))
                collecting.clear()

    transaction.on_commit(send, robust=True)


def notification_mark_read(*, user, notification_id: int, now: datetime) -> Notification:
    """Mark one of `user`'s notifications read (a second call keeps the first instant)."""
    notification = notification_get_for_user(user=user, notification_id=notification_id)
    Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=now)
    notification.refresh_from_db(fields=["read_at"])
    return notification


def notification_mark_all_read(*, user, now: datetime) -> int:
    """Mark every unread notification of `user` read; return how many changed."""
    return Notification.objects.filter(recipient_id=user.pk, read_at__isnull=True).update(
        read_at=now
    )


# --- Reads ----------------------------------------------------------------------------------


def _unread_count_statement() -> ServerStatement:
    meta = Notification._meta
    recipient, read_at = meta.get_field("recipient").column, meta.get_field("read_at").column
    return ServerStatement(
        f'SELECT COUNT(*) FROM "{meta.db_table}" WHERE "{recipient}" = %s AND "{read_at}" IS NULL'
    )


# The header asks on every page: one statement, prepared once per connection.
_unread_count_sql = _unread_count_statement()


def unread_count(*, user) -> int:
    """Unread notifications of `user` (served by the partial `notification_unread` index)."""
    if not user or not user.is_authenticated:
        return 0
    if not plain_int(user.pk):
        return Notification.objects.filter(recipient_id=user.pk, read_at__isnull=True).count()
    connection = connections[router.db_for_read(Notification)]
    with connection.cursor() as cursor:
        _unread_count_sql.execute(cursor, connection, [user.pk])
        return cursor.fetchone()[0]


def notification_list(*, user, unread_only: bool = False) -> QuerySet[Notification]:
    """The user's own notifications, newest first."""
    queryset = Notification.objects.filter(recipient_id=user.pk).select_related("ticket")
    if unread_only:
        queryset = queryset.filter(read_at__isnull=True)
    return queryset.order_by("-created_at", "-id")


def notification_get_for_user(*, user, notification_id: int) -> Notification:
    """The notification if it is `user`'s, otherwise Http404 (ids do not leak)."""
    notification = Notification.objects.filter(pk=notification_id).first()
    if notification is None or not permissions.can_view_notification(user, notification):
        raise Http404
    return notification
