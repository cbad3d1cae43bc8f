"""Bulk-insert a large, plausible ticket history for scale tests and benchmarks.

Rows are written in batches with `bulk_create` (one INSERT per batch and table) instead of
through the per-ticket services, so 1,000,000 tickets load in minutes. The SLA clocks are
computed with the same pure calendar arithmetic as live clocks, so dashboards over this
history are consistent with the engine.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from departments.models import Department, Membership, Service, User
from slas.models import SlaClock, StandardTarget
from slas.selectors import business_calendar, version_for_service
from tickets.models import Comment, Event, Status, Ticket

BATCH = 5_000


def bulk_seed_tickets(
    *,
    count: int,
    days: int = 180,
    seed: int = 42,
    open_share: float = 0.3,
    comments_per_ticket: int = 2,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Insert `count` tickets filed over the last `days` days; return how many were made."""
    rng = random.Random(seed)
    now = timezone.now()
    services = list(Service.objects.filter(active=True).select_related("department"))
    people = list(User.objects.values_list("pk", "home_department_id"))
    agents: dict[int, list[int]] = {}
    for user_id, department_id in Membership.objects.values_list("user_id", "department_id"):
        agents.setdefault(department_id, []).append(user_id)
    versions = {s.pk: version_for_service(s) for s in services}
    targets = {
        (t.version_id, t.priority): t
        for t in StandardTarget.objects.filter(
            version_id__in={v.pk for v in versions.values() if v}
        )
    }
    calendars = {v.pk: business_calendar(v.calendar_id) for v in versions.values() if v}
    made = 0
    while made < count:
        size = min(BATCH, count - made)
        with transaction.atomic():
            _batch(
                size=size,
                rng=rng,
                now=now,
                days=days,
                services=services,
                people=people,
                agents=agents,
                versions=versions,
                targets=targets,
                calendars=calendars,
                open_share=open_share,
                comments_per_ticket=comments_per_ticket,
            )
        made += size
        if progress and (made % 50_000 == 0 or made == count):
            progress(made)
    return made


def _batch(
    *,
    size,
    rng,
    now,
    days,
    services,
    people,
    agents,
    versions,
    targets,
    calendars,
    open_share,
    comments_per_ticket,
) -> None:
    picks = []
    per_department: dict[int, int] = {}
    for _ in range(size):
        service = rng.choice(services)
        requester_id, home_id = rng.choice(people)
        picks.append((service, requester_id, home_id))
        per_department[service.department_id] = per_department.get(service.department_id, 0) + 1
    # Reserve a block of reference numbers per supplier under the row lock.
    first_number = {}
    codes = {}
    for department in Department.objects.select_for_update().filter(pk__in=per_department):
        first_number[department.pk] = department.last_ticket_number + 1
        codes[department.pk] = department.code
        Department.objects.filter(pk=department.pk).update(
            last_ticket_number=F("last_ticket_number") + per_department[department.pk]
        )
    tickets, plans = [], []
    for service, requester_id, home_id in picks:
        department_id = service.department_id
        number = first_number[department_id]
        first_number[department_id] += 1
        filed = now - timedelta(seconds=rng.uniform(0, days * 86400))
        priority = rng.choices(["P1", "P2", "P3", "P4"], [1, 3, 12, 4])[0]
        is_open = rng.random() < open_share or now - filed < timedelta(hours=4)
        response_after = timedelta(minutes=rng.expovariate(1 / 180))
        resolve_after = response_after + timedelta(minutes=rng.expovariate(1 / 1800))
        if is_open:
            status = rng.choice([Status.NEW, Status.OPEN, Status.OPEN, Status.WAITING_ON_CUSTOMER])
        else:
            status = rng.choices([Status.CLOSED, Status.RESOLVED, Status.CANCELLED], [7, 2, 1])[0]
        responded = filed + response_after if status != Status.NEW else None
        resolved = filed + resolve_after if status in (Status.RESOLVED, Status.CLOSED) else None
        if resolved and resolved > now:
            resolved = now - timedelta(minutes=1)
        if responded and responded > now:
            responded = now - timedelta(minutes=1)
        agent_pool = agents.get(department_id) or [None]
        ticket = Ticket(
            reference=f"{codes[department_id]}-{number}",
            number=number,
            title=f"{service.name} #{number}",
            description="Generated history.",
            service=service,
            supplier_department_id=department_id,
            customer_department_id=home_id,
            requester_id=requester_id,
            assignee_id=rng.choice(agent_pool) if status != Status.NEW else None,
            priority=priority,
            status=status,
            confidential=service.confidential,
            created_at=filed,
            updated_at=resolved or responded or filed,
            first_responded_at=responded,
            resolved_at=resolved,
            closed_at=resolved + timedelta(days=2)
            if status == Status.CLOSED and resolved
            else None,
            resolution_count=1 if resolved else 0,
        )
        tickets.append(ticket)
        plans.append((ticket, service, filed, responded, resolved, status))
    Ticket.objects.bulk_create(tickets, batch_size=BATCH)
    clocks, events, comments = [], [], []
    for ticket, service, filed, responded, resolved, status in plans:
        events.append(
            Event(
                ticket=ticket,
                actor_id=ticket.requester_id,
                kind=Event.Kind.CREATED,
                after={"status": "new"},
                created_at=filed,
            )
        )
        if status != Status.NEW:
            events.append(
                Event(
                    ticket=ticket,
                    actor_id=ticket.assignee_id,
                    kind=Event.Kind.STATUS,
                    field="status",
                    before="new",
                    after=status,
                    created_at=responded,
                )
            )
        for n in range(comments_per_ticket):
            comments.append(
                Comment(
                    ticket=ticket,
                    author_id=ticket.assignee_id or ticket.requester_id,
                    body="Generated reply." if n else "Generated question.",
                    internal=False,
                    created_at=(responded or filed) + timedelta(minutes=n),
                )
            )
        version = versions.get(service.pk)
        if version is None:
            continue
        calendar = calendars[version.pk]
        target_row = targets.get((version.pk, ticket.priority))
        if target_row is None:
            continue
        for metric, stop in (("first_response", responded), ("resolution", resolved)):
            target = target_row.target_for(metric)
            clock = SlaClock(ticket=ticket, metric=metric, version=version, target=target)
            if status == Status.CANCELLED:
                clock.status = SlaClock.Status.CANCELLED
                clock.stopped_at = ticket.updated_at
                clock.elapsed = calendar.elapsed(filed, ticket.updated_at)
            elif stop is not None:
                clock.status = SlaClock.Status.STOPPED
                clock.stopped_at = stop
                clock.elapsed = calendar.elapsed(filed, stop)
                clock.deadline = calendar.add(filed, target)
                if clock.elapsed > target:
                    clock.breached_at = clock.deadline
            elif status == Status.WAITING_ON_CUSTOMER:
                clock.status = SlaClock.Status.PAUSED
                clock.elapsed = calendar.elapsed(filed, responded or filed)
                if clock.elapsed > target:
                    clock.breached_at = calendar.add(filed, target)
            else:
                clock.status = SlaClock.Status.RUNNING
                clock.running_since = filed
                clock.deadline = calendar.add(filed, target)
                if clock.deadline < now:
                    clock.breached_at = clock.deadline
            clocks.append(clock)
        running = [
            c.deadline
            for c in clocks[-2:]
            if c.status == SlaClock.Status.RUNNING and c.breached_at is None
        ]
        ticket.next_sla_event_at = min(running) if running else None
        deadlines = [c.deadline for c in clocks[-2:] if c.status == SlaClock.Status.RUNNING]
        ticket.sla_deadline = min(deadlines) if deadlines else None
    SlaClock.objects.bulk_create(clocks, batch_size=BATCH)
    Event.objects.bulk_create(events, batch_size=BATCH)
    Comment.objects.bulk_create(comments, batch_size=BATCH)
    Ticket.objects.bulk_update(
        [t for t, *_ in plans if t.next_sla_event_at or t.sla_deadline],
        ["next_sla_event_at", "sla_deadline"],
        batch_size=BATCH,
    )
