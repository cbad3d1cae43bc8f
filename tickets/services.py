"""Every state change of a ticket: one function per use case, one transaction each, the audit
Event written in the same transaction. Views, API, admin and tasks call these and nothing else
writes tickets.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from departments.models import Department, Priority, Service, User
from reports import services as report_services
from servicedesk import permissions
from servicedesk.errors import DomainError
from slas import services as sla_services
from slas.models import Metric, ServiceStandard
from slas.selectors import SERVICE_FILING_RELATED
from tickets.models import (
    ALLOWED_TRANSITIONS,
    Attachment,
    Comment,
    Event,
    SatisfactionRating,
    Status,
    Ticket,
)

TITLE_MAX = 200


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def event_record(
    *,
    ticket: Ticket,
    actor,
    kind: str,
    now: datetime,
    field: str = "",
    before=None,
    after=None,
    internal: bool = False,
) -> Event:
    """Append one audit Event (call inside the use case's transaction)."""
    return Event.objects.create(
        ticket=ticket,
        actor=actor,
        kind=kind,
        field=field,
        before=before,
        after=after,
        internal=internal,
        created_at=now,
    )


def _touch(ticket: Ticket, now: datetime, *fields: str) -> None:
    ticket.updated_at = now
    ticket.save(update_fields=[*fields, "updated_at"])


def _refresh_reports(ticket: Ticket) -> None:
    # The dashboards' roll-ups follow every change in the same transaction (reports app).
    report_services.rollup_refresh_ticket(ticket_id=ticket.pk)


def _lock(ticket: Ticket) -> Ticket:
    """Re-read the ticket under a row lock: concurrent changes of one ticket serialise here."""
    return Ticket.objects.select_for_update().select_related("service").get(pk=ticket.pk)


def _validate_text(*, title: str, description: str) -> tuple[str, str]:
    title = (title or "").strip()
    if not title:
        raise DomainError(_("Give the request a title."), field="title")
    if len(title) > TITLE_MAX:
        raise DomainError(
            _("The title is at most %(max)d characters.") % {"max": TITLE_MAX}, field="title"
        )
    if "\x00" in title or "\x00" in (description or ""):
        raise DomainError(_("The text contains a NUL character."), field="description")
    return title, description or ""


def _validate_attachment(upload: UploadedFile) -> None:
    if upload.size > settings.ATTACHMENT_MAX_BYTES:
        raise DomainError(
            _("%(name)s is larger than the %(limit)d MB limit.")
            % {"name": upload.name, "limit": settings.ATTACHMENT_MAX_BYTES // (1024 * 1024)},
            field="attachments",
        )
    content_type = (upload.content_type or "").split(";")[0].strip().lower()
    if content_type not in settings.ATTACHMENT_ALLOWED_TYPES:
        raise DomainError(
            _("%(name)s: files of type %(type)s are not accepted.")
            % {"name": upload.name, "type": content_type or "?"},
            field="attachments",
        )


def _safe_filename(name: str) -> str:
    name = (name or "file").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in name if ch.isprintable() and ch not in '"<>')
    return cleaned[:200] or "file"


def _store_attachments(
    *, ticket: Ticket, comment: Comment | None, uploads: Iterable[UploadedFile], actor, now
) -> list[Attachment]:
    stored = []
    for upload in uploads:
        attachment = Attachment(
            ticket=ticket,
            comment=comment,
            filename=_safe_filename(upload.name),
            content_type=(upload.content_type or "application/octet-stream").split(";")[0],
            size=upload.size,
            uploaded_by=actor,
            created_at=now,
        )
        attachment.file.save(attachment.filename, upload, save=False)
        attachment.save()
        event_record(
            ticket=ticket,
            actor=actor,
            kind=Event.Kind.ATTACHMENT,
            now=now,
            after=attachment.filename,
            internal=bool(comment and comment.internal),
        )
        stored.append(attachment)
    return stored


def _next_reference(service: Service) -> tuple[int, str, int | None]:
    """The supplier's next number and reference, and the standard version that applies to
    `service` as of now (read in the same statement, inside the filing transaction).

    One UPDATE … RETURNING: the row lock it takes (held to commit) serialises concurrent
    filings to one supplier, so numbers are sequential without gaps; the unique constraint is
    the backstop.
    """
    quote = connection.ops.quote_name
    departments = quote(Department._meta.db_table)
    services = quote(Service._meta.db_table)
    standards = quote(ServiceStandard._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {departments} SET last_ticket_number = last_ticket_number + 1 "
            "WHERE id = %s RETURNING last_ticket_number, code, "
            f"(SELECT st.current_version_id FROM {services} sv JOIN {standards} st "
            f"ON st.id = COALESCE(sv.standard_id, {departments}.default_standard_id) "
            "WHERE sv.id = %s)",
            [service.department_id, service.pk],
        )
        number, code, version_id = cursor.fetchone()
    return number, f"{code}-{number}", version_id


def ticket_create(
    *,
    requester,
    service: Service,
    title: str,
    description: str = "",
    priority: str | None = None,
    attachments: Iterable[UploadedFile] = (),
    linked_from: Ticket | None = None,
    customer_department: Department | None = None,
    now: datetime | None = None,
) -> Ticket:
    """File a request to the service's supplier department and start its SLA clocks.

    Read `service` with `slas.selectors.SERVICE_FILING_RELATED` and filing reads no
    configuration: the returned ticket carries its clocks (`ticket.clocks.all()` is free).
    """
    now = _now(now)
    title, description = _validate_text(title=title, description=description)
    if not service.active or not service.department.active:
        raise DomainError(_("This service is not taking requests."), field="service")
    if priority and priority not in Priority.values:
        raise DomainError(_("Choose a priority from P1 to P4."), field="priority")
    if (
        priority
        and priority != service.default_priority
        and not (
            service.requester_may_set_priority
            or permissions.is_agent_of(requester, service.department_id)
        )
    ):
        raise DomainError(
            _("This service does not let requesters choose the priority."), field="priority"
        )
    attachments = list(attachments)
    for upload in attachments:
        _validate_attachment(upload)
    priority = priority or service.default_priority
    # Worked out before the transaction (configuration reads only), so the ticket row goes in
    # with its next SLA event and deadline and the department row lock is held briefly.
    clocks = sla_services.sla_plan_clocks(service=service, priority=priority, now=now)
    if customer_department is None and User.home_department.is_cached(requester):
        customer_department = requester.home_department
    with transaction.atomic():
        number, reference, version_id = _next_reference(service)
        if version_id != clocks.version_id:
            # A version was published since `service` was read: the request is measured
            # against the version current at filing (SPEC §3), so plan again from fresh rows.
            service = Service.objects.select_related(*SERVICE_FILING_RELATED).get(pk=service.pk)
            clocks = sla_services.sla_plan_clocks(service=service, priority=priority, now=now)
        ticket = Ticket.objects.create(
            reference=reference,
            number=number,
            title=title,
            description=description,
            service=service,
            supplier_department=service.department,
            customer_department_id=(
                customer_department.pk if customer_department else requester.home_department_id
            ),
            requester=requester,
            priority=priority,
            status=Status.NEW,
            confidential=service.confidential,
            linked_from=linked_from,
            created_at=now,
            updated_at=now,
            next_sla_event_at=clocks.next_at,
            sla_deadline=clocks.deadline,
        )
        if customer_department is not None:
            ticket.customer_department = customer_department
        event_record(
            ticket=ticket,
            actor=requester,
            kind=Event.Kind.CREATED,
            now=now,
            after={"status": ticket.status, "priority": ticket.priority, "service": service.name},
        )
        _store_attachments(
            ticket=ticket, comment=None, uploads=attachments, actor=requester, now=now
        )
        sla_services.sla_start_clocks(ticket=ticket, now=now, plan=clocks)
        # What was just written is what the roll-ups need: no read-back (reports app).
        report_services.rollup_add_filed(
            ticket=ticket, clocks=clocks.clocks, calendar=clocks.calendar
        )
    _hold_clocks(ticket, clocks.clocks)
    return ticket


def _hold_clocks(ticket: Ticket, clocks: list) -> None:
    """Make `ticket.clocks.all()` the clocks just written, as a prefetch would (no read-back);
    ordered by metric like the selectors' prefetch."""
    held = ticket.clocks.all()
    held._result_cache = sorted(clocks, key=lambda clock: clock.metric)
    held._prefetch_done = True
    ticket._prefetched_objects_cache = {"clocks": held}


def ticket_transition(
    *, ticket: Ticket, actor, to_status: str, now: datetime | None = None
) -> Ticket:
    """Move a ticket along the status graph (SPEC §2); anything else is refused."""
    now = _now(now)
    with transaction.atomic():
        ticket = _lock(ticket)
        from_status = ticket.status
        if to_status not in Status.values:
            raise DomainError(
                _("Unknown status “%(status)s”.") % {"status": to_status}, field="status"
            )
        if to_status not in ALLOWED_TRANSITIONS[from_status]:
            raise DomainError(
                _("A ticket that is %(from)s cannot become %(to)s.")
                % {"from": Status(from_status).label, "to": Status(to_status).label},
                field="status",
            )
        if not permissions.can_transition(actor, ticket, to_status):
            raise DomainError(_("You may not make this change."), field="status")
        if (
            from_status == Status.RESOLVED
            and to_status == Status.OPEN
            and not permissions.can_work_ticket(actor, ticket)
            and ticket.resolved_at
            and now - ticket.resolved_at > timedelta(days=settings.REOPEN_WINDOW_DAYS)
        ):
            raise DomainError(
                _("This request was resolved more than %(days)d days ago; file a new one.")
                % {"days": settings.REOPEN_WINDOW_DAYS},
                field="status",
            )
        ticket.status = to_status
        fields = ["status"]
        if to_status == Status.RESOLVED:
            ticket.resolved_at = now
            ticket.resolution_count = F("resolution_count") + 1
            fields += ["resolved_at", "resolution_count"]
        elif to_status == Status.CLOSED:
            ticket.closed_at = now
            fields.append("closed_at")
        elif from_status == Status.RESOLVED and to_status == Status.OPEN:
            ticket.reopen_count = F("reopen_count") + 1
            ticket.resolved_at = None
            fields += ["reopen_count", "resolved_at"]
        _touch(ticket, now, *fields)
        ticket.refresh_from_db(fields=["resolution_count", "reopen_count"])
        event_record(
            ticket=ticket,
            actor=actor,
            kind=Event.Kind.STATUS,
            now=now,
            field="status",
            before=from_status,
            after=to_status,
        )
        sla_services.sla_on_status_change(
            ticket=ticket, old_status=from_status, new_status=to_status, now=now
        )
        _refresh_reports(ticket)
    return ticket


def ticket_assign(*, ticket: Ticket, actor, assignee, now: datetime | None = None) -> Ticket:
    """Assign to an agent of the supplier department (or unassign with None)."""
    now = _now(now)
    with transaction.atomic():
        ticket = _lock(ticket)
        if not permissions.can_work_ticket(actor, ticket):
            raise DomainError(
                _("Only the supplier department can assign this request."), field="assignee"
            )
        if assignee is not None and not permissions.is_agent_of(
            assignee, ticket.supplier_department_id
        ):
            raise DomainError(
                _("%(name)s is not an agent of %(dept)s.")
                % {"name": assignee, "dept": ticket.supplier_department},
                field="assignee",
            )
        if assignee is not None and not permissions.can_be_assigned(assignee, ticket):
            raise DomainError(
                _("This request is confidential: only its named handlers can be assigned."),
                field="assignee",
            )
        if ticket.assignee_id == (assignee.pk if assignee else None):
            return ticket
        before = ticket.assignee.username if ticket.assignee else None
        ticket.assignee = assignee
        _touch(ticket, now, "assignee")
        event_record(
            ticket=ticket,
            actor=actor,
            kind=Event.Kind.ASSIGNED,
            now=now,
            field="assignee",
            before=before,
            after=assignee.username if assignee else None,
        )
        _refresh_reports(ticket)
    return ticket


def ticket_comment(
    *,
    ticket: Ticket,
    author,
    body: str,
    internal: bool = False,
    attachments: Iterable[UploadedFile] = (),
    now: datetime | None = None,
) -> Comment:
    """Add a public reply or an internal note; a supplier's first public reply stops the
    first-response clock (SPEC §3) and moves a new ticket to open."""
    now = _now(now)
    body = (body or "").strip()
    if not body:
        raise DomainError(_("Write a message."), field="body")
    if "\x00" in body:
        raise DomainError(_("The text contains a NUL character."), field="body")
    attachments = list(attachments)
    for upload in attachments:
        _validate_attachment(upload)
    with transaction.atomic():
        ticket = _lock(ticket)
        is_supplier = permissions.can_work_ticket(author, ticket)
        if internal and not is_supplier:
            raise DomainError(
                _("Only the supplier department can add internal notes."), field="internal"
            )
        if not permissions.can_reply(author, ticket):
            raise DomainError(_("You may not reply to this request."), field="body")
        if ticket.status in (Status.CLOSED, Status.CANCELLED) and not internal:
            raise DomainError(
                _("This request is %(status)s; file a new one.")
                % {"status": Status(ticket.status).label},
                field="body",
            )
        comment = Comment.objects.create(
            ticket=ticket, author=author, body=body, internal=internal, created_at=now
        )
        event_record(
            ticket=ticket,
            actor=author,
            kind=Event.Kind.NOTE if internal else Event.Kind.COMMENT,
            now=now,
            after={"comment": comment.pk},
            internal=internal,
        )
        _store_attachments(
            ticket=ticket, comment=comment, uploads=attachments, actor=author, now=now
        )
        fields = []
        supplier_member = permissions.is_agent_of(author, ticket.supplier_department_id)
        if not internal and supplier_member and ticket.first_responded_at is None:
            ticket.first_responded_at = now
            fields.append("first_responded_at")
            sla_services.sla_stop(ticket=ticket, metric=Metric.FIRST_RESPONSE, now=now)
        _touch(ticket, now, *fields)
        if not internal and supplier_member and ticket.status == Status.NEW:
            ticket_transition(ticket=ticket, actor=author, to_status=Status.OPEN, now=now)
        elif (
            not internal
            and ticket.requester_id == author.pk
            and ticket.status == Status.WAITING_ON_CUSTOMER
        ):
            # The requester answered: the ball is back with the supplier.
            ticket_transition(ticket=ticket, actor=author, to_status=Status.OPEN, now=now)
        _refresh_reports(ticket)
    return comment


def ticket_change_priority(
    *, ticket: Ticket, actor, priority: str, now: datetime | None = None
) -> Ticket:
    """Change priority; running clocks are re-targeted, keeping elapsed (SPEC §3)."""
    now = _now(now)
    if priority not in Priority.values:
        raise DomainError(_("Choose a priority from P1 to P4."), field="priority")
    with transaction.atomic():
        ticket = _lock(ticket)
        if not permissions.can_work_ticket(actor, ticket):
            raise DomainError(
                _("Only the supplier department can change the priority."), field="priority"
            )
        if ticket.priority == priority:
            return ticket
        before = ticket.priority
        ticket.priority = priority
        _touch(ticket, now, "priority")
        event_record(
            ticket=ticket,
            actor=actor,
            kind=Event.Kind.PRIORITY,
            now=now,
            field="priority",
            before=before,
            after=priority,
        )
        _retarget_keeping_version(ticket=ticket, now=now)
        _refresh_reports(ticket)
    return ticket


def _retarget_keeping_version(*, ticket: Ticket, now: datetime) -> None:
    # A priority change keeps the version the ticket was filed under (old tickets are reported
    # against their own version); only the target for the new priority changes.
    clock = ticket.clocks.select_related("version").first()
    sla_services.sla_retarget(ticket=ticket, now=now, version=clock.version if clock else None)


def ticket_change_service(
    *, ticket: Ticket, actor, service: Service, now: datetime | None = None
) -> Ticket:
    """Move a ticket to another service of the same supplier; clocks follow its standard."""
    now = _now(now)
    with transaction.atomic():
        ticket = _lock(ticket)
        if not permissions.can_work_ticket(actor, ticket):
            raise DomainError(
                _("Only the supplier department can change the service."), field="service"
            )
        if service.department_id != ticket.supplier_department_id:
            raise DomainError(
                _(
                    "Choose a service of %(dept)s; to involve another department open a linked "
                    "request."
                )
                % {"dept": ticket.supplier_department},
                field="service",
            )
        if service.pk == ticket.service_id:
            return ticket
        before = ticket.service.name
        ticket.service = service
        ticket.confidential = ticket.confidential or service.confidential
        _touch(ticket, now, "service", "confidential")
        event_record(
            ticket=ticket,
            actor=actor,
            kind=Event.Kind.SERVICE,
            now=now,
            field="service",
            before=before,
            after=service.name,
        )
        sla_services.sla_retarget(ticket=ticket, now=now)
        _refresh_reports(ticket)
    return ticket


def ticket_set_watcher(
    *, ticket: Ticket, actor, user, watching: bool = True, now: datetime | None = None
) -> Ticket:
    """Add or remove a watcher (agents manage watchers; anyone may stop watching)."""
    now = _now(now)
    with transaction.atomic():
        ticket = _lock(ticket)
        if not (permissions.can_work_ticket(actor, ticket) or (user == actor and not watching)):
            raise DomainError(
                _("Only the supplier department can manage watchers."), field="watchers"
            )
        is_watching = ticket.watchers.filter(pk=user.pk).exists()
        if is_watching == watching:
            return ticket
        if watching:
            ticket.watchers.add(user)
        else:
            ticket.watchers.remove(user)
        _touch(ticket, now)
        event_record(
            ticket=ticket,
            actor=actor,
            kind=Event.Kind.WATCHER,
            now=now,
            field="watchers",
            before=None if watching else user.username,
            after=user.username if watching else None,
        )
    return ticket


def ticket_link_request(
    *,
    ticket: Ticket,
    actor,
    service: Service,
    title: str,
    description: str = "",
    priority: str | None = None,
    now: datetime | None = None,
) -> Ticket:
    """Open a dependent request to another department on behalf of this ticket's supplier."""
    now = _now(now)
    if not permissions.can_work_ticket(actor, ticket):
        raise DomainError(
            _("Only the supplier department can open linked requests."), field="service"
        )
    if service.department_id == ticket.supplier_department_id:
        raise DomainError(_("A linked request goes to another department."), field="service")
    with transaction.atomic():
        child = ticket_create(
            requester=actor,
            service=service,
            title=title,
            description=description,
            priority=priority,
            linked_from=ticket,
            customer_department=ticket.supplier_department,
            now=now,
        )
        event_record(
            ticket=ticket,
            actor=actor,
            kind=Event.Kind.LINK,
            now=now,
            field="linked_requests",
            after=child.reference,
        )
        event_record(
            ticket=child,
            actor=actor,
            kind=Event.Kind.LINK,
            now=now,
            field="linked_from",
            after=ticket.reference,
        )
    return child


def ticket_rate(
    *, ticket: Ticket, actor, rating: int, comment: str = "", now: datetime | None = None
) -> SatisfactionRating:
    """The requester rates a resolution, once per resolution (SPEC §2)."""
    now = _now(now)
    try:
        rating = int(rating)
    except (TypeError, ValueError):
        raise DomainError(_("Give a rating from 1 to 5."), field="rating") from None
    if not 1 <= rating <= 5:
        raise DomainError(_("Give a rating from 1 to 5."), field="rating")
    with transaction.atomic():
        ticket = _lock(ticket)
        if not permissions.can_rate(actor, ticket):
            raise DomainError(_("Only the requester rates a request."), field="rating")
        if ticket.status not in (Status.RESOLVED, Status.CLOSED) or ticket.resolution_count < 1:
            raise DomainError(_("A request can be rated once it is resolved."), field="rating")
        if SatisfactionRating.objects.filter(
            ticket=ticket, resolution_number=ticket.resolution_count
        ).exists():
            raise DomainError(_("You have already rated this resolution."), field="rating")
        result = SatisfactionRating.objects.create(
            ticket=ticket,
            resolution_number=ticket.resolution_count,
            rating=rating,
            comment=(comment or "").strip(),
            supplier_department_id=ticket.supplier_department_id,
            customer_department_id=ticket.customer_department_id,
            created_at=now,
        )
        # A rating changes what the ticket shows (page, API): its updated_at, and so its ETag,
        # move as for every other change.
        _touch(ticket, now)
        event_record(
            ticket=ticket,
            actor=actor,
            kind=Event.Kind.RATING,
            now=now,
            field="rating",
            after=rating,
        )
        _refresh_reports(ticket)
    return result
