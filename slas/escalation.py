"""Firing the escalation ladder (SPEC §3 "ladder levels", SPEC §4 "escalation").

`sla_escalate` is the one use case that records a ladder level: it locks one due ticket,
records breaches, creates one Escalation row per level whose threshold instant has passed
(the unique constraint makes that exactly once), applies the level's actions, writes the audit
Event and recomputes the ticket's next SLA event — all in one transaction. A worker killed
half-way rolls everything back, so the level is still due and is fired again, once.

`sla_sweep` finds due tickets through the partial index on `Ticket.next_sla_event_at`
(O(due tickets)) and fires them one row per transaction; it also hands instants entering the
scheduling horizon to drain tasks, one per slot of instants (`sla_schedule_near`,
`sla_drain`), which fire each ticket as it falls due. README "Escalation design" has the
whole picture.
"""

from __future__ import annotations

import logging
import os
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import (
    DatabaseError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    transaction,
)
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from departments.models import Membership, User
from reports import services as report_services
from servicedesk import permissions
from slas import services as sla_services
from slas.clock import BusinessCalendar
from slas.models import Escalation, LadderAction, LadderLevel, Metric, SlaClock
from slas.selectors import business_calendar_of, clock_elapsed, threshold_duration
from tickets.models import Event, Ticket
from tickets.notifications import email_batch, notify
from tickets.services import event_record

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
# A raised priority re-targets the clocks, which can make further levels due at once; they are
# fired in the same transaction, a bounded number of rounds.
MAX_ROUNDS = 6
TRANSIENT_DB_ERRORS = (OperationalError, InterfaceError)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
class _Run:
    """What one firing run has loaded already (calendars, leads), so each is read once."""

    ticket: Ticket
    now: datetime
    calendars: dict[int, BusinessCalendar] = field(default_factory=dict)
    leads: dict[int, list] = field(default_factory=dict)

    def calendar(self, clock: SlaClock) -> BusinessCalendar:
        calendar_id = clock.version.calendar_id
        if calendar_id not in self.calendars:
            # The clocks are read with their calendar row: a cached calendar costs no query.
            self.calendars[calendar_id] = business_calendar_of(clock.version.calendar)
        return self.calendars[calendar_id]

    def leads_of(self, department_id: int | None) -> list:
        if department_id is None:
            return []
        if department_id not in self.leads:
            self.leads[department_id] = list(
                User.objects.filter(
                    is_active=True,
                    memberships__department_id=department_id,
                    memberships__role=Membership.Role.LEAD,
                ).order_by("username")
            )
        return self.leads[department_id]


# --- The firing use case --------------------------------------------------------------------


def sla_escalate(*, ticket_id: int, now: datetime) -> EscalateOutcome:
    """Fire every ladder level of `ticket_id` whose threshold instant is at or before `now`.

    Safe to call any number of times, from any number of processes: the ticket row is taken
    with SKIP LOCKED (a busy ticket is left to whoever holds it, the caller retries later) and
    each level is recorded under the `escalation_once_per_level` unique constraint.
    """
    outcome = EscalateOutcome(ticket_id=ticket_id)
    with transaction.atomic():
        # SKIP LOCKED, not a plain FOR UPDATE: when another worker is firing this ticket (or a
        # person is changing it) we must neither wait nor fire on a stale read. The holder
        # leaves the row consistent; our caller retries or the next sweep comes back.
        # OF self: only the ticket row is locked; the joined rows are read for the actions.
        ticket = (
            Ticket.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("assignee", "supplier_department")
            .filter(pk=ticket_id)
            .first()
        )
        if ticket is None:
            outcome.missing = not Ticket.objects.filter(pk=ticket_id).exists()
            outcome.locked = not outcome.missing
            return outcome
        outcome.next_event_at = ticket.next_sla_event_at
        if ticket.next_sla_event_at is None or ticket.next_sla_event_at > now:
            return outcome  # the state moved on since this work was found
        outcome.due = True
        run = _Run(ticket=ticket, now=now)
        report_changed = False
        for _round in range(MAX_ROUNDS):
            clocks = list(
                SlaClock.objects.select_related("version__calendar")
                .filter(ticket=ticket, status=SlaClock.Status.RUNNING)
                .order_by("metric")
            )
            breached = _record_breaches(clocks=clocks, now=now)
            outcome.breached += breached
            report_changed = report_changed or bool(breached)
            # The levels of the clocks' versions, each marked when this ticket has recorded
            # its (metric, threshold) — under any version — in one query.
            levels = list(
                LadderLevel.objects.filter(
                    version_id__in={clock.version_id for clock in clocks}
                ).annotate(
                    recorded=Exists(
                        Escalation.objects.filter(
                            ticket=ticket,
                            metric=OuterRef("metric"),
                            threshold=OuterRef("threshold"),
                        )
                    )
                )
            )
            fired = {(level.metric, f"{level.threshold:.2f}") for level in levels if level.recorded}
            due_levels = _due_levels(clocks=clocks, levels=levels, fired=fired, run=run)
            fired_now = _fire_levels(run=run, due_levels=due_levels)
            retargeted = False
            for due, escalation, changed in fired_now:
                fired.add((due.level.metric, f"{due.level.threshold:.2f}"))
                outcome.fired.append(escalation)
                retargeted = retargeted or "priority" in changed
                report_changed = report_changed or bool(changed)
            if fired_now:
                Event.objects.bulk_create(
                    _escalation_event(ticket=ticket, due=due, escalation=escalation)
                    for due, escalation, _changed in fired_now
                )
            if not retargeted:
                # The rows in hand are current: compute the next instant from them.
                next_at = sla_services.next_event_for_clocks(
                    clocks=clocks, levels=levels, fired=fired, calendar_for=run.calendar
                )
                deadlines = [clock.deadline for clock in clocks if clock.deadline is not None]
                sla_services.sla_store_next_event(
                    ticket=ticket, next_at=next_at, deadline=min(deadlines, default=None)
                )
                break
        else:
            sla_services.sla_refresh_next_event(ticket=ticket)
        if report_changed:
            _refresh_reports(ticket.pk)
        outcome.next_event_at = ticket.next_sla_event_at
    return outcome


def _refresh_reports(ticket_id: int) -> None:
    """Breach, priority or assignee feed the dashboards' roll-ups (reports app), which the
    ticket services keep exact in the same transaction; so do we. Under a savepoint, and a
    database error there is logged, not raised: a dashboard counter must never stop an
    escalation (`reports.services.rollup_rebuild` recomputes the roll-ups from raw)."""
    try:
        with transaction.atomic():
            report_services.rollup_refresh_ticket(ticket_id=ticket_id)
    except DatabaseError:
        logger.exception("roll-up refresh failed for ticket %s; the escalation stands", ticket_id)


def _record_breaches(*, clocks: list[SlaClock], now: datetime) -> list[str]:
    """A running clock past its deadline is breached from the deadline on (SPEC §3)."""
    breached = []
    for clock in clocks:
        if clock.breached_at is None and clock.deadline is not None and clock.deadline < now:
            clock.breached_at = clock.deadline
            clock.save(update_fields=["breached_at"])
            breached.append(clock.metric)
    return breached


def _due_levels(
    *, clocks: list[SlaClock], levels: list[LadderLevel], fired: set, run: _Run
) -> list[_DueLevel]:
    """Unfired levels with elapsed ≥ threshold × target, each with the instant it was reached."""
    by_clock = {(clock.version_id, clock.metric): clock for clock in clocks}
    due: list[_DueLevel] = []
    for level in levels:
        clock = by_clock.get((level.version_id, level.metric))
        if clock is None or (level.metric, f"{level.threshold:.2f}") in fired:
            continue
        calendar = run.calendar(clock)
        at = threshold_duration(target=clock.target, threshold=level.threshold)
        if clock_elapsed(clock=clock, calendar=calendar, now=run.now) < at:
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


def _fire_levels(*, run: _Run, due_levels: list[_DueLevel]) -> list[tuple]:
    """Apply each due level's actions and record it; return (due, escalation, changed) for
    the levels fired now.

    All levels go under one savepoint and their rows in one INSERT. The ticket row lock and
    the `fired` set read under it make a unique violation all but impossible; should one
    happen anyway (a writer that did not take the row lock), the savepoint undoes this
    batch — actions included — and each level is retried alone under its own savepoint, so
    the constraint decides and nothing is applied or recorded twice.
    """
    if not due_levels:
        return []
    try:
        with transaction.atomic():
            applied = [_apply_actions(run=run, due=due) for due in due_levels]
            rows = Escalation.objects.bulk_create(
                _escalation_row(run=run, due=due, actions=details)
                for due, (details, _changed) in zip(due_levels, applied, strict=True)
            )
            return [
                (due, row, changed)
                for due, row, (_details, changed) in zip(due_levels, rows, applied, strict=True)
            ]
    except IntegrityError:
        return [fired for due in due_levels if (fired := _fire_level(run=run, due=due))]


def _fire_level(*, run: _Run, due: _DueLevel) -> tuple | None:
    """One level under its own savepoint; None if it was recorded before."""
    try:
        with transaction.atomic():
            details, changed = _apply_actions(run=run, due=due)
            row = _escalation_row(run=run, due=due, actions=details)
            row.save(force_insert=True)
            return due, row, changed
    except IntegrityError:
        return None


def _escalation_row(*, run: _Run, due: _DueLevel, actions: list) -> Escalation:
    return Escalation(
        ticket=run.ticket,
        metric=due.level.metric,
        threshold=due.level.threshold,
        level=due.level,
        due_at=due.due_at,
        fired_at=run.now,
        actions=actions,
    )


def _escalation_event(*, ticket: Ticket, due: _DueLevel, escalation: Escalation) -> Event:
    return Event(
        ticket=ticket,
        actor=None,
        kind=Event.Kind.ESCALATION,
        field=due.level.metric,
        after={
            "metric": due.level.metric,
            "threshold": f"{due.level.threshold:.2f}",
            "due_at": due.due_at.isoformat(),
            "actions": [detail["action"] for detail in escalation.actions],
        },
        created_at=escalation.fired_at,
    )


def _apply_actions(*, run: _Run, due: _DueLevel) -> tuple[list, set]:
    """Apply the level's actions in ACTION_ORDER; return what was done and which ticket
    fields changed ("priority", "assignee")."""
    ticket, now = run.ticket, run.now
    configured = set(due.level.actions or [])
    details: list[dict] = []
    changed: set[str] = set()
    for unknown in sorted(configured - set(LadderAction.values)):
        logger.warning("ladder level %s has an unknown action %r", due.level.pk, unknown)
        details.append({"action": unknown, "skipped": "unknown action"})
    for action in ACTION_ORDER:
        if action not in configured:
            continue
        if action == LadderAction.RAISE_PRIORITY:
            detail = _raise_priority(ticket=ticket, clock=due.clock, now=now)
            if "after" in detail:
                changed.add("priority")
        elif action == LadderAction.REASSIGN_TO_LEAD:
            detail = _reassign_to_lead(run=run)
            if "after" in detail:
                changed.add("assignee")
        else:
            recipients = _recipients(run=run, action=action)
            # One key per (ticket, metric, level) — the Escalation row's own identity — so even
            # a level fired again after a crash could not notify anyone twice. It cannot exist
            # yet: the level is unrecorded and we hold the ticket row.
            notify(
                recipients=recipients,
                ticket=ticket,
                message=_escalation_message(ticket=ticket, level=due.level),
                dedupe_key=f"esc:{ticket.pk}:{due.level.metric}:{due.level.threshold:.2f}",
                now=now,
                new_cause=True,
            )
            detail = {"recipients": sorted(user.username for user in recipients)}
        details.append({"action": str(action), **detail})
    _pause_for_fault_tests()
    return details, changed


def _raise_priority(*, ticket: Ticket, clock: SlaClock, now: datetime) -> dict:
    """One step up, never above P1; clocks re-target like ticket_change_priority does (the
    version the ticket was filed under is kept, elapsed is kept)."""
    before = ticket.priority
    after = PRIORITY_UP.get(before)
    if after is None:
        return {"skipped": "already the highest priority"}
    ticket.priority = after
    ticket.updated_at = now
    ticket.save(update_fields=["priority", "updated_at"])
    event_record(
        ticket=ticket,
        actor=None,
        kind=Event.Kind.PRIORITY,
        now=now,
        field="priority",
        before=before,
        after=after,
    )
    sla_services.sla_retarget(ticket=ticket, now=now, version=clock.version)
    return {"before": before, "after": after}


def _reassign_to_lead(*, run: _Run) -> dict:
    """Hand the ticket to a lead of the supplier department (the assignee stays if it is one)."""
    ticket, now = run.ticket, run.now
    leads = run.leads_of(ticket.supplier_department_id)
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
    ticket.save(update_fields=["assignee", "updated_at"])
    event_record(
        ticket=ticket,
        actor=None,
        kind=Event.Kind.ASSIGNED,
        now=now,
        field="assignee",
        before=before,
        after=lead.username,
    )
    return {"before": before, "after": lead.username}


def _recipients(*, run: _Run, action: str) -> list:
    ticket = run.ticket
    if action == LadderAction.NOTIFY_ASSIGNEE:
        assignee = ticket.assignee if ticket.assignee_id else None
        return [assignee] if assignee is not None and assignee.is_active else []
    if action == LadderAction.NOTIFY_SUPPLIER_LEAD:
        return run.leads_of(ticket.supplier_department_id)
    if action == LadderAction.NOTIFY_PARENT_LEAD:
        return run.leads_of(ticket.supplier_department.parent_id)
    if action == LadderAction.NOTIFY_CUSTOMER_LEAD:
        return run.leads_of(ticket.customer_department_id)
    return []


def _escalation_message(*, ticket: Ticket, level: LadderLevel) -> str:
    metric = Metric(level.metric).label
    percent = f"{level.threshold * 100:.0f} %"
    title = ticket.title if len(ticket.title) <= 120 else ticket.title[:119] + "…"
    if level.threshold >= 1:
        text = _("%(reference)s “%(title)s”: the %(metric)s target is breached (%(percent)s).")
    else:
        text = _("%(reference)s “%(title)s”: %(metric)s has used %(percent)s of its target.")
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


def _fire_one(ticket_id: int, now: datetime, outcome: SweepOutcome) -> EscalateOutcome | None:
    """Fire one ticket for a sweep or a drain, isolating unexpected errors (logged; the ticket
    stays due, so one bad row cannot stop escalation for everyone). A database outage is
    raised for the task to retry."""
    try:
        result = sla_escalate(ticket_id=ticket_id, now=now)
    except TRANSIENT_DB_ERRORS:
        raise
    except Exception:
        outcome.failed += 1
        logger.exception("escalating ticket %s failed; it stays due", ticket_id)
        return None
    outcome.fired += len(result.fired)
    outcome.skipped_locked += int(result.locked)
    return result


def sla_sweep(
    *,
    now: datetime | None = None,
    batch: int | None = None,
    budget_seconds: float | None = None,
    schedule: bool = True,
) -> SweepOutcome:
    """Fire every due ticket (one row per transaction), then schedule the near ones.

    Several sweeps may run at once (several beats, a slow sweep overlapping the next): SKIP
    LOCKED makes them share the due tickets, the unique constraint keeps each level once.
    """
    started = time.monotonic()
    batch = batch or settings.SLA_SWEEP_BATCH
    if budget_seconds is None:
        budget_seconds = max(settings.SLA_SWEEP_SECONDS * 4, 10)
    outcome = SweepOutcome()
    seen: set[int] = set()
    out_of_time = False
    with email_batch():
        while not out_of_time:
            ids = [
                pk
                for pk in due_ticket_ids(now=now or timezone.now(), limit=batch)
                if pk not in seen
            ]
            if not ids:
                break  # nothing due, or only tickets held by others (they are handled there)
            outcome.due_found += len(ids)
            for ticket_id in ids:
                seen.add(ticket_id)
                _fire_one(ticket_id, now or timezone.now(), outcome)
                if time.monotonic() - started > budget_seconds:
                    out_of_time = True
                    break
    if schedule:
        outcome.scheduled = sla_schedule_near(now=now or timezone.now())
    outcome.seconds = time.monotonic() - started
    return outcome


def sla_drain(*, until: datetime, batch: int = 50, budget_seconds: float = 30) -> SweepOutcome:
    """Fire tickets as they fall due, up to the instant `until` (a scheduling slot's end).

    The sweep queues one drain per slot of instants inside the horizon, to start at the
    slot's first instant: it fires what is due, sleeps until the next instant of the slot,
    fires again, and returns when the slot is over. One task and one e-mail task per slot
    instead of one of each per ticket; the firing itself is still one ticket per transaction.
    Drains overlapping in time share the work through SKIP LOCKED; each shuffles the tickets
    due at the same moment so two of them rarely reach for the same row.
    """
    started = time.monotonic()
    outcome = SweepOutcome()
    attempts: dict[int, int] = {}
    with email_batch():
        while time.monotonic() - started < budget_seconds:
            now = timezone.now()
            rows = list(
                Ticket.objects.filter(next_sla_event_at__lte=max(now, until))
                .order_by("next_sla_event_at")
                .values_list("pk", "next_sla_event_at")[:batch]
            )
            # A ticket is tried at most twice: once more after it fired, in case its next
            # level falls inside this slot too; a locked or failing one is left to others.
            due = [pk for pk, at in rows if at <= now and attempts.get(pk, 0) < 2]
            if due:
                outcome.due_found += len(due)
                random.shuffle(due)
                for ticket_id in due:
                    result = _fire_one(ticket_id, timezone.now(), outcome)
                    attempts[ticket_id] = attempts.get(ticket_id, 0) + (
                        1 if result is not None and result.fired else 2
                    )
                continue
            upcoming = [at for _pk, at in rows if at > now]
            if not upcoming or now >= until:
                break
            time.sleep(max(0.0, (upcoming[0] - timezone.now()).total_seconds()))
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
