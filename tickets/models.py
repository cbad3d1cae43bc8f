from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from departments.models import Priority
from servicedesk.prepared import PreparedInsertMixin


class Status(models.TextChoices):
    NEW = "new", _("new")
    OPEN = "open", _("open")
    WAITING_ON_CUSTOMER = "waiting_on_customer", _("waiting on customer")
    RESOLVED = "resolved", _("resolved")
    CLOSED = "closed", _("closed")
    CANCELLED = "cancelled", _("cancelled")


# SPEC §2: the status graph. Anything else is refused.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    Status.NEW: frozenset({Status.OPEN, Status.CANCELLED}),
    Status.OPEN: frozenset({Status.WAITING_ON_CUSTOMER, Status.RESOLVED, Status.CANCELLED}),
    Status.WAITING_ON_CUSTOMER: frozenset({Status.OPEN, Status.CANCELLED}),
    Status.RESOLVED: frozenset({Status.CLOSED, Status.OPEN, Status.CANCELLED}),
    Status.CLOSED: frozenset(),
    Status.CANCELLED: frozenset(),
}
ACTIVE_STATUSES = (Status.NEW, Status.OPEN, Status.WAITING_ON_CUSTOMER)


class Ticket(PreparedInsertMixin, models.Model):
    reference = models.CharField(_("reference"), max_length=24, unique=True, editable=False)
    number = models.PositiveIntegerField(editable=False)
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    service = models.ForeignKey(
        "departments.Service",
        verbose_name=_("service"),
        on_delete=models.PROTECT,
        related_name="tickets",
    )
    supplier_department = models.ForeignKey(
        "departments.Department",
        verbose_name=_("supplier department"),
        on_delete=models.PROTECT,
        related_name="supplied_tickets",
        # Served by ticket_queue and ticket_number_per_supplier (it leads both): a plain index
        # of its own would only cost every insert (issue 10).
        db_index=False,
    )
    customer_department = models.ForeignKey(
        "departments.Department",
        verbose_name=_("customer department"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="requested_tickets",
        db_index=False,  # served by ticket_customer, which it leads
    )
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("requester"),
        on_delete=models.PROTECT,
        related_name="requested_tickets",
        db_index=False,  # served by ticket_requester, which it leads
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("assignee"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_tickets",
    )
    watchers = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("watchers"),
        blank=True,
        related_name="watched_tickets",
    )
    priority = models.CharField(_("priority"), max_length=2, choices=Priority.choices)
    status = models.CharField(
        _("status"), max_length=24, choices=Status.choices, default=Status.NEW
    )
    confidential = models.BooleanField(_("confidential"), default=False)
    linked_from = models.ForeignKey(
        "self",
        verbose_name=_("opened from"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="linked_requests",
    )
    created_at = models.DateTimeField(_("filed at"), db_index=True)
    updated_at = models.DateTimeField(_("updated at"))
    first_responded_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    resolution_count = models.PositiveIntegerField(default=0)
    reopen_count = models.PositiveIntegerField(default=0)
    # SPEC §4: the earliest deadline or ladder threshold of the running clocks; NULL when
    # nothing is pending, so the partial index holds only tickets with work ahead.
    next_sla_event_at = models.DateTimeField(null=True, blank=True)
    # The nearest deadline of a running clock (past ones included: overdue work first), NULL
    # when no clock runs. Kept by slas.services.sla_store_next_event with every clock change,
    # so the queue sorts by an indexed column instead of a per-row subquery (issue 10).
    sla_deadline = models.DateTimeField(null=True, blank=True, editable=False)
    # Where an imported ticket came from (e.g. ServiceNow INC0000045); unique per source.
    source_key = models.CharField(max_length=64, null=True, blank=True, unique=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["supplier_department", "number"], name="ticket_number_per_supplier"
            ),
            models.CheckConstraint(
                condition=Q(priority__in=["P1", "P2", "P3", "P4"]), name="ticket_priority_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in Status]), name="ticket_status_valid"
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_sla_event_at"],
                name="ticket_next_sla_event",
                condition=Q(next_sla_event_at__isnull=False),
            ),
            models.Index(
                fields=["supplier_department", "status", "-created_at"], name="ticket_queue"
            ),
            # The agent queue's default order, first page straight from the index (issue 10).
            # A plain ascending column: PostgreSQL's B-tree default is ASC NULLS LAST, which the
            # queue's ORDER BY asks for, and SQLite cannot spell NULLS LAST in an index.
            models.Index(
                F("supplier_department_id"),
                F("sla_deadline"),
                F("priority"),
                F("created_at"),
                F("id"),
                name="ticket_queue_deadline",
                condition=Q(status__in=ACTIVE_STATUSES),
            ),
            models.Index(fields=["requester", "-created_at"], name="ticket_requester"),
            models.Index(fields=["customer_department", "-created_at"], name="ticket_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class Comment(models.Model):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="comments"
    )
    body = models.TextField(_("message"))
    internal = models.BooleanField(
        _("internal note"),
        default=False,
        help_text=_("Internal notes are never shown to the requester."),
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["ticket", "created_at"], name="comment_ticket")]

    def __str__(self) -> str:
        return f"{self.ticket_id} comment {self.pk}"


def attachment_path(instance: Attachment, filename: str) -> str:
    # Random name on disk: the user's file name is metadata, never a path.
    return f"attachments/{instance.ticket_id}/{uuid.uuid4().hex}"


class Attachment(models.Model):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="attachments")
    comment = models.ForeignKey(
        Comment, null=True, blank=True, on_delete=models.CASCADE, related_name="attachments"
    )
    file = models.FileField(upload_to=attachment_path)
    filename = models.CharField(max_length=200)
    content_type = models.CharField(max_length=120)
    size = models.PositiveIntegerField()
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.filename


class EventQuerySet(models.QuerySet):
    """Bulk writes that would rewrite the trail are refused like `Event.save()` on a stored row.

    (A ticket's own deletion still removes its events: Django's cascade deletes them with a raw
    query, not through this queryset. The application never deletes tickets.)
    """

    def update(self, **kwargs):
        raise RuntimeError("Events are append-only; they are never updated.")

    def bulk_update(self, objs, fields, batch_size=None):
        raise RuntimeError("Events are append-only; they are never updated.")

    def delete(self):
        raise RuntimeError("Events are append-only; they are never deleted.")


class Event(PreparedInsertMixin, models.Model):
    """Append-only audit record of one change to a ticket (who, when, what, before → after).

    Enforced three times: `save()`/`delete()` here, `EventQuerySet`, and a database trigger
    (migration 0004) that refuses any UPDATE except the actor's SET NULL when a user is deleted.
    """

    class Kind(models.TextChoices):
        CREATED = "created", _("filed")
        STATUS = "status", _("status changed")
        ASSIGNED = "assigned", _("assigned")
        PRIORITY = "priority", _("priority changed")
        SERVICE = "service", _("service changed")
        COMMENT = "comment", _("replied")
        NOTE = "note", _("internal note")
        WATCHER = "watcher", _("watchers changed")
        LINK = "link", _("linked request")
        ATTACHMENT = "attachment", _("attachment added")
        RATING = "rating", _("rated")
        SLA = "sla", _("service standard")
        ESCALATION = "escalation", _("escalated")
        IMPORT = "import", _("imported")

    ticket = models.ForeignKey(
        Ticket,
        on_delete=models.CASCADE,
        related_name="events",
        db_index=False,  # served by event_ticket, which it leads
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    field = models.CharField(max_length=40, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    # Internal events (notes) are hidden from requesters like the notes themselves.
    internal = models.BooleanField(default=False)
    created_at = models.DateTimeField()

    objects = EventQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["ticket", "created_at"], name="event_ticket")]

    def __str__(self) -> str:
        return f"{self.ticket_id} {self.kind}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise RuntimeError("Events are append-only; they are never updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise RuntimeError("Events are append-only; they are never deleted.")


class SatisfactionRating(models.Model):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="ratings")
    resolution_number = models.PositiveIntegerField()
    rating = models.PositiveSmallIntegerField(_("rating"))
    comment = models.TextField(_("comment"), blank=True)
    # Denormalised for the dashboards: who served whom.
    supplier_department = models.ForeignKey(
        "departments.Department", on_delete=models.PROTECT, related_name="+"
    )
    customer_department = models.ForeignKey(
        "departments.Department", null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["ticket", "resolution_number"], name="rating_once_per_resolution"
            ),
            models.CheckConstraint(condition=Q(rating__gte=1, rating__lte=5), name="rating_range"),
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id}: {self.rating}/5"


class Notification(models.Model):
    """In-app notification; e-mail copies are sent by a task queued on commit."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    ticket = models.ForeignKey(
        Ticket, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    message = models.CharField(max_length=300)
    # What caused it, unique per recipient so a retried task notifies once.
    dedupe_key = models.CharField(max_length=120)
    created_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "dedupe_key"], name="notification_once_per_cause"
            )
        ]
        indexes = [
            models.Index(
                fields=["recipient", "created_at"],
                name="notification_unread",
                condition=Q(read_at__isnull=True),
            ),
            # The e-mail catch-up (tickets.tasks.notification_email_sweep) reads only these.
            models.Index(
                fields=["created_at"],
                name="notification_unsent",
                condition=Q(emailed_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return self.message
