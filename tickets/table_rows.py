"""The rows of the ticket tables (queue, my requests, home) read as plain values (issue 10).

Through model instances a page of 25 tickets built ~230 objects (each ticket with its service,
two departments, requester and assignee, two clocks and their versions), about a third of the
queue's CPU. A table shows a few columns of each: here they are one values_list() query with
the joins the names need, the page's clocks one more, and each row a small slotted object that
templates read like the ticket (`row.reference`, `row.sla`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from servicedesk.prepared import PreparedByIds
from tickets.models import Ticket
from tickets.selectors import SlaLens, page_clocks

# What a row shows, in TicketRow's order (names as User.get_full_name() builds them).
_COLUMNS = (
    "pk",
    "reference",
    "title",
    "created_at",
    "priority",
    "status",
    "assignee_id",
    "service__name",
    "supplier_department__name",
    "customer_department__name",
    "requester__username",
    "requester__first_name",
    "requester__last_name",
    "assignee__username",
    "assignee__first_name",
    "assignee__last_name",
)


@dataclass(slots=True)
class TicketRow:
    pk: int
    reference: str
    title: str
    created_at: datetime
    priority: str
    status: str
    assignee_id: int | None
    service_name: str
    supplier_department_name: str
    customer_department_name: str | None
    requester_name: str
    # None when nobody is assigned.
    assignee_name: str | None
    # SlaLens.summary_of the ticket's clocks (None: no standard applies).
    sla: dict | None = None


# A page's columns by ticket id: the five joins the names need cost PostgreSQL 1.8-3.9 ms to
# plan against ~0.3 ms to run, so they are read by SQL prepared once per connection
# (servicedesk/prepared.py), after the page's ids came from the filtered, ordered query alone.
_columns_by_id = PreparedByIds(Ticket.objects.all(), "pk", _COLUMNS)


def row_values(tickets: QuerySet | list[int]) -> list[tuple]:
    """The tickets of `tickets` (a queryset filtered, ordered and sliced to a page, or their
    ids: CappedPaginator's pages) in its order, as the value tuples `table_rows` takes."""
    if isinstance(tickets, QuerySet):
        rows = tickets.select_related(None).prefetch_related(None)
        tickets = list(rows.values_list("pk", flat=True))
    return _columns_by_id.rows_in_order(tickets)


def display_name(username: str, first_name: str, last_name: str) -> str:
    """How pages name a person: User.get_full_name(), or the username when that is empty."""
    return f"{first_name} {last_name}".strip() or username


def table_rows(values: Iterable[tuple], *, lens: SlaLens) -> list[TicketRow]:
    """TicketRows for `row_values` tuples (in their order), with their SLA summary as of
    `lens.now`."""
    values = list(values)
    clocks = page_clocks([value[0] for value in values])
    lens.prime_rows(clock for ticket_clocks in clocks.values() for clock in ticket_clocks)
    rows = []
    for (
        pk,
        reference,
        title,
        created_at,
        priority,
        status,
        assignee_id,
        service_name,
        supplier_name,
        customer_name,
        requester_username,
        requester_first,
        requester_last,
        assignee_username,
        assignee_first,
        assignee_last,
    ) in values:
        rows.append(
            TicketRow(
                pk=pk,
                reference=reference,
                title=title,
                created_at=created_at,
                priority=priority,
                status=status,
                assignee_id=assignee_id,
                service_name=service_name,
                supplier_department_name=supplier_name,
                customer_department_name=customer_name,
                requester_name=display_name(requester_username, requester_first, requester_last),
                assignee_name=(
                    display_name(assignee_username, assignee_first, assignee_last)
                    if assignee_id is not None
                    else None
                ),
                sla=lens.summary_of(clocks.get(pk, [])),
            )
        )
    return rows
