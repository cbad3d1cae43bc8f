"""What-if replay: run real tickets' recorded histories through a proposed service standard.

Each ticket's audit `Event` rows (filing, status changes, the supplier's first public reply,
priority and service changes, standard re-targets) are turned into a list of :class:`Step`
and replayed through the *same* pure clock rules the live engine uses (slas/rules.py). Two
consequences:

* replaying with the versions the tickets were actually measured against reproduces the
  stored clocks exactly (tests/test_replay.py holds the code to that);
* replaying with a proposal says what the last N days would have looked like under it.

The pure core (`replay_ticket`) takes the history and two look-ups and touches no database;
`run_whatif` loads histories in batches, reports progress and summarises the result as plain
JSON (it is stored on a ReplayJob when the replay runs in the background).

Known limits (documented in the README): a calendar is not versioned, so a ticket whose
calendar was edited while it ran is replayed with today's calendar; services are matched by
name within the supplier department for service changes; the service → standard assignment
used for filings is today's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Q
from django.utils import timezone

from slas import rules
from slas.clock import BusinessCalendar
from slas.rules import FIRST_RESPONSE, METRICS, RESOLUTION, ClockState

BATCH_SIZE = 200
#: Changed tickets listed in a result (the counts cover all of them).
CHANGED_LIMIT = 200

STEP_STATUS = "status"
STEP_FIRST_RESPONSE = "first_response"
STEP_PRIORITY = "priority"
STEP_SERVICE = "service"
STEP_RETARGET = "retarget"

#: The Event.field of a standard re-target written by `standard_retarget_open_tickets`.
RETARGET_FIELD = "standard_version"


# --- The pure core ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class VersionSpec:
    """What a clock needs from a standard version: its calendar and targets."""

    key: str
    calendar: BusinessCalendar
    targets: dict[str, tuple[timedelta, timedelta]]
    version_id: int | None = None
    standard_id: int | None = None

    def target(self, priority: str, metric: str) -> timedelta | None:
        pair = self.targets.get(priority)
        if pair is None:
            return None
        return pair[0] if metric == FIRST_RESPONSE else pair[1]


@dataclass(frozen=True)
class Step:
    at: datetime
    kind: str
    value: Any = None
    old: Any = None


@dataclass
class TicketHistory:
    ticket_id: int
    reference: str
    priority: str  # today's priority, for the per-priority figures
    filed_at: datetime
    filed_priority: str
    filed_service_id: int | None
    steps: list[Step] = field(default_factory=list)
    # The version the live engine started the clocks under, when the stored clocks still
    # tell it (no service change or re-target since); None otherwise.
    filed_version_id: int | None = None


def replay_ticket(
    history: TicketHistory,
    *,
    version_at: Callable[..., VersionSpec | None],
    version_by_id: Callable[[int], VersionSpec | None],
) -> list[ClockState]:
    """Replay one ticket; return its clocks in creation order (first response, resolution).

    `version_at(service_id, instant, recorded_version_id)` is the version a filing (or a
    move) to that service gets at that instant (`recorded_version_id`, when known, is the one
    the live engine used); `version_by_id` resolves an explicit re-target.
    """
    version = version_at(history.filed_service_id, history.filed_at, history.filed_version_id)
    if version is None:
        return []
    priority = history.filed_priority
    clocks: list[ClockState] = []
    for metric in METRICS:
        target = version.target(priority, metric)
        if target is None:
            continue
        clock = ClockState(metric=metric, version=version, target=target)
        rules.begin(clock, version.calendar, history.filed_at)
        clocks.append(clock)

    def calendar_for(clock: ClockState) -> BusinessCalendar:
        return clock.version.calendar

    def retarget(new_version: VersionSpec, at: datetime) -> None:
        for clock in clocks:
            rules.retarget(
                clock,
                version=new_version,
                target=new_version.target(priority, clock.metric),
                old_calendar=clock.version.calendar,
                new_calendar=new_version.calendar,
                now=at,
            )

    for step in history.steps:
        if step.kind == STEP_STATUS:
            for operation, metrics in rules.status_change_operations(step.old, step.value):
                rules.apply_operation(
                    clocks,
                    operation=operation,
                    metrics=metrics,
                    now=step.at,
                    calendar_for=calendar_for,
                )
        elif step.kind == STEP_FIRST_RESPONSE:
            rules.apply_operation(
                clocks,
                operation=rules.STOP,
                metrics=(FIRST_RESPONSE,),
                now=step.at,
                calendar_for=calendar_for,
            )
        elif step.kind == STEP_PRIORITY:
            priority = step.value
            # Like the live engine: a priority change keeps the version of the ticket's
            # first clock and only changes the target.
            if clocks:
                retarget(clocks[0].version, step.at)
        elif step.kind == STEP_SERVICE:
            new_version = version_at(step.value, step.at, None)
            if new_version is not None:
                retarget(new_version, step.at)
        elif step.kind == STEP_RETARGET:
            new_version = version_by_id(step.value)
            if new_version is not None:
                retarget(new_version, step.at)
    return clocks


def levels_reached(
    clock: ClockState, *, levels: Iterable[tuple[str, Decimal]], now: datetime
) -> list[Decimal]:
    """The ladder thresholds of `clock`'s metric its elapsed has reached by `now`."""
    from slas.selectors import threshold_duration

    if clock.status == rules.CANCELLED:
        return []
    elapsed = rules.live_elapsed(clock, clock.version.calendar, now)
    return [
        threshold
        for metric, threshold in levels
        if metric == clock.metric
        and elapsed >= threshold_duration(target=clock.target, threshold=threshold)
    ]


# --- The proposal ----------------------------------------------------------------------------


@dataclass
class Proposal:
    """A standard as it would be saved, plus the replay scope. JSON-friendly."""

    calendar_id: int
    targets: dict[str, tuple[timedelta, timedelta]]
    ladder: list[tuple[str, Decimal, list[str]]]
    service_ids: list[int]
    department_ids: list[int]
    days: int = 90
    standard_id: int | None = None

    def to_json(self) -> dict:
        return {
            "standard_id": self.standard_id,
            "calendar_id": self.calendar_id,
            "targets": {
                p: [first.total_seconds(), res.total_seconds()]
                for p, (first, res) in self.targets.items()
            },
            "ladder": [[m, str(t), list(a)] for m, t, a in self.ladder],
            "service_ids": list(self.service_ids),
            "department_ids": list(self.department_ids),
            "days": self.days,
        }

    @classmethod
    def from_json(cls, data: dict) -> Proposal:
        return cls(
            standard_id=data.get("standard_id"),
            calendar_id=data["calendar_id"],
            targets={
                p: (timedelta(seconds=first), timedelta(seconds=res))
                for p, (first, res) in data["targets"].items()
            },
            ladder=[(m, Decimal(t), list(a)) for m, t, a in data.get("ladder", [])],
            service_ids=list(data.get("service_ids", [])),
            department_ids=list(data.get("department_ids", [])),
            days=int(data.get("days", 90)),
        )


# --- Loading histories -----------------------------------------------------------------------


class VersionResolver:
    """Versions as the live engine chose them, loaded once per replay and cached."""

    def __init__(self) -> None:
        from departments.models import Service

        self._specs: dict[int, VersionSpec | None] = {}
        self._timelines: dict[int, list[tuple[datetime, int]]] = {}
        self._service_standard: dict[int, int | None] = {}
        self._service_model = Service
        self._calendars: dict[int, BusinessCalendar] = {}

    def calendar(self, calendar_id: int) -> BusinessCalendar:
        from slas.selectors import business_calendar

        if calendar_id not in self._calendars:
            self._calendars[calendar_id] = business_calendar(calendar_id)
        return self._calendars[calendar_id]

    def by_id(self, version_id: int) -> VersionSpec | None:
        from slas.models import StandardVersion

        if version_id not in self._specs:
            version = (
                StandardVersion.objects.prefetch_related("targets").filter(pk=version_id).first()
            )
            self._specs[version_id] = (
                None
                if version is None
                else VersionSpec(
                    key=f"v{version.pk}",
                    calendar=self.calendar(version.calendar_id),
                    targets={
                        t.priority: (t.first_response, t.resolution) for t in version.targets.all()
                    },
                    version_id=version.pk,
                    standard_id=version.standard_id,
                )
            )
        return self._specs[version_id]

    def standard_of_service(self, service_id: int | None) -> int | None:
        if service_id is None:
            return None
        if service_id not in self._service_standard:
            service = (
                self._service_model.objects.select_related("department")
                .filter(pk=service_id)
                .first()
            )
            self._service_standard[service_id] = (
                service.effective_standard_id if service is not None else None
            )
        return self._service_standard[service_id]

    def version_at(
        self, service_id: int | None, at: datetime, recorded_version_id: int | None = None
    ) -> VersionSpec | None:
        """The version of the service's standard that was current at `at`.

        The recorded version wins when known: a version's `effective_from` is its publishing
        instant, which says nothing about tickets imported or back-dated before it.
        """
        from slas.models import StandardVersion

        if recorded_version_id is not None:
            return self.by_id(recorded_version_id)
        standard_id = self.standard_of_service(service_id)
        if standard_id is None:
            return None
        if standard_id not in self._timelines:
            self._timelines[standard_id] = list(
                StandardVersion.objects.filter(standard_id=standard_id)
                .order_by("number")
                .values_list("effective_from", "pk")
            )
        timeline = self._timelines[standard_id]
        # Before the first version took effect only the first version can have applied.
        current = timeline[0][1] if timeline else None
        for effective_from, version_id in timeline:
            if effective_from <= at:
                current = version_id
        return self.by_id(current) if current is not None else None


def _service_ids_by_name(tickets) -> dict[tuple[int, str], int]:
    from departments.models import Service

    department_ids = {t.supplier_department_id for t in tickets}
    return {
        (department_id, name): pk
        for pk, department_id, name in Service.objects.filter(
            department_id__in=department_ids
        ).values_list("pk", "department_id", "name")
    }


def load_histories(tickets: list) -> list[TicketHistory]:
    """Build each ticket's replayable history from its audit Events (one query)."""
    from tickets.models import Event

    kinds = [
        Event.Kind.CREATED,
        Event.Kind.STATUS,
        Event.Kind.COMMENT,
        Event.Kind.PRIORITY,
        Event.Kind.SERVICE,
        Event.Kind.SLA,
    ]
    events: dict[int, list[tuple]] = defaultdict(list)
    for row in (
        Event.objects.filter(ticket_id__in=[t.pk for t in tickets], kind__in=kinds)
        .order_by("ticket_id", "created_at", "id")
        .values_list("ticket_id", "kind", "field", "before", "after", "created_at")
    ):
        events[row[0]].append(row[1:])
    from slas.models import SlaClock

    first_clock_version: dict[int, int] = {}
    for ticket_id, version_id in (
        SlaClock.objects.filter(ticket_id__in=[t.pk for t in tickets])
        .order_by("-pk")
        .values_list("ticket_id", "version_id")
    ):
        first_clock_version[ticket_id] = version_id  # the lowest pk wins: clocks[0]
    services = _service_ids_by_name(tickets)
    histories = []
    for ticket in tickets:
        history = _history(ticket, events.get(ticket.pk, []), services)
        if not any(step.kind in (STEP_SERVICE, STEP_RETARGET) for step in history.steps):
            history.filed_version_id = first_clock_version.get(ticket.pk)
        histories.append(history)
    return histories


def _history(ticket, events: list[tuple], services: dict[tuple[int, str], int]) -> TicketHistory:
    filed_priority = ticket.priority
    filed_service_id = ticket.service_id
    first_priority_before = None
    first_service_before = None
    steps: list[Step] = []
    responded = False
    for kind, field_name, before, after, at in events:
        if kind == "created":
            if isinstance(after, dict) and after.get("priority"):
                filed_priority = after["priority"]
        elif kind == "status":
            steps.append(Step(at=at, kind=STEP_STATUS, value=after, old=before))
        elif kind == "comment":
            # The supplier's first public reply is the one recorded on the ticket.
            if not responded and at == ticket.first_responded_at:
                steps.append(Step(at=at, kind=STEP_FIRST_RESPONSE))
                responded = True
        elif kind == "priority":
            if first_priority_before is None:
                first_priority_before = before
            steps.append(Step(at=at, kind=STEP_PRIORITY, value=after))
        elif kind == "service":
            if first_service_before is None:
                first_service_before = before
            steps.append(
                Step(
                    at=at,
                    kind=STEP_SERVICE,
                    value=services.get((ticket.supplier_department_id, after)),
                )
            )
        elif kind == "sla" and field_name == RETARGET_FIELD and isinstance(after, dict):
            steps.append(Step(at=at, kind=STEP_RETARGET, value=after.get("version")))
    if ticket.first_responded_at is not None and not responded:
        # No matching reply event (e.g. imported history): stop at the recorded instant.
        steps.append(Step(at=ticket.first_responded_at, kind=STEP_FIRST_RESPONSE))
        steps.sort(key=lambda step: step.at)
    if first_service_before is not None:
        filed_service_id = services.get(
            (ticket.supplier_department_id, first_service_before), filed_service_id
        )
    if first_priority_before and not any(kind == "created" for kind, *_ in events):
        filed_priority = first_priority_before
    return TicketHistory(
        ticket_id=ticket.pk,
        reference=ticket.reference,
        priority=ticket.priority,
        filed_at=ticket.created_at,
        filed_priority=filed_priority,
        filed_service_id=filed_service_id,
        steps=steps,
    )


def _batches(queryset, size: int | None = None) -> Iterator[list]:
    size = size or BATCH_SIZE
    ids = list(queryset.order_by("created_at", "pk").values_list("pk", flat=True))
    model = queryset.model
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        by_id = {t.pk: t for t in model.objects.filter(pk__in=chunk)}
        yield [by_id[pk] for pk in chunk if pk in by_id]


def replay_recorded(tickets: list) -> dict[int, list[ClockState]]:
    """Replay tickets with the versions the live engine chose (no proposal)."""
    from tickets.models import Ticket

    # Re-read: the caller's instances may predate later changes (first reply, priority…).
    tickets = list(Ticket.objects.filter(pk__in=[t.pk for t in tickets]).order_by("pk"))
    resolver = VersionResolver()
    return {
        history.ticket_id: replay_ticket(
            history, version_at=resolver.version_at, version_by_id=resolver.by_id
        )
        for history in load_histories(tickets)
    }


# --- What-if -----------------------------------------------------------------------------------


def affected_service_ids(proposal: Proposal) -> set[int]:
    """Services the proposed standard would apply to."""
    from departments.models import Service

    scope = Q(pk__in=proposal.service_ids) | Q(
        department_id__in=proposal.department_ids, standard__isnull=True
    )
    if proposal.standard_id is not None:
        scope |= Q(standard_id=proposal.standard_id) | Q(
            standard__isnull=True, department__default_standard_id=proposal.standard_id
        )
    return set(Service.objects.filter(scope).values_list("pk", flat=True))


def whatif_tickets(proposal: Proposal, *, now: datetime):
    """The tickets a what-if replays: the last `days` of the affected services."""
    from tickets.models import Ticket

    return Ticket.objects.filter(
        service_id__in=affected_service_ids(proposal),
        created_at__gte=now - timedelta(days=proposal.days),
        created_at__lte=now,
    )


def _empty_counts() -> dict:
    return {"met": 0, "breached": 0, "running": 0, "paused": 0, "cancelled": 0, "none": 0}


def _finish(counts: dict) -> dict:
    decided = counts["met"] + counts["breached"]
    counts["compliance"] = round(100 * counts["met"] / decided, 1) if decided else None
    return counts


def run_whatif(
    proposal: Proposal,
    *,
    now: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Replay the proposal over the affected tickets; return figures as plain JSON.

    ``progress(done, total)`` is called after each batch.
    """
    from slas.models import SlaClock

    now = now or timezone.now()
    resolver = VersionResolver()
    proposed = VersionSpec(
        key="proposed",
        calendar=resolver.calendar(proposal.calendar_id),
        targets=dict(proposal.targets),
        standard_id=proposal.standard_id,
    )
    affected = affected_service_ids(proposal)

    def version_at(
        service_id: int | None, at: datetime, recorded_version_id: int | None = None
    ) -> VersionSpec | None:
        if service_id in affected:
            return proposed
        return resolver.version_at(service_id, at, recorded_version_id)

    def version_by_id(version_id: int) -> VersionSpec | None:
        spec = resolver.by_id(version_id)
        if spec is not None and proposal.standard_id and spec.standard_id == proposal.standard_id:
            return proposed
        return spec

    levels = [(metric, Decimal(threshold)) for metric, threshold, _actions in proposal.ladder]
    queryset = whatif_tickets(proposal, now=now)
    total = queryset.count()
    figures: dict[str, dict[str, dict[str, dict]]] = {}
    changed: list[dict] = []
    changed_count = 0
    ladder_counts: dict[str, int] = defaultdict(int)
    done = 0
    if progress:
        progress(0, total)
    for batch in _batches(queryset):
        actual_clocks: dict[int, dict[str, Any]] = defaultdict(dict)
        for clock in SlaClock.objects.filter(ticket_id__in=[t.pk for t in batch]):
            actual_clocks[clock.ticket_id][clock.metric] = clock
        for history in load_histories(batch):
            predicted = {
                clock.metric: clock
                for clock in replay_ticket(
                    history, version_at=version_at, version_by_id=version_by_id
                )
            }
            row: dict[str, Any] = {}
            differs = False
            for metric in METRICS:
                actual_state = (
                    rules.clock_state(actual_clocks[history.ticket_id][metric], now)
                    if metric in actual_clocks[history.ticket_id]
                    else "none"
                )
                predicted_clock = predicted.get(metric)
                predicted_state = (
                    rules.clock_state(predicted_clock, now) if predicted_clock else "none"
                )
                for bucket_priority in (history.priority, "all"):
                    per_metric = figures.setdefault(bucket_priority, {}).setdefault(
                        metric, {"actual": _empty_counts(), "predicted": _empty_counts()}
                    )
                    per_metric["actual"][actual_state] += 1
                    per_metric["predicted"][predicted_state] += 1
                row[metric] = [actual_state, predicted_state]
                differs = differs or actual_state != predicted_state
                if predicted_clock is not None:
                    for threshold in levels_reached(predicted_clock, levels=levels, now=now):
                        ladder_counts[f"{metric}:{threshold}"] += 1
            if differs:
                changed_count += 1
                if len(changed) < CHANGED_LIMIT:
                    changed.append(
                        {
                            "ticket_id": history.ticket_id,
                            "reference": history.reference,
                            "priority": history.priority,
                            **row,
                        }
                    )
        done += len(batch)
        if progress:
            progress(done, total)
    for per_priority in figures.values():
        for per_metric in per_priority.values():
            _finish(per_metric["actual"])
            _finish(per_metric["predicted"])
    return {
        "now": now.isoformat(),
        "days": proposal.days,
        "tickets": total,
        "figures": {p: figures[p] for p in sorted(figures, key=lambda p: (p == "all", p))},
        "changed": changed,
        "changed_count": changed_count,
        "ladder": [
            {
                "metric": metric,
                "threshold": str(threshold),
                "tickets": ladder_counts.get(f"{metric}:{threshold}", 0),
            }
            for metric, threshold in levels
        ],
    }


__all__ = [
    "ClockState",
    "Proposal",
    "RESOLUTION",
    "Step",
    "TicketHistory",
    "VersionSpec",
    "affected_service_ids",
    "load_histories",
    "replay_recorded",
    "replay_ticket",
    "run_whatif",
]
