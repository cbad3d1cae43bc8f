"""Firing the escalation ladder (SPEC §3 "ladder levels", SPEC §4 "escalation").

Levels are fired for many due tickets per transaction (`_fire_batch`), in a constant number of
statements per batch: lock the batch's ticket rows with one `SELECT … FOR UPDATE SKIP LOCKED`,
read their clocks, ladder levels, recorded escalations and the leads the actions name in one
query each, work out what fires with the pure SPEC §3 rules in memory (breaches, thresholds,
raised priorities re-targeting the clocks, reassignments, recipients), then write: the
Escalation rows in one `INSERT … ON CONFLICT DO NOTHING RETURNING` (the unique constraint
decides; anything else is written only when every planned row went in), the Notification rows
and the audit Events in one INSERT each, the changed clocks and tickets (next SLA event,
nearest deadline, priority, assignee) in one UPDATE each, and the dashboards' roll-ups for the
batch set-based. A worker killed half-way rolls the whole batch back: every level is still
due and is fired again, once.

`sla_escalate` fires one ticket (an ETA task's), optionally with other due tickets in the same
batch; `sla_sweep` fires every due ticket, batch by batch, and hands instants entering the
scheduling horizon to drain tasks, one per slot of instants (`sla_schedule_near`,
`sla_drain`), which fire tickets as they fall due. README "Escalation design" has the whole
picture.
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    connection,
    transaction,
)
from django.utils import timezone
from django.utils.translation import gettext as _

from departments.models import Membership
from reports import services as report_services
from servicedesk import permissions
from servicedesk.bulk_sql import insert_values, update_rows
from slas import rules
from slas import services as sla_services
from slas.clock import BusinessCalendar
from slas.models import (
    Escalation,
    LadderAction,
    LadderLevel,
    Metric,
    SlaClock,
    StandardTarget,
    StandardVersion,
)
from slas.selectors import business_calendar_of, clock_elapsed, threshold_duration
from tickets.models import Event, Ticket
from tickets.notifications import Notice, email_batch, notify_many

logger = logging.getLogger(__name__)

ZERO = timedelta(0)
PRIORITY_UP = {"P4": "P3", "P3": "P2", "P2": "P1"}
# Actions run in this order whatever order the level lists them in: a reassignment happens
# before "notify the assignee", so the new assignee (the lead) is the one told.
ACTION_ORDER = [
    LadderAction.RAISE_PRIORITY,
    LadderAction.REASSIGN_TO_LEAD,
    LadderAction.NOTIFY_ASSIGNEE,
    LadderAction.NOTIFY_SUPPLIER_LEAD,
    LadderAction.NOTIFY_PARENT_LEAD,
    LadderAction.NOTIFY_CUSTOMER_LEAD,
]
LEAD_ACTIONS = {
    LadderAction.REASSIGN_TO_LEAD,
    LadderAction.NOTIFY_SUPPLIER_LEAD,
    LadderAction.NOTIFY_PARENT_LEAD,
    LadderAction.NOTIFY_CUSTOMER_LEAD,
}
# A raised priority re-targets the clocks, which can make further levels due at once; they are
# fired in the same transaction, a bounded number of rounds.
MAX_ROUNDS = 6
# Tickets per firing transaction. Each batch holds its tickets' row locks until it commits
# (a person changing one of them waits that long), so it stays well under a second.
FIRE_BATCH = 200
# Attempts at a batch whose Escalation INSERT met rows recorded by someone else (not possible
# while every writer takes the ticket row lock first, but the constraint is what we trust).
MAX_ATTEMPTS = 3
TRANSIENT_DB_ERRORS = (OperationalError, InterfaceError)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TICKET_FIELDS = ["priority", "assignee", "updated_at", "next_sla_event_at", "sla_deadline"]
EVENT_FIELDS = ("ticket", "actor", "kind", "field", "before", "after", "internal", "created_at")
ESCALATION_FIELDS = ("ticket", "metric", "threshold", "level", "due_at", "fired_at", "actions")


@dataclass
class EscalateOutcome:
    ticket_id: int
    locked: bool = False
    missing: bool = False
    due: bool = False
    fired: list[Escalation] = field(default_factory=list)
    breached: list[str] = field(default_factory=list)
    next_event_at: datetime | None = None


@dataclass
class SweepOutcome:
    due_found: int = 0
    fired: int = 0
    skipped_locked: int = 0
    failed: int = 0
    scheduled: int = 0
    seconds: float = 0.0


@dataclass
class _DueLevel:
    clock: SlaClock
    level: LadderLevel
    due_at: datetime


@dataclass
class _Plan:
    """What firing one ticket does, worked out in memory before anything is written."""

    ticket: Ticket
    outcome: EscalateOutcome
    escalations: list[Escalation] = field(default_factory=list)
    events: list[tuple] = field(default_factory=list)  # EVENT_FIELDS values
    notices: list[Notice] = field(default_factory=list)
    clocks: dict[int, SlaClock] = field(default_factory=dict)  # changed clocks by id
    ticket_changed: bool = False
    report_changed: bool = False


class _Batch:
    """The rows one firing transaction works on, each kind read in one query."""

    def __init__(self, ticket_ids: list[int], now: datetime):
        self.now = now
        self.tickets = list(
            Ticket.objects.select_related("assignee", "supplier_department")
            .filter(pk__in=ticket_ids)
            .order_by("pk")
        )
        ids = [ticket.pk for ticket in self.tickets]
        # Running and paused clocks: the running ones fire, a raised priority re-targets both.
        self.clocks: dict[int, list[SlaClock]] = defaultdict(list)
        clocks = list(
            SlaClock.objects.filter(
                ticket_id__in=ids, status__in=[SlaClock.Status.RUNNING, SlaClock.Status.PAUSED]
            ).order_by("ticket_id", "metric")
        )
        # The few versions (with their calendar rows) once, not joined onto every clock.
        self.versions: dict[int, StandardVersion] = {
            version.pk: version
            for version in StandardVersion.objects.select_related("calendar").filter(
                pk__in={clock.version_id for clock in clocks}
            )
        }
        for clock in clocks:
            SlaClock.version.field.set_cached_value(clock, self.versions[clock.version_id])
            self.clocks[clock.ticket_id].append(clock)
        self.levels: dict[int, list[LadderLevel]] = defaultdict(list)
        if self.versions:
            for level in LadderLevel.objects.filter(version_id__in=self.versions).order_by(
                "version_id", "metric", "threshold"
            ):
                self.levels[level.version_id].append(level)
        # (metric, threshold) recorded per ticket, under any version.
        self.recorded: dict[int, set[tuple[str, str]]] = defaultdict(set)
        for ticket_id, metric, threshold in Escalation.objects.filter(
            ticket_id__in=ids
        ).values_list("ticket_id", "metric", "threshold"):
            self.recorded[ticket_id].add((metric, f"{threshold:.2f}"))
        self.texts: dict = {}  # translated message parts (_escalation_message)
        self._targets: dict[tuple[int, str], StandardTarget] | None = None
        self._leads: dict[int, list] | None = None

    def calendar(self, clock: SlaClock) -> BusinessCalendar:
        # The clocks are read with their calendar row: a cached calendar costs no query.
        return business_calendar_of(clock.version.calendar)

    def target(self, version_id: int, priority: str) -> StandardTarget | None:
        """The version's targets for a priority (all versions' targets in one query, read
        only when a level raises a priority)."""
        if self._targets is None:
            self._targets = {
                (target.version_id, target.priority): target
                for target in StandardTarget.objects.filter(version_id__in=self.versions)
            }
        return self._targets.get((version_id, priority))

    def leads_of(self, department_id: int | None) -> list:
        """Active leads of a department, by username (every department the batch's tickets
        can name — supplier, its parent, customer — read in one query, on first need)."""
        if department_id is None:
            return []
        if self._leads is None:
            departments = set()
            for ticket in self.tickets:
                departments |= {
                    ticket.supplier_department_id,
                    ticket.supplier_department.parent_id,
                    ticket.customer_department_id,
                }
            departments.discard(None)
            self._leads = defaultdict(list)
            for membership in (
                Membership.objects.select_related("user")
                .filter(
                    department_id__in=departments,
                    role=Membership.Role.LEAD,
                    user__is_active=True,
                )
                .order_by("user__username", "pk")
            ):
                leads = self._leads[membership.department_id]
                if all(lead.pk != membership.user_id for lead in leads):
                    leads.append(membership.user)
        return self._leads.get(department_id, [])


# --- The firing use cases -------------------------------------------------------------------


def sla_escalate(*, ticket_id: int, now: datetime, others: int = 0) -> EscalateOutcome:
    """Fire every ladder level of `ticket_id` whose threshold instant is at or before `now`.

    With `others`, up to that many other due tickets (earliest first) are fired in the same
    batch: an ETA task woken for one instant takes everything due with it.

    Safe to call any number of times, from any number of processes: the ticket row is taken
    with SKIP LOCKED (a busy ticket is left to whoever holds it, the caller retries later) and
    each level is recorded under the `escalation_once_per_level` unique constraint.
    """
    outcome = EscalateOutcome(ticket_id=ticket_id)
    with transaction.atomic():
        # SKIP LOCKED, not a plain FOR UPDATE: when another worker is firing this ticket (or a
        # person is changing it) we must neither wait nor fire on a stale read. The holder
        # leaves the row consistent; our caller retries or the next sweep comes back.
        row = (
            Ticket.objects.select_for_update(skip_locked=True)
            .filter(pk=ticket_id)
            .values_list("next_sla_event_at", flat=True)
        )
        found = list(row)
        if not found:
            outcome.missing = not Ticket.objects.filter(pk=ticket_id).exists()
            outcome.locked = not outcome.missing
            return outcome
        outcome.next_event_at = found[0]
        if found[0] is None or found[0] > now:
            return outcome  # the state moved on since this work was found
        ids = [ticket_id]
        if others > 0:
            ids += _lock_due(now=now, limit=others, exclude=ids)
        outcomes = _fire_locked(ids, now)
    return outcomes.get(ticket_id, outcome)


def sla_fire_due(
    *, now: datetime, limit: int = FIRE_BATCH, exclude: list[int] | tuple = ()
) -> dict[int, EscalateOutcome]:
    """Fire up to `limit` due tickets (earliest instant first) in one transaction; return
    each fired ticket's outcome (empty: nothing due, or only tickets others hold).

    `exclude` leaves out tickets the caller has seen failing or still due after firing."""
    with transaction.atomic():
        ids = _lock_due(now=now, limit=limit, exclude=exclude)
        if not ids:
            return {}
        return _fire_locked(ids, now)


def _lock_due(*, now: datetime, limit: int, exclude) -> list[int]:
    """Lock and return due tickets, earliest first, skipping rows others hold (partial index
    scan on next_sla_event_at; SKIP LOCKED lets any number of workers share the work)."""
    queryset = Ticket.objects.select_for_update(skip_locked=True).filter(next_sla_event_at__lte=now)
    if exclude:
        queryset = queryset.exclude(pk__in=list(exclude))
    return list(queryset.order_by("next_sla_event_at").values_list("pk", flat=True)[:limit])


def _fire_locked(ticket_ids: list[int], now: datetime) -> dict[int, EscalateOutcome]:
    """Fire the due levels of tickets whose rows this transaction holds locked."""
    for _attempt in range(MAX_ATTEMPTS):
        batch = _Batch(ticket_ids, now)
        plans = [_plan(batch, ticket) for ticket in batch.tickets]
        written = _write(batch, plans)
        if written:
            return {plan.ticket.pk: plan.outcome for plan in plans}
    raise DatabaseError(f"escalation rows of tickets {ticket_ids} keep conflicting")


# --- Planning (in memory, SPEC §3 rules) ----------------------------------------------------


def _plan(batch: _Batch, ticket: Ticket) -> _Plan:
    """Work out everything firing `ticket` at `batch.now` does, without writing."""
    now = batch.now
    plan = _Plan(ticket=ticket, outcome=EscalateOutcome(ticket_id=ticket.pk))
    plan.outcome.next_event_at = ticket.next_sla_event_at
    if ticket.next_sla_event_at is None or ticket.next_sla_event_at > now:
        return plan  # moved on since it was found
    plan.outcome.due = True
    all_clocks = batch.clocks.get(ticket.pk, [])
    fired = set(batch.recorded.get(ticket.pk, ()))
    for _round in range(MAX_ROUNDS):
        clocks = [clock for clock in all_clocks if clock.status == SlaClock.Status.RUNNING]
        for clock in clocks:
            # A running clock past its deadline is breached from the deadline on (SPEC §3).
            if clock.breached_at is None and clock.deadline is not None and clock.deadline < now:
                clock.breached_at = clock.deadline
                plan.clocks[clock.pk] = clock
                plan.outcome.breached.append(clock.metric)
                plan.report_changed = True
        due_levels = _due_levels(batch, clocks=clocks, fired=fired)
        retargeted = False
        round_rows = []
        for due in due_levels:
            details, changed = _apply_actions(batch, plan, due)
            row = Escalation(
                ticket_id=ticket.pk,
                metric=due.level.metric,
                threshold=due.level.threshold,
                level_id=due.level.pk,
                due_at=due.due_at,
                fired_at=now,
                actions=details,
            )
            round_rows.append((due, row))
            fired.add((due.level.metric, f"{due.level.threshold:.2f}"))
            retargeted = retargeted or "priority" in changed
            plan.report_changed = plan.report_changed or bool(changed)
        for due, row in round_rows:
            plan.escalations.append(row)
            plan.events.append(_escalation_event(ticket=ticket, due=due, escalation=row))
        if not retargeted:
            break
    running = [clock for clock in all_clocks if clock.status == SlaClock.Status.RUNNING]
    next_at = sla_services.next_event_for_clocks(
        clocks=running,
        levels=[
            level
            for version_id in {clock.version_id for clock in running}
            for level in batch.levels.get(version_id, ())
        ],
        fired=fired,
        calendar_for=batch.calendar,
    )
    deadline = min((c.deadline for c in running if c.deadline is not None), default=None)
    if (next_at, deadline) != (ticket.next_sla_event_at, ticket.sla_deadline):
        ticket.next_sla_event_at, ticket.sla_deadline = next_at, deadline
        plan.ticket_changed = True
    plan.outcome.next_event_at = next_at
    plan.outcome.fired = plan.escalations
    return plan


def _due_levels(batch: _Batch, *, clocks: list[SlaClock], fired: set) -> list[_DueLevel]:
    """Unfired levels with elapsed ≥ threshold × target, each with the instant it was reached."""
    due: list[_DueLevel] = []
    for clock in clocks:
        calendar = None
        elapsed = None
        for level in batch.levels.get(clock.version_id, ()):
            if level.metric != clock.metric or (level.metric, f"{level.threshold:.2f}") in fired:
                continue
            if calendar is None:
                calendar = batch.calendar(clock)
                elapsed = clock_elapsed(clock=clock, calendar=calendar, now=batch.now)
            at = threshold_duration(target=clock.target, threshold=level.threshold)
            if elapsed < at:
                continue
            remaining = at - clock.elapsed
            due_at = (
                clock.running_since
                if remaining <= ZERO
                else calendar.add(clock.running_since, remaining)
            )
            due.append(_DueLevel(clock=clock, level=level, due_at=due_at))
    due.sort(key=lambda item: (item.due_at, item.level.metric, item.level.threshold))
    return due


def _event(ticket: Ticket, kind: str, field: str, before, after, now: datetime) -> tuple:
    """An audit Event by the system (no actor) as EVENT_FIELDS values."""
    return (ticket.pk, None, str(kind), field, before, after, False, now)


def _escalation_event(*, ticket: Ticket, due: _DueLevel, escalation: Escalation) -> tuple:
    return _event(
        ticket,
        Event.Kind.ESCALATION,
        due.level.metric,
        None,
        {
            "metric": due.level.metric,
            "threshold": f"{due.level.threshold:.2f}",
            "due_at": due.due_at.isoformat(),
            "actions": [detail["action"] for detail in escalation.actions],
        },
        escalation.fired_at,
    )


def _apply_actions(batch: _Batch, plan: _Plan, due: _DueLevel) -> tuple[list, set]:
    """Apply the level's actions (in memory) in ACTION_ORDER; return what was done and which
    ticket fields changed ("priority", "assignee")."""
    ticket = plan.ticket
    configured = set(due.level.actions or [])
    details: list[dict] = []
    changed: set[str] = set()
    message = None
    for unknown in sorted(configured - set(LadderAction.values)):
        logger.warning("ladder level %s has an unknown action %r", due.level.pk, unknown)
        details.append({"action": unknown, "skipped": "unknown action"})
    for action in ACTION_ORDER:
        if action not in configured:
            continue
        if action == LadderAction.RAISE_PRIORITY:
            detail = _raise_priority(batch, plan, due)
            if "after" in detail:
                changed.add("priority")
        elif action == LadderAction.REASSIGN_TO_LEAD:
            detail = _reassign_to_lead(batch, plan)
            if "after" in detail:
                changed.add("assignee")
        else:
            recipients = _recipients(batch, ticket=ticket, action=action)
            if message is None:
                message = _escalation_message(ticket=ticket, level=due.level, texts=batch.texts)
            # One key per (ticket, metric, level) — the Escalation row's own identity — so even
            # a level fired again after a crash could not notify anyone twice. It cannot exist
            # yet: the rows are written only once this level's Escalation row is inserted.
            plan.notices.append(
                Notice(
                    recipients=recipients,
                    ticket=ticket,
                    message=message,
                    dedupe_key=f"esc:{ticket.pk}:{due.level.metric}:{due.level.threshold:.2f}",
                )
            )
            detail = {"recipients": sorted(user.username for user in recipients)}
        details.append({"action": str(action), **detail})
    if changed:
        plan.ticket_changed = True
    return details, changed


def _raise_priority(batch: _Batch, plan: _Plan, due: _DueLevel) -> dict:
    """One step up, never above P1; clocks re-target like ticket_change_priority does (the
    version the ticket was filed under is kept, elapsed is kept)."""
    ticket, now = plan.ticket, batch.now
    before = ticket.priority
    after = PRIORITY_UP.get(before)
    if after is None:
        return {"skipped": "already the highest priority"}
    ticket.priority = after
    ticket.updated_at = now
    plan.events.append(_event(ticket, Event.Kind.PRIORITY, "priority", before, after, now))
    version = due.clock.version
    new_calendar = business_calendar_of(version.calendar)
    target = batch.target(version.pk, after)
    for clock in batch.clocks.get(ticket.pk, []):
        if target is None:
            break
        if rules.retarget(
            clock,
            version=version,
            target=target.target_for(clock.metric),
            old_calendar=batch.calendar(clock),
            new_calendar=new_calendar,
            now=now,
        ):
            plan.clocks[clock.pk] = clock
    return {"before": before, "after": after}


def _reassign_to_lead(batch: _Batch, plan: _Plan) -> dict:
    """Hand the ticket to a lead of the supplier department (the assignee stays if it is one)."""
    ticket, now = plan.ticket, batch.now
    leads = batch.leads_of(ticket.supplier_department_id)
    if ticket.confidential:
        # Issue 9: assigning must not widen who sees a confidential request.
        leads = [lead for lead in leads if permissions.can_be_assigned(lead, ticket)]
        if not leads:
            return {"skipped": "no lead is a named handler of this confidential request"}
    if not leads:
        return {"skipped": "the supplier department has no lead"}
    if ticket.assignee_id in {lead.pk for lead in leads}:
        return {"skipped": "already assigned to a lead"}
    before = ticket.assignee.username if ticket.assignee_id else None
    lead = leads[0]
    ticket.assignee = lead
    ticket.updated_at = now
    plan.events.append(_event(ticket, Event.Kind.ASSIGNED, "assignee", before, lead.username, now))
    return {"before": before, "after": lead.username}


def _recipients(batch: _Batch, *, ticket: Ticket, action: str) -> list:
    if action == LadderAction.NOTIFY_ASSIGNEE:
        assignee = ticket.assignee if ticket.assignee_id else None
        return [assignee] if assignee is not None and assignee.is_active else []
    if action == LadderAction.NOTIFY_SUPPLIER_LEAD:
        return batch.leads_of(ticket.supplier_department_id)
    if action == LadderAction.NOTIFY_PARENT_LEAD:
        return batch.leads_of(ticket.supplier_department.parent_id)
    if action == LadderAction.NOTIFY_CUSTOMER_LEAD:
        return batch.leads_of(ticket.customer_department_id)
    return []


# --- Writing a batch ------------------------------------------------------------------------


def _write(batch: _Batch, plans: list[_Plan]) -> bool:
    """Write the plans; False (nothing written) if the unique constraint refused a planned
    Escalation row, so the caller re-reads and plans again."""
    rows = [row for plan in plans for row in plan.escalations]
    if rows:
        try:
            with transaction.atomic():
                inserted = insert_values(
                    Escalation,
                    ESCALATION_FIELDS,
                    [
                        (r.ticket_id, r.metric, r.threshold, r.level_id, r.due_at, r.fired_at,
                         r.actions)
                        for r in rows
                    ],
                    ignore_conflicts=True,
                    returning=["id", "ticket", "metric", "threshold"],
                )  # fmt: skip
                if len(inserted) != len(rows):
                    raise _Conflict
        except _Conflict:
            logger.warning("escalation rows recorded meanwhile by another writer; re-planning")
            return False
        ids = {
            (ticket_id, metric, f"{Decimal(str(threshold)):.2f}"): pk
            for pk, ticket_id, metric, threshold in inserted
        }
        for row in rows:
            row.pk = ids[(row.ticket_id, row.metric, f"{row.threshold:.2f}")]
            row._state.adding = False
    # Only now that every level of the batch is recorded (by us) do its effects go in.
    notify_many(notices=[notice for plan in plans for notice in plan.notices], now=batch.now)
    insert_values(Event, EVENT_FIELDS, [event for plan in plans for event in plan.events])
    update_rows(
        SlaClock,
        [c for plan in plans for c in plan.clocks.values()],
        sla_services.CLOCK_STATE_FIELDS,
    )
    changed = [plan.ticket for plan in plans if plan.ticket_changed]
    update_rows(Ticket, changed, TICKET_FIELDS)
    _schedule_near([ticket for ticket in changed if ticket.next_sla_event_at is not None])
    _pause_for_fault_tests()
    _refresh_reports([plan.ticket.pk for plan in plans if plan.report_changed])
    return True


class _Conflict(Exception):
    """A planned Escalation row was already recorded: roll the INSERT's savepoint back."""


def _schedule_near(tickets: list[Ticket]) -> None:
    """Queue a precise ETA task for each next instant inside the scheduling horizon, after
    commit (as `slas.services.sla_store_next_event` does for ticket changes); instants
    further away are the sweep's."""
    horizon = timezone.now() + timedelta(seconds=settings.SLA_SCHEDULE_HORIZON_SECONDS)
    near = [(t.pk, t.next_sla_event_at) for t in tickets if t.next_sla_event_at <= horizon]
    if not near:
        return
    from slas.tasks import publish_fire  # the tasks module imports this one

    def schedule() -> None:
        for ticket_id, at in near:
            publish_fire(ticket_id=ticket_id, at=at)

    transaction.on_commit(schedule, robust=True)


def _refresh_reports(ticket_ids: list[int]) -> None:
    """Breach, priority or assignee feed the dashboards' roll-ups (reports app), which the
    ticket services keep exact in the same transaction; so do we, for the batch at once. Under
    a savepoint, and a database error there is logged, not raised: a dashboard counter must
    never stop an escalation (`reports.services.rollup_rebuild` recomputes from raw)."""
    if not ticket_ids:
        return
    try:
        with transaction.atomic():
            report_services.rollup_refresh_tickets(ticket_ids=ticket_ids)
    except DatabaseError:
        logger.exception("roll-up refresh failed for tickets %s; the escalations stand", ticket_ids)


def _escalation_message(*, ticket: Ticket, level: LadderLevel, texts: dict | None = None) -> str:
    """The notification text of a level; `texts` caches the translated parts (a batch
    passes one dict, so each is translated once per batch, not once per level)."""
    texts = {} if texts is None else texts
    breached = level.threshold >= 1
    if (level.metric, breached) not in texts:
        texts[level.metric, breached] = (
            _("%(reference)s “%(title)s”: the %(metric)s target is breached (%(percent)s).")
            if breached
            else _("%(reference)s “%(title)s”: %(metric)s has used %(percent)s of its target."),
            str(Metric(level.metric).label),
        )
    text, metric = texts[level.metric, breached]
    percent = f"{level.threshold * 100:.0f} %"
    title = ticket.title if len(ticket.title) <= 120 else ticket.title[:119] + "…"
    return (
        text % {"reference": ticket.reference, "title": title, "metric": metric, "percent": percent}
    )[:300]


def _pause_for_fault_tests() -> None:
    """Test seam for tests/test_worker_faults.py: while the file named by the setting
    SLA_ESCALATION_TEST_PAUSE_FILE exists, hold the open firing transaction (the level's
    actions are applied and its Notification rows written, nothing is committed) so a test can
    SIGKILL the worker at exactly this point. Empty setting (the default): no effect."""
    path = getattr(settings, "SLA_ESCALATION_TEST_PAUSE_FILE", "")
    if not path or not os.path.exists(path):
        return
    logger.warning("escalation paused for a fault test (pid %s)", os.getpid())
    deadline = time.monotonic() + 120
    while os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)


# --- Finding due work -----------------------------------------------------------------------


def due_ticket_ids(*, now: datetime, limit: int) -> list[int]:
    """Ids of tickets whose next SLA event is due, earliest first (partial index scan)."""
    return list(
        Ticket.objects.filter(next_sla_event_at__lte=now)
        .order_by("next_sla_event_at")
        .values_list("pk", flat=True)[:limit]
    )


class _Firing:
    """Batches for a sweep or a drain, isolating unexpected errors: a batch that fails is
    fired again one ticket per transaction, so one bad row (logged; it stays due) cannot stop
    escalation for everyone. A database outage is raised for the task to retry."""

    def __init__(self, outcome: SweepOutcome):
        self.outcome = outcome
        # Tickets not to take again in this run: failing, or still due after firing (more
        # rounds than MAX_ROUNDS), which would otherwise come back at once.
        self.excluded: set[int] = set()

    def fire(self, *, now: datetime, limit: int) -> int:
        """Fire one batch of due tickets; return how many tickets it took (0: none due)."""
        try:
            outcomes = sla_fire_due(now=now, limit=limit, exclude=sorted(self.excluded))
        except TRANSIENT_DB_ERRORS:
            raise
        except Exception:
            logger.exception("escalation batch failed; firing its tickets one by one")
            return self._one_by_one(now=now, limit=limit)
        self._count(outcomes.values(), now)
        return len(outcomes)

    def _one_by_one(self, *, now: datetime, limit: int) -> int:
        ids = [
            pk
            for pk in due_ticket_ids(now=now, limit=limit + len(self.excluded))
            if pk not in self.excluded
        ][:limit]
        for ticket_id in ids:
            try:
                result = sla_escalate(ticket_id=ticket_id, now=now)
            except TRANSIENT_DB_ERRORS:
                raise
            except Exception:
                self.outcome.failed += 1
                self.excluded.add(ticket_id)
                logger.exception("escalating ticket %s failed; it stays due", ticket_id)
                continue
            self.outcome.skipped_locked += int(result.locked)
            self._count([result], now)
        return len(ids)

    def _count(self, outcomes, now: datetime) -> None:
        for result in outcomes:
            self.outcome.due_found += int(result.due)
            self.outcome.fired += len(result.fired)
            if result.next_event_at is not None and result.next_event_at <= now:
                self.excluded.add(result.ticket_id)

    def held_by_others(self, *, now: datetime) -> int:
        """Due tickets this run left alone because another transaction holds them."""
        queryset = Ticket.objects.filter(next_sla_event_at__lte=now)
        if self.excluded:
            queryset = queryset.exclude(pk__in=sorted(self.excluded))
        return queryset.count()


def sla_sweep(
    *,
    now: datetime | None = None,
    batch: int | None = None,
    budget_seconds: float | None = None,
    schedule: bool = True,
) -> SweepOutcome:
    """Fire every due ticket (up to FIRE_BATCH tickets per transaction), then schedule the
    near ones.

    Several sweeps may run at once (several beats, a slow sweep overlapping the next): SKIP
    LOCKED makes them share the due tickets, the unique constraint keeps each level once.
    """
    started = time.monotonic()
    batch = min(batch or settings.SLA_SWEEP_BATCH, FIRE_BATCH)
    if budget_seconds is None:
        budget_seconds = max(settings.SLA_SWEEP_SECONDS * 4, 10)
    outcome = SweepOutcome()
    firing = _Firing(outcome)
    with email_batch():
        while True:
            at = now or timezone.now()
            if not firing.fire(now=at, limit=batch):
                # Nothing left that is not held by another transaction (handled there).
                outcome.skipped_locked += firing.held_by_others(now=at)
                break
            if time.monotonic() - started > budget_seconds:
                break
    if schedule:
        outcome.scheduled = sla_schedule_near(now=now or timezone.now())
    outcome.seconds = time.monotonic() - started
    return outcome


def sla_drain(
    *, until: datetime, batch: int = FIRE_BATCH, budget_seconds: float = 30
) -> SweepOutcome:
    """Fire tickets as they fall due, up to the instant `until` (a scheduling slot's end).

    The sweep queues one drain per slot of instants inside the horizon, to start at the
    slot's first instant: it fires everything due in one batch, then again what fell due
    while that batch ran (the busier the slot, the bigger the batches), sleeps until the next
    instant of the slot, and returns when the slot is over. One task and one e-mail task per
    slot instead of one of each per ticket. Drains overlapping in time share the work through
    SKIP LOCKED.
    """
    started = time.monotonic()
    outcome = SweepOutcome()
    firing = _Firing(outcome)
    with email_batch():
        while time.monotonic() - started < budget_seconds:
            now = timezone.now()
            if firing.fire(now=now, limit=batch):
                continue
            if now >= until:
                break
            upcoming = (
                Ticket.objects.filter(next_sla_event_at__gt=now, next_sla_event_at__lte=until)
                .order_by("next_sla_event_at")
                .values_list("next_sla_event_at", flat=True)
                .first()
            )
            if upcoming is None:
                break
            time.sleep(max(0.0, (upcoming - timezone.now()).total_seconds()))
    outcome.seconds = time.monotonic() - started
    return outcome


def _watermark_key() -> str:
    return f"sla:scheduled-upto:{connection.settings_dict['NAME']}"


def near_instants(*, start: datetime, end: datetime):
    """(ticket id, next SLA event) pairs with start < instant ≤ end (partial index range)."""
    return (
        Ticket.objects.filter(next_sla_event_at__gt=start, next_sla_event_at__lte=end)
        .order_by("next_sla_event_at")
        .values_list("pk", "next_sla_event_at")
    )


def sla_schedule_near(*, now: datetime) -> int:
    """Queue drains for the next-SLA-event instants entering the horizon; return how many.

    Instants that become near through a ticket change are scheduled by that change
    (`sla_refresh_next_event`); this covers instants that were far away when they were set.
    They are grouped into slots of SLA_SLOT_SECONDS, one `sla_drain_slot` task per non-empty
    slot with its ETA at the slot's first instant. A watermark (how far ahead has been
    scheduled) keeps each instant to one slot; it lives in the cache, and losing it only
    means a few duplicate drains, which are harmless. It only advances when every publish
    succeeded, so a broker outage loses nothing (the sweep fires those when they fall due).
    """
    from slas.tasks import publish_drain  # the tasks module imports this one

    horizon_end = now + timedelta(seconds=settings.SLA_SCHEDULE_HORIZON_SECONDS)
    start = now
    try:
        watermark = cache.get(_watermark_key())
    except Exception as exc:  # a cache outage must not stop the sweep
        logger.warning("cache unavailable for the SLA watermark: %s", exc)
        watermark = None
    if watermark is not None and now < watermark <= horizon_end:
        start = watermark
    slot_us = max(1, round(settings.SLA_SLOT_SECONDS * 1_000_000))
    slots: dict[int, datetime] = {}
    for _ticket_id, at in near_instants(start=start, end=horizon_end).iterator(chunk_size=5000):
        slot = int((at - EPOCH) / timedelta(microseconds=1)) // slot_us
        slots.setdefault(slot, at)  # instants come in order: the first is the earliest
    published = 0
    for slot, first in sorted(slots.items()):
        until = EPOCH + timedelta(microseconds=(slot + 1) * slot_us)
        if not publish_drain(first=first, until=until):
            break  # the broker is down: the watermark stays, nothing is lost
        published += 1
    else:
        try:
            cache.set(
                _watermark_key(), horizon_end, timeout=2 * settings.SLA_SCHEDULE_HORIZON_SECONDS
            )
        except Exception as exc:
            logger.warning("cache unavailable for the SLA watermark: %s", exc)
    return published
