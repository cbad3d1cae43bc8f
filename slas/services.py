"""State changes of the SLA engine: per-ticket clocks (SPEC §3).

The ticket services call these inside their own transaction, with the ticket row locked, so a
clock never changes apart from the ticket change that caused it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date as date_type
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Min, OuterRef, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.services import audit_record
from audit.snapshots import calendar_snapshot, standard_version_snapshot
from servicedesk.errors import DomainError
from slas import rules
from slas.clock import BusinessCalendar
from slas.models import (
    Calendar,
    Escalation,
    Holiday,
    LadderLevel,
    Metric,
    ServiceStandard,
    SlaClock,
    StandardTarget,
    StandardVersion,
    WorkingInterval,
)
from slas.selectors import (
    business_calendar,
    threshold_duration,
    version_calendar,
    version_content,
    version_for_service,
)

ZERO = timedelta(0)


def _target(version: StandardVersion, priority: str, metric: str) -> timedelta | None:
    for target in version.targets.all():
        if target.priority == priority:
            return target.target_for(metric)
    return None


def _deadline(*, clock: SlaClock, calendar: BusinessCalendar) -> datetime | None:
    """The instant elapsed reaches the target if the clock keeps running (SPEC §3)."""
    return rules.deadline_of(clock, calendar)


def _settle(*, clock: SlaClock, calendar: BusinessCalendar, now: datetime) -> None:
    """Bank the business time counted since `running_since` and record a breach if any."""
    rules.settle(clock, calendar, now)


def _calendar_for(clock: SlaClock) -> BusinessCalendar:
    return business_calendar(clock.version.calendar_id)


@dataclass
class FilingClocks:
    """The SLA clocks of a request about to be filed, worked out before its row is written so
    the ticket is inserted with its next SLA event and nearest deadline already set."""

    clocks: list[SlaClock] = field(default_factory=list)
    calendar: BusinessCalendar | None = None
    next_at: datetime | None = None
    deadline: datetime | None = None
    # The standard version the plan measured against (None: no standard applies).
    version_id: int | None = None


def sla_plan_clocks(*, service, priority: str, now: datetime) -> FilingClocks:
    """Start (in memory) the clocks of a request to `service` filed at `now`.

    Reads nothing when `service` came with `SERVICE_FILING_RELATED` and the version's content
    is cached; `sla_start_clocks` writes the result.
    """
    version = version_for_service(service)
    if version is None:
        return FilingClocks()
    content = version_content(version.pk)
    target = content.targets.get(priority)
    if target is None:
        return FilingClocks(version_id=version.pk)
    calendar = version_calendar(version)
    clocks = []
    for metric in (Metric.FIRST_RESPONSE, Metric.RESOLUTION):
        clock = SlaClock(metric=metric, version=version, target=target.target_for(metric))
        rules.begin(clock, calendar, now)
        clocks.append(clock)
    return FilingClocks(
        clocks=clocks,
        calendar=calendar,
        # A new ticket has fired no level yet.
        next_at=next_event_for_clocks(
            clocks=clocks, levels=list(content.levels), fired=set(), calendar_for=lambda _: calendar
        ),
        deadline=min((c.deadline for c in clocks if c.deadline is not None), default=None),
        version_id=version.pk,
    )


def sla_start_clocks(*, ticket, now: datetime, plan: FilingClocks | None = None) -> list[SlaClock]:
    """Start the first-response and resolution clocks of a newly filed ticket.

    `plan` is `sla_plan_clocks` for this ticket when the caller inserted the ticket row with
    the plan's `next_at` and `deadline` (ticket_create does, saving an UPDATE); without it the
    clocks are worked out here and the ticket's SLA columns written.
    """
    if plan is None:
        plan = sla_plan_clocks(service=ticket.service, priority=ticket.priority, now=now)
    for clock in plan.clocks:
        clock.ticket = ticket
    SlaClock.objects.bulk_create(plan.clocks)
    if ticket.next_sla_event_at == plan.next_at and ticket.sla_deadline == plan.deadline:
        # Already on the row: only the precise ETA task remains (every new next-event instant
        # passes through `_schedule_if_near`, as in `sla_store_next_event`).
        _schedule_if_near(ticket_id=ticket.pk, at=plan.next_at)
    else:
        sla_store_next_event(ticket=ticket, next_at=plan.next_at, deadline=plan.deadline)
    return plan.clocks


def _ticket_clocks(ticket) -> list[SlaClock]:
    return list(SlaClock.objects.select_related("version").filter(ticket=ticket))


# What the clock rules change on a clock (one clock here, many at once in slas/escalation.py).
CLOCK_STATE_FIELDS = (
    "status",
    "elapsed",
    "running_since",
    "deadline",
    "stopped_at",
    "breached_at",
    "target",
    "version",
)


def _save(clock: SlaClock) -> None:
    clock.save(update_fields=CLOCK_STATE_FIELDS)


def _apply(*, ticket, operation: str, now: datetime, metrics: tuple[str, ...] | None) -> None:
    """Apply one SPEC §3 operation (slas/rules.py, shared with the replay) and save."""
    changed = rules.apply_operation(
        _ticket_clocks(ticket),
        operation=operation,
        metrics=metrics,
        now=now,
        calendar_for=_calendar_for,
    )
    for clock in changed:
        _save(clock)
    sla_refresh_next_event(ticket=ticket)


def sla_pause(*, ticket, now: datetime) -> None:
    """Pause every running clock (the ticket waits on its customer)."""
    _apply(ticket=ticket, operation=rules.PAUSE, now=now, metrics=None)


def sla_resume(*, ticket, now: datetime, metrics: tuple[str, ...] | None = None) -> None:
    """Resume paused clocks (and, for a reopen, the stopped resolution clock)."""
    _apply(ticket=ticket, operation=rules.RESUME, now=now, metrics=metrics)


def sla_stop(*, ticket, metric: str, now: datetime) -> None:
    """Stop one clock: met if elapsed ≤ target, otherwise breached (SPEC §3)."""
    _apply(ticket=ticket, operation=rules.STOP, now=now, metrics=(metric,))


def sla_cancel(*, ticket, now: datetime) -> None:
    """Stop both clocks for good; cancelled tickets leave the compliance figures."""
    _apply(ticket=ticket, operation=rules.CANCEL, now=now, metrics=None)


def sla_on_status_change(*, ticket, old_status: str, new_status: str, now: datetime) -> None:
    """Apply SPEC §3 to a status transition that has just been made."""
    for operation, metrics in rules.status_change_operations(old_status, new_status):
        _apply(ticket=ticket, operation=operation, now=now, metrics=metrics)


def sla_retarget(*, ticket, now: datetime, version: StandardVersion | None = None) -> None:
    """Re-target running and paused clocks after a priority/service/standard change.

    Elapsed is kept; a breach already recorded stays (SPEC §3: never undone).
    """
    if version is None:
        version = version_for_service(ticket.service)
    if version is None:
        return
    version = StandardVersion.objects.prefetch_related("targets").get(pk=version.pk)
    calendar = business_calendar(version.calendar_id)
    for clock in _ticket_clocks(ticket):
        if clock.status not in (SlaClock.Status.RUNNING, SlaClock.Status.PAUSED):
            continue
        target = _target(version, ticket.priority, clock.metric)
        if target is None:
            continue
        changed = rules.retarget(
            clock,
            version=version,
            target=target,
            old_calendar=_calendar_for(clock),
            new_calendar=calendar,
            now=now,
        )
        if changed:
            _save(clock)
    sla_refresh_next_event(ticket=ticket)


def next_event_for_clocks(
    *,
    clocks: list[SlaClock],
    levels: list[LadderLevel],
    fired: set[tuple[str, str]],
    calendar_for,
) -> datetime | None:
    """Earliest pending instant among running clocks: a deadline or an unfired ladder level.

    `fired` holds (metric, threshold-as-string) pairs already recorded; `calendar_for(clock)`
    returns the clock's BusinessCalendar.
    """
    instants: list[datetime] = []
    for clock in clocks:
        if clock.status != SlaClock.Status.RUNNING or clock.running_since is None:
            continue
        calendar = calendar_for(clock)
        if clock.breached_at is None and clock.deadline is not None:
            instants.append(clock.deadline)
        for level in levels:
            if level.version_id != clock.version_id or level.metric != clock.metric:
                continue
            if (clock.metric, f"{level.threshold:.2f}") in fired:
                continue
            at = threshold_duration(target=clock.target, threshold=level.threshold)
            remaining = at - clock.elapsed
            instants.append(
                clock.running_since
                if remaining <= ZERO
                else calendar.add(clock.running_since, remaining)
            )
    return min(instants) if instants else None


def sla_refresh_next_event(*, ticket) -> None:
    """Store the ticket's next SLA event instant (SPEC §4), NULL when nothing is pending."""
    clocks = _ticket_clocks(ticket)
    version_ids = {clock.version_id for clock in clocks}
    levels = list(LadderLevel.objects.filter(version_id__in=version_ids))
    fired = {
        (metric, f"{threshold:.2f}")
        for metric, threshold in Escalation.objects.filter(ticket=ticket).values_list(
            "metric", "threshold"
        )
    }
    next_at = next_event_for_clocks(
        clocks=clocks,
        levels=levels,
        fired=fired,
        calendar_for=lambda clock: business_calendar(clock.version.calendar_id),
    )
    sla_store_next_event(ticket=ticket, next_at=next_at)


_QUERY = object()


def sla_store_next_event(*, ticket, next_at: datetime | None, deadline=_QUERY) -> None:
    """Write `next_at` as the ticket's next SLA event (the escalation use case computes it
    from rows it already holds) and schedule it precisely when it is near. `deadline`, the
    nearest deadline of the running clocks, is read here unless the caller has it."""
    # The queue's sort key (issue 10): the nearest deadline of the running clocks, kept with
    # every clock change because every clock change passes here.
    if deadline is _QUERY:
        deadline = SlaClock.objects.filter(
            ticket_id=ticket.pk, status=SlaClock.Status.RUNNING, deadline__isnull=False
        ).aggregate(first=Min("deadline"))["first"]
    if ticket.next_sla_event_at != next_at or ticket.sla_deadline != deadline:
        ticket.sla_deadline = deadline
        type(ticket).objects.filter(pk=ticket.pk).update(
            next_sla_event_at=next_at, sla_deadline=deadline
        )
    if ticket.next_sla_event_at != next_at:
        ticket.next_sla_event_at = next_at
        _schedule_if_near(ticket_id=ticket.pk, at=next_at)


def sla_refresh_deadlines(*, ticket_ids) -> None:
    """Recompute `Ticket.sla_deadline` of many tickets in one statement (after bulk writes of
    clocks, e.g. an import, which do not pass through `sla_store_next_event`)."""
    from tickets.models import Ticket

    ids = list(ticket_ids)
    if not ids:
        return
    first = (
        SlaClock.objects.filter(
            ticket_id=OuterRef("pk"), status=SlaClock.Status.RUNNING, deadline__isnull=False
        )
        .order_by("deadline")
        .values("deadline")[:1]
    )
    Ticket.objects.filter(pk__in=ids).update(sla_deadline=Subquery(first))


def _schedule_if_near(*, ticket_id: int, at: datetime | None) -> None:
    """Queue a precise ETA task for an instant inside the scheduling horizon, after commit.

    Every change of `next_sla_event_at` passes here, so an instant that becomes near through a
    ticket change is scheduled by that change; instants further away are scheduled by the
    sweep when they enter the horizon (slas.escalation.sla_schedule_near). On commit, so a
    rolled-back change schedules nothing; `publish` never raises, so a broker outage cannot
    break the change (robust=True is a second guard for anything unexpected).
    """
    if at is None:
        return
    if at - timezone.now() > timedelta(seconds=settings.SLA_SCHEDULE_HORIZON_SECONDS):
        return
    from slas.tasks import publish_fire  # the tasks module imports this one

    def schedule() -> None:
        publish_fire(ticket_id=ticket_id, at=at)

    transaction.on_commit(schedule, robust=True)


# --- Configuration: calendars and standards -------------------------------------------------


def calendar_save(
    *,
    calendar=None,
    name: str,
    timezone_name: str,
    week: dict[int, list[tuple]] | None = None,
    holidays: dict | None = None,
    always_open: bool = False,
    holiday_country: str = "",
    holiday_subdivision: str = "",
    actor=None,
):
    """Create or replace a calendar's content in one transaction (bumps `updated_at`).

    `actor` is who made the change (None for the system); it lands on the audit trail.
    """
    with transaction.atomic():
        before = calendar_snapshot(calendar)
        if calendar is None:
            calendar = Calendar(name=name)
        calendar.name = name
        calendar.timezone = timezone_name
        calendar.always_open = always_open
        calendar.holiday_country = holiday_country
        calendar.holiday_subdivision = holiday_subdivision
        calendar.save()
        calendar.intervals.all().delete()
        calendar.holidays.all().delete()
        WorkingInterval.objects.bulk_create(
            WorkingInterval(calendar=calendar, weekday=day, start=start, end=end)
            for day, intervals in (week or {}).items()
            for start, end in intervals
        )
        holiday_items = (
            holidays.items() if isinstance(holidays, dict) else ((d, "") for d in holidays or ())
        )
        Holiday.objects.bulk_create(
            Holiday(calendar=calendar, date=day, name=label or "")
            for day, label in holiday_items
            if isinstance(day, date_type)
        )
        audit_record(
            actor=actor,
            action="calendar.save",
            target=calendar,
            before=before,
            after=calendar_snapshot(calendar),
        )
    return calendar


def standard_publish(
    *,
    standard=None,
    name: str,
    calendar,
    targets: dict[str, tuple[timedelta, timedelta]],
    ladder: list[tuple[str, object, list[str]]],
    department=None,
    actor=None,
    note: str = "",
    now: datetime | None = None,
):
    """Publish a new version of a standard (creating the standard if needed).

    `targets` maps priority → (first response, resolution); `ladder` is a list of
    (metric, threshold, actions). Tickets filed from now on are measured against it.
    """
    now = now or timezone.now()
    with transaction.atomic():
        if standard is None:
            standard = ServiceStandard.objects.create(name=name, department=department)
        else:
            standard = ServiceStandard.objects.select_for_update().get(pk=standard.pk)
            standard.name = name
            standard.department = department if department is not None else standard.department
        number = (standard.versions.aggregate(m=Max("number"))["m"] or 0) + 1
        version = StandardVersion.objects.create(
            standard=standard,
            number=number,
            calendar=calendar,
            effective_from=now,
            created_by=actor,
            note=note,
        )
        StandardTarget.objects.bulk_create(
            StandardTarget(
                version=version, priority=priority, first_response=first, resolution=resolution
            )
            for priority, (first, resolution) in targets.items()
        )
        LadderLevel.objects.bulk_create(
            LadderLevel(
                version=version,
                metric=metric,
                threshold=Decimal(str(threshold)),
                actions=list(actions),
            )
            for metric, threshold, actions in ladder
        )
        previous = standard.current_version
        standard.current_version = version
        standard.save(update_fields=["name", "department", "current_version"])
        audit_record(
            actor=actor,
            action="standard.publish",
            target=standard,
            before=standard_version_snapshot(previous),
            after=standard_version_snapshot(version),
            now=now,
        )
    return standard


def standard_assign(
    *,
    standard: ServiceStandard,
    services,
    departments,
    actor,
    scope_department_ids: set[int] | None = None,
    now: datetime | None = None,
) -> dict[str, int]:
    """Make `standard` apply to exactly `services` (explicitly) and be the default standard of
    exactly `departments`, within the departments `actor` may configure.

    Outside `scope_department_ids` (None: everywhere, for admins) nothing changes. A service
    taken off the standard falls back to its department's default; a department taken off
    keeps no default. Each change is on the audit trail. Tickets already filed keep their
    clocks (use `standard_retarget_open_tickets` to move open ones).
    """
    from departments.models import Department, Service

    now = now or timezone.now()
    wanted_services = {service.pk for service in services}
    wanted_departments = {department.pk for department in departments}
    changes = {"services": 0, "departments": 0}

    def in_scope(department_id: int) -> bool:
        return scope_department_ids is None or department_id in scope_department_ids

    with transaction.atomic():
        current = Service.objects.select_for_update().filter(standard=standard)
        requested = Service.objects.select_for_update().filter(pk__in=wanted_services)
        for service in {*current, *requested}:
            if not in_scope(service.department_id):
                if service.pk in wanted_services and service.standard_id != standard.pk:
                    raise DomainError(
                        _("You may not change the standard of %(service)s.") % {"service": service},
                        field="services",
                    )
                continue
            new_standard_id = standard.pk if service.pk in wanted_services else None
            if service.standard_id == new_standard_id:
                continue
            before = service.standard.name if service.standard_id else None
            service.standard_id = new_standard_id
            service.save(update_fields=["standard"])
            audit_record(
                actor=actor,
                action="standard.assign_service",
                target=service,
                before={"standard": before},
                after={"standard": standard.name if new_standard_id else None},
                now=now,
            )
            changes["services"] += 1
        current = Department.objects.select_for_update().filter(default_standard=standard)
        requested = Department.objects.select_for_update().filter(pk__in=wanted_departments)
        for department in {*current, *requested}:
            if not in_scope(department.pk):
                if department.pk in wanted_departments and (
                    department.default_standard_id != standard.pk
                ):
                    raise DomainError(
                        _("You may not change the default standard of %(department)s.")
                        % {"department": department},
                        field="departments",
                    )
                continue
            new_standard_id = standard.pk if department.pk in wanted_departments else None
            if department.default_standard_id == new_standard_id:
                continue
            before = department.default_standard.name if department.default_standard_id else None
            department.default_standard_id = new_standard_id
            department.save(update_fields=["default_standard"])
            audit_record(
                actor=actor,
                action="standard.assign_department",
                target=department,
                before={"default_standard": before},
                after={"default_standard": standard.name if new_standard_id else None},
                now=now,
            )
            changes["departments"] += 1
    return changes


def standard_open_tickets_on_old_versions(*, standard: ServiceStandard):
    """Ids of tickets whose running or paused clocks use an older version of `standard`."""
    return (
        SlaClock.objects.filter(
            version__standard=standard,
            status__in=[SlaClock.Status.RUNNING, SlaClock.Status.PAUSED],
        )
        .exclude(version_id=standard.current_version_id)
        .values_list("ticket_id", flat=True)
        .distinct()
    )


def standard_retarget_open_tickets(
    *, standard: ServiceStandard, actor, now: datetime | None = None
) -> int:
    """Move open tickets measured against an older version of `standard` to its current one.

    An explicit, confirmed admin action (issue 7): running and paused clocks are re-targeted
    keeping the elapsed business time (SPEC §3), breaches already recorded stay, and each
    ticket gets an `sla` Event (before → after version) in the same transaction. Returns the
    number of tickets moved.
    """
    from tickets.models import Event, Ticket
    from tickets.services import event_record

    now = now or timezone.now()
    with transaction.atomic():
        standard = ServiceStandard.objects.select_for_update().get(pk=standard.pk)
        version = standard.current_version
        if version is None:
            return 0
        ticket_ids = list(standard_open_tickets_on_old_versions(standard=standard))
        moved = 0
        # Lock in id order so two concurrent re-targets (or a ticket change) cannot deadlock.
        for ticket in (
            Ticket.objects.select_for_update().select_related("service").filter(pk__in=ticket_ids)
        ).order_by("pk"):
            old = sorted(
                {
                    (clock.version_id, clock.version.number)
                    for clock in ticket.clocks.select_related("version")
                    if clock.status in (SlaClock.Status.RUNNING, SlaClock.Status.PAUSED)
                    and clock.version_id != version.pk
                }
            )
            if not old:
                continue  # moved on since the list was read
            sla_retarget(ticket=ticket, now=now, version=version)
            event_record(
                ticket=ticket,
                actor=actor,
                kind=Event.Kind.SLA,
                now=now,
                field="standard_version",
                before={"version": old[0][0], "number": old[0][1]},
                after={"version": version.pk, "number": version.number, "standard": standard.name},
            )
            moved += 1
        audit_record(
            actor=actor,
            action="standard.retarget_open_tickets",
            target=standard,
            before=None,
            after={"version": version.number, "tickets": moved},
            now=now,
        )
    return moved


# --- What-if replay jobs --------------------------------------------------------------------


def replay_job_create(*, proposal, actor, standard=None, now: datetime | None = None):
    """Record a background what-if replay and queue it once the transaction commits."""
    from slas.models import ReplayJob

    now = now or timezone.now()
    with transaction.atomic():
        job = ReplayJob.objects.create(
            standard=standard,
            requested_by=actor,
            proposal=proposal.to_json(),
            created_at=now,
        )
        transaction.on_commit(lambda: replay_job_enqueue(job_id=job.pk), robust=True)
    return job


def replay_job_enqueue(*, job_id: int) -> None:
    """Send the replay task to the broker (after commit; safe to call again)."""
    from slas.jobs import replay_whatif

    replay_whatif.apply_async(args=(job_id,), retry=False)


def replay_job_run(*, job_id: int, now: datetime | None = None):
    """Run a queued what-if replay, reporting progress on the job row. Idempotent.

    A finished job is left alone; a job another worker started recently is left to it; a
    job whose worker died long ago is run again (same inputs, same result: the replay is
    evaluated at the job's creation instant).
    """
    from slas.models import ReplayJob
    from slas.replay import Proposal, run_whatif

    now = now or timezone.now()
    with transaction.atomic():
        job = ReplayJob.objects.select_for_update(skip_locked=True).filter(pk=job_id).first()
        if job is None or job.status == ReplayJob.Status.DONE:
            return job
        stale = now - timedelta(seconds=settings.SLA_REPLAY_TIME_LIMIT_SECONDS)
        if job.status == ReplayJob.Status.RUNNING and job.started_at and job.started_at > stale:
            return job
        job.status = ReplayJob.Status.RUNNING
        job.started_at = now
        job.save(update_fields=["status", "started_at"])

    def progress(done: int, total: int) -> None:
        # Autocommitted, so the progress bar sees it while the replay goes on.
        ReplayJob.objects.filter(pk=job_id).update(done=done, total=total)

    try:
        result = run_whatif(Proposal.from_json(job.proposal), now=job.created_at, progress=progress)
    except Exception as exc:
        ReplayJob.objects.filter(pk=job_id).update(
            status=ReplayJob.Status.FAILED, error=str(exc)[:2000], finished_at=timezone.now()
        )
        raise
    ReplayJob.objects.filter(pk=job_id).update(
        status=ReplayJob.Status.DONE, result=result, finished_at=timezone.now()
    )
    job.refresh_from_db()
    return job
