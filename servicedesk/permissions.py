"""Who may see and do what (SPEC §6). The one place these rules live: every view, API
endpoint, selector and service asks here.

Roles: an *admin* is a superuser; an *agent* is a member of a supplier department; a *lead*
is a member with the lead role; every signed-in person is an *employee* of its home
department. Confidential services narrow visibility to the requester and named handlers.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce
from operator import or_

from django.db.models import Exists, OuterRef, Q, QuerySet

from departments.models import Membership
from servicedesk.prepared import PreparedQuery


def is_admin(user) -> bool:
    return bool(user and user.is_authenticated and user.is_superuser)


# One compiled read (servicedesk/prepared.py) for both caches below: every page asks who the
# person is a member of, and the navigation which departments they may configure.
_memberships_of = PreparedQuery(Membership.objects.select_related("department"), "user_id")


def _load_memberships(user) -> dict[int, str]:
    """Department id → role for `user`, and the departments whose standards its leads may
    configure, read once per request object."""
    rows = _memberships_of.list(user.pk)
    cached = {row.department_id: row.role for row in rows}
    user._servicedesk_memberships = cached
    user._servicedesk_configurable = {
        row.department_id
        for row in rows
        if row.role == Membership.Role.LEAD and row.department.leads_may_configure
    }
    return cached


def memberships(user) -> dict[int, str]:
    """Department id → role for `user`, loaded once per request object."""
    if not user or not user.is_authenticated:
        return {}
    cached = getattr(user, "_servicedesk_memberships", None)
    if cached is None:
        cached = _load_memberships(user)
    return cached


def agent_department_ids(user) -> set[int]:
    return set(memberships(user))


def lead_department_ids(user) -> set[int]:
    return {dept for dept, role in memberships(user).items() if role == Membership.Role.LEAD}


def is_agent_of(user, department_id: int | None) -> bool:
    return is_admin(user) or (department_id is not None and department_id in memberships(user))


def is_lead_of(user, department_id: int | None) -> bool:
    return is_admin(user) or (
        department_id is not None and memberships(user).get(department_id) == Membership.Role.LEAD
    )


def is_agent(user) -> bool:
    return is_admin(user) or bool(memberships(user))


def is_lead(user) -> bool:
    return is_admin(user) or bool(lead_department_ids(user))


# --- Tickets --------------------------------------------------------------------------------


def _visibility_arms(user) -> list[Q]:
    """What a signed-in person who is not an admin may see, as conditions any of which lets
    them see a ticket: their own requests, what they watch, their departments' queues."""
    return _visibility_arms_of(user.pk, agent_department_ids(user))


def _visibility_arms_of(user_pk: int, agent_departments) -> list[Q]:
    """`_visibility_arms` of the person `user_pk`, agent of `agent_departments`."""
    from tickets.models import Ticket

    watching = Exists(
        Ticket.watchers.through.objects.filter(ticket_id=OuterRef("pk"), user_id=user_pk)
    )
    arms = [Q(requester_id=user_pk), Q(confidential=False) & watching]
    if agent_departments:
        arms.append(
            Q(supplier_department_id__in=agent_departments)
            & (Q(confidential=False) | Q(assignee_id=user_pk) | _handles_the_service(user_pk))
        )
    return arms


def _handles_the_service(user_pk: int) -> Exists:
    """The ticket's service names the person `user_pk` among its handlers."""
    from departments.models import Service

    return Exists(
        Service.handlers.through.objects.filter(service_id=OuterRef("service_id"), user_id=user_pk)
    )


def department_tickets_filter(user, department_ids: set[int]) -> Q:
    """`visible_tickets_filter(user)` narrowed to the tickets `department_ids` supply, for
    departments `user` works as an agent (their queue). There it reads "not confidential, or
    their own request, or assigned to them, or a service they handle": one subquery where the
    general filter has two (the queue builds it on every request, and the watchers' subquery
    cost more to build than the rest of the queue's query)."""
    if is_admin(user):
        return Q(supplier_department_id__in=department_ids)
    if not set(department_ids) <= agent_department_ids(user):
        raise ValueError("department_tickets_filter takes departments the person works")
    return department_tickets_filter_of(user.pk, department_ids)


def department_tickets_filter_of(user_pk: int, department_ids) -> Q:
    """`department_tickets_filter` of a person who is not an admin, from their id and the
    departments (among those they work) alone: for SQL compiled once per shape."""
    return Q(supplier_department_id__in=department_ids) & (
        Q(confidential=False)
        | Q(requester_id=user_pk)
        | Q(assignee_id=user_pk)
        | _handles_the_service(user_pk)
    )


def visible_tickets_filter(user) -> Q:
    """A Q for the tickets `user` may see; the queryset twin of `can_view_ticket`."""
    if is_admin(user):
        return Q()
    if not user or not user.is_authenticated:
        return Q(pk__in=[])
    return reduce(or_, _visibility_arms(user))


def visible_tickets(queryset: QuerySet, user) -> QuerySet:
    return queryset.filter(visible_tickets_filter(user))


def visible_ticket_parts(queryset: QuerySet, user) -> list[QuerySet]:
    """`visible_tickets(queryset, user)` as querysets whose union it is, for a long list read a
    page at a time: their requests, what they watch, their departments' queues.

    One query with all three conditions can only filter the whole history in the list's order
    until it has a page (or the capped count), which is quick while the person sees much of
    it and slow when they see a sliver: at 1M tickets, 0.36-1.1 s for the page of someone
    who works no queue, 0.9 s for an agent's list narrowed to another department. Each
    condition on its own is an index lookup (12-30 ms for the same pages). Admins see
    everything: one part.
    """
    if is_admin(user) or not user or not user.is_authenticated:
        return [visible_tickets(queryset, user)]
    return [queryset.filter(arm) for arm in _visibility_arms(user)]


def visible_ticket_parts_shape(user) -> tuple[tuple, tuple[int, ...], Callable] | None:
    """`visible_ticket_parts` as (shape, values, parts_of), or None for a person not signed
    in: `parts_of(queryset, values)` is `visible_ticket_parts(queryset, user)` built from the
    ints in `values` alone (the person and their departments), so that
    servicedesk.prepared.PreparedShapes can compile it once per shape and put another
    person's values in."""
    if not user or not user.is_authenticated:
        return None
    if is_admin(user):
        return ("admin",), (), lambda queryset, values: [queryset]
    departments = tuple(sorted(agent_department_ids(user)))

    def parts_of(queryset, values):
        return [queryset.filter(arm) for arm in _visibility_arms_of(values[0], values[1:])]

    return ("arms", len(departments)), (user.pk, *departments), parts_of


def is_named_handler(user, ticket) -> bool:
    if ticket.assignee_id == user.pk:
        return True
    return ticket.service.handlers.filter(pk=user.pk).exists()


def can_view_ticket(user, ticket) -> bool:
    if is_admin(user):
        return True
    if not user or not user.is_authenticated:
        return False
    if ticket.requester_id == user.pk:
        return True
    if ticket.supplier_department_id in memberships(user):
        return not ticket.confidential or is_named_handler(user, ticket)
    if ticket.confidential:
        return False
    return ticket.watchers.filter(pk=user.pk).exists()


def can_work_ticket(user, ticket) -> bool:
    """Agents of the supplier department (who can see it) work it: assign, transition…"""
    if is_admin(user):
        return True
    if ticket.supplier_department_id not in memberships(user):
        return False
    return not ticket.confidential or is_named_handler(user, ticket)


def can_see_internal_notes(user, ticket) -> bool:
    return can_work_ticket(user, ticket)


def can_be_assigned(user, ticket) -> bool:
    """Agents of the supplier department; on a confidential request only its named handlers
    (and admins), so assigning never widens who sees it."""
    if not is_agent_of(user, ticket.supplier_department_id):
        return False
    if not ticket.confidential or is_admin(user):
        return True
    return ticket.service.handlers.filter(pk=user.pk).exists()


def can_view_attachment(user, attachment) -> bool:
    """Whoever may see the ticket; files of internal notes only for who may see the notes."""
    ticket = attachment.ticket
    if not can_view_ticket(user, ticket):
        return False
    comment = attachment.comment
    return comment is None or not comment.internal or can_see_internal_notes(user, ticket)


def can_reply(user, ticket) -> bool:
    return can_view_ticket(user, ticket)


def can_rate(user, ticket) -> bool:
    return ticket.requester_id == user.pk


def can_cancel(user, ticket) -> bool:
    return ticket.requester_id == user.pk or can_work_ticket(user, ticket)


def requester_transitions() -> set[tuple[str, str]]:
    """Transitions a requester may make on its own request (agents may make all)."""
    return {
        ("resolved", "open"),  # reopen, within the window
        ("resolved", "closed"),  # accept the resolution
        ("waiting_on_customer", "open"),  # answered
        ("new", "cancelled"),
        ("open", "cancelled"),
        ("waiting_on_customer", "cancelled"),
        ("resolved", "cancelled"),
    }


def can_transition(user, ticket, to_status: str) -> bool:
    if can_work_ticket(user, ticket):
        return True
    return ticket.requester_id == user.pk and (ticket.status, to_status) in requester_transitions()


def reopen_deadline(ticket):
    """Until when the requester may reopen a resolved ticket (None if not resolved)."""
    from datetime import timedelta

    from django.conf import settings

    if ticket.status != "resolved" or ticket.resolved_at is None:
        return None
    return ticket.resolved_at + timedelta(days=settings.REOPEN_WINDOW_DAYS)


def can_transition_now(user, ticket, to_status: str, *, now) -> bool:
    """`can_transition` plus the reopen window for requesters (what the UI offers; the
    service `ticket_transition` applies the same window)."""
    if not can_transition(user, ticket, to_status):
        return False
    if ticket.status == "resolved" and to_status == "open" and not can_work_ticket(user, ticket):
        deadline = reopen_deadline(ticket)
        return deadline is None or now <= deadline
    return True


def can_manage_watcher(actor, ticket, person, *, watching: bool) -> bool:
    """Agents of the supplier manage watchers; anyone may stop watching a ticket."""
    return can_work_ticket(actor, ticket) or (person.pk == actor.pk and not watching)


# --- Departments, dashboards, configuration -------------------------------------------------


def can_view_dashboard(user, department) -> bool:
    return is_lead_of(user, department.pk)


def dashboard_department_ids(user) -> set[int] | None:
    """Departments whose dashboards `user` may open; None means all (admin)."""
    if is_admin(user):
        return None
    return lead_department_ids(user)


def can_view_dashboards(user) -> bool:
    """The Dashboards area (index, organisation map, satisfaction, exports): leads and admins."""
    return is_lead(user)


def organisation_map_department_ids(user) -> set[int] | None:
    """Whose rows of the supplier × customer map `user` sees: None = every row (admin), else
    the rows where one of its led departments is the supplier or the customer."""
    return dashboard_department_ids(user)


def dashboard_tickets_filter(user) -> Q:
    """Tickets `user` may *list* behind dashboard figures (reference, title, status).

    Admins: all. Leads: the tickets their departments supply or request, except confidential
    ones they could not open anyway. Opening a ticket still needs `can_view_ticket`.
    """
    if is_admin(user):
        return Q()
    leads = lead_department_ids(user)
    if not leads:
        return Q(pk__in=[])
    scope = Q(supplier_department_id__in=leads) | Q(customer_department_id__in=leads)
    return scope & (Q(confidential=False) | visible_tickets_filter(user))


def can_view_export(user, export) -> bool:
    """A CSV export belongs to whoever asked for it."""
    return bool(user and user.is_authenticated and export.requested_by_id == user.pk)


def can_configure_department(user, department) -> bool:
    if is_admin(user):
        return True
    return department.leads_may_configure and is_lead_of(user, department.pk)


def can_configure_standard(user, standard) -> bool:
    if is_admin(user):
        return True
    department = standard.department
    return department is not None and can_configure_department(user, department)


def can_configure_calendars(user) -> bool:
    return is_admin(user)


# --- Notifications --------------------------------------------------------------------------


def can_view_notification(user, notification) -> bool:
    """A notification is its recipient's alone (admins included: it is personal)."""
    return bool(user and user.is_authenticated and notification.recipient_id == user.pk)


def can_create_standard(user, department) -> bool:
    """Publish a standard owned by `department` (None: an organisation-wide one, admins)."""
    if department is None:
        return is_admin(user)
    return can_configure_department(user, department)


def sla_metrics_scope(user, *, supplier=None, customer=None) -> dict | None:
    """Which tickets' SLA figures `user` may read, or None if none (answer 404).

    A lead sees its departments as supplier and as customer (SPEC §6 dashboards); an admin
    sees the whole organisation. Returns department-id sets to filter by: `supplier_ids`,
    `customer_ids` (None = any) and `either_ids` (supplier or customer among them).
    """
    scope = {
        "supplier_ids": {supplier.pk} if supplier is not None else None,
        "customer_ids": {customer.pk} if customer is not None else None,
        "either_ids": None,
    }
    if is_admin(user):
        return scope
    leads = lead_department_ids(user)
    if not leads:
        return None
    if supplier is None and customer is None:
        return {**scope, "either_ids": leads}
    if (supplier is not None and supplier.pk in leads) or (
        customer is not None and customer.pk in leads
    ):
        return scope
    return None


# --- Configuration pages (issue 7) ------------------------------------------------------------


def configurable_department_ids(user) -> set[int] | None:
    """Departments whose standards `user` may configure; None means all (admin)."""
    if is_admin(user):
        return None
    if not user or not user.is_authenticated:
        return set()
    if getattr(user, "_servicedesk_configurable", None) is None:
        _load_memberships(user)
    return set(user._servicedesk_configurable)


def can_open_configuration(user) -> bool:
    """The "Configuration" pages: admins, and leads whose department allows it."""
    ids = configurable_department_ids(user)
    return ids is None or bool(ids)


def can_view_calendar(user) -> bool:
    """Read calendars (to choose one for a standard, and to see its preview)."""
    return can_open_configuration(user)


def can_view_replay_job(user, job) -> bool:
    """A what-if job is seen by whoever asked for it, and by admins."""
    return is_admin(user) or (
        bool(user and user.is_authenticated) and job.requested_by_id == user.pk
    )
