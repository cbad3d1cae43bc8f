"""Celery tasks of the tickets app: e-mail copies of notifications (SPEC §4, §5).

Queued with `transaction.on_commit` by tickets.notifications.notify. Each notification is
e-mailed under its row lock and marked `emailed_at` in the same transaction, so a retried or
redelivered task does not send it again. (Only a worker killed between the SMTP server's
"accepted" and our commit can send a copy twice; no mail protocol closes that window.)
"""

from __future__ import annotations

import logging
import smtplib
import zoneinfo
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import InterfaceError, OperationalError, transaction
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _
from kombu.exceptions import OperationalError as BrokerOperationalError

from servicedesk.celery import publish
from tickets.models import Notification

logger = logging.getLogger(__name__)

# E-mails sent per transaction and SMTP connection. A worker killed between the server's
# "accepted" and the commit sends that chunk again on redelivery; keep it small.
EMAIL_CHUNK = 20

TRANSIENT_ERRORS = (
    OperationalError,
    InterfaceError,
    BrokerOperationalError,
    smtplib.SMTPServerDisconnected,
    smtplib.SMTPConnectError,
    ConnectionError,
    TimeoutError,
)


@shared_task(
    acks_late=True,
    ignore_result=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=10,
)
def notification_send_emails(notification_ids: list[int]) -> int:
    """E-mail each notification that has not been e-mailed yet; return how many were sent."""
    ids = list(notification_ids)
    return sum(
        _send_chunk(ids[start : start + EMAIL_CHUNK]) for start in range(0, len(ids), EMAIL_CHUNK)
    )


def _recipient_zone(user) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(user.time_zone or settings.TIME_ZONE)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def _message(notification: Notification) -> EmailMessage:
    recipient = notification.recipient
    # The recipient reads the instant in its own time zone, like in the app.
    with (
        timezone.override(_recipient_zone(recipient)),
        translation.override(settings.LANGUAGE_CODE),
    ):
        when = formats.date_format(timezone.localtime(notification.created_at), "DATETIME_FORMAT")
        zone = timezone.get_current_timezone_name()
        lines = [notification.message, "", _("Raised %(when)s (%(zone)s).") % {
            "when": when,
            "zone": zone,
        }]  # fmt: skip
        if notification.ticket_id:
            url = settings.SITE_URL.rstrip("/") + reverse(
                "ticket_detail", args=[notification.ticket.reference]
            )
            lines += ["", _("Open the request: %(url)s") % {"url": url}]
        lines += ["", _("All your notifications: %(url)s") % {
            "url": settings.SITE_URL.rstrip("/") + reverse("notifications")
        }]  # fmt: skip
    return EmailMessage(
        subject=notification.message.replace("\n", " ")[:150],
        body="\n".join(lines),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[recipient.email],
    )


def _send_chunk(notification_ids: list[int]) -> int:
    """Send up to EMAIL_CHUNK notifications over one connection, in one transaction."""
    with transaction.atomic():
        # SKIP LOCKED: rows another worker is sending are theirs; the rest are ours until
        # commit, and `emailed_at` is set in the same transaction, so a retried or redelivered
        # task sends none of them again.
        rows = [
            row
            for row in Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("recipient", "ticket")
            .filter(pk__in=notification_ids, emailed_at__isnull=True)
            .order_by("pk")
            if row.recipient.email and row.recipient.is_active
        ]
        if not rows:
            return 0
        get_connection().send_messages([_message(row) for row in rows])
        Notification.objects.filter(pk__in=[row.pk for row in rows]).update(
            emailed_at=timezone.now()
        )
    return len(rows)


# A notification whose e-mail task never reached the broker (it was down at commit time) is
# picked up after this grace period, for this long.
EMAIL_CATCH_UP_AFTER = timedelta(minutes=1)
EMAIL_CATCH_UP_WINDOW = timedelta(days=1)


@shared_task(acks_late=True, ignore_result=True, autoretry_for=TRANSIENT_ERRORS, max_retries=3)
def notification_email_sweep() -> int:
    """Safety net (beat): queue e-mails whose task was lost; return how many were queued.

    Reads the partial `notification_unsent` index. Running it next to a still-queued task is
    harmless: the sending task takes each row under a lock and skips what is already sent.
    """
    now = timezone.now()
    ids = list(
        Notification.objects.filter(
            emailed_at__isnull=True,
            created_at__gte=now - EMAIL_CATCH_UP_WINDOW,
            created_at__lte=now - EMAIL_CATCH_UP_AFTER,
            recipient__is_active=True,
        )
        .exclude(recipient__email="")
        .order_by("created_at")
        .values_list("pk", flat=True)[:5000]
    )
    queued = 0
    for start in range(0, len(ids), 100):
        chunk = ids[start : start + 100]
        if not publish_emails(notification_ids=chunk):
            break
        queued += len(chunk)
    return queued


def publish_emails(*, notification_ids: list[int]) -> bool:
    """Queue the e-mail copies; a broker outage is logged, never raised (see `publish`)."""
    return publish(notification_send_emails, args=(list(notification_ids),))
