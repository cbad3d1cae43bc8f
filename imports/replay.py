"""SLA clocks of imported history, computed by the live engine's rules.

An imported incident's life is reduced to a list of clock actions at their instants (start,
first response, status changes, priority changes). Two ways replay them:

* `replay_live` calls the live engine itself (`slas.services`) on a saved ticket, one call per
  action with `now=` the action's instant: exactly what the services do when the history
  happens live. It costs a few queries per action, fine for a sample, slow for 141,712 rows.
* `PureReplay` applies the same actions to unsaved `SlaClock` objects in memory through the
  very functions the live services apply (`slas.rules`: begin, status_change_operations,
  apply_operation, retarget; `next_event_for_clocks`), without a query per step;
  tests/test_import.py replays the committed sample both ways and requires identical clocks,
  field by field.

Actions are tuples `(kind, instant, arg)`:
    ("stop", at, metric)                    – first public reply (first response)
    ("status", at, (old_status, new_status)) – a transition of the status graph
    ("priority", at, new_priority)          – re-target running clocks, keeping elapsed
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from slas import rules
from slas import services as sla_services
from slas.clock import BusinessCalendar
from slas.models import LadderLevel, Metric, SlaClock, StandardVersion

Action = tuple[str, datetime, object]
CLOCK_FIELDS = (
    "metric",
    "version_id",
    "target",
    "status",
    "elapsed",
    "running_since",
    "deadline",
    "stopped_at",
    "breached_at",
)


class PureReplay:
    """The live engine's clock rules over in-memory clocks of one standard version."""

    def __init__(
        self,
        *,
        version: StandardVersion,
        calendar: BusinessCalendar,
        targets: dict[tuple[str, str], timedelta],
        levels: list[LadderLevel],
    ) -> None:
        self.version = version
        self.calendar = calendar
        self.targets = targets  # (priority, metric) → target
        self.levels = levels

    @classmethod
    def for_version(cls, version: StandardVersion) -> PureReplay:
        from slas.selectors import business_calendar

        targets = {}
        for target in version.targets.all():
            targets[(target.priority, Metric.FIRST_RESPONSE)] = target.first_response
            targets[(target.priority, Metric.RESOLUTION)] = target.resolution
        return cls(
            version=version,
            calendar=business_calendar(version.calendar_id),
            targets=targets,
            levels=list(LadderLevel.objects.filter(version=version)),
        )

    # --- the live engine's operations (slas.rules) on in-memory clocks ---------------------

    def _calendar_for(self, clock) -> BusinessCalendar:
        return self.calendar

    def start(self, *, priority: str, now: datetime) -> list[SlaClock]:
        """sla_start_clocks."""
        clocks = []
        for metric in (Metric.FIRST_RESPONSE, Metric.RESOLUTION):
            target = self.targets.get((priority, metric))
            if target is None:
                continue
            clock = SlaClock(metric=metric, version=self.version, target=target)
            rules.begin(clock, self.calendar, now)
            clocks.append(clock)
        return clocks

    def operate(
        self, clocks: list[SlaClock], operation: str, metrics: tuple[str, ...] | None, now
    ) -> None:
        """sla_pause / sla_resume / sla_stop / sla_cancel."""
        rules.apply_operation(
            clocks, operation=operation, metrics=metrics, now=now, calendar_for=self._calendar_for
        )

    def on_status_change(
        self, clocks: list[SlaClock], old_status: str, new_status: str, now: datetime
    ) -> None:
        """sla_on_status_change."""
        for operation, metrics in rules.status_change_operations(old_status, new_status):
            self.operate(clocks, operation, metrics, now)

    def retarget(self, clocks: list[SlaClock], priority: str, now: datetime) -> None:
        """sla_retarget as ticket_change_priority calls it (keeping the filed version)."""
        for clock in clocks:
            rules.retarget(
                clock,
                version=self.version,
                target=self.targets.get((priority, clock.metric)),
                old_calendar=self.calendar,
                new_calendar=self.calendar,
                now=now,
            )

    def next_event(self, clocks: list[SlaClock]) -> datetime | None:
        """sla_refresh_next_event for a ticket with no escalation fired yet."""
        return sla_services.next_event_for_clocks(
            clocks=clocks,
            levels=self.levels,
            fired=set(),
            calendar_for=self._calendar_for,
        )

    # --- the whole history --------------------------------------------------------------

    def run(
        self, *, priority: str, created_at: datetime, actions: Iterable[Action]
    ) -> tuple[list[SlaClock], datetime | None]:
        """Replay one ticket's history; return its clocks and its next SLA event instant."""
        clocks = self.start(priority=priority, now=created_at)
        for kind, at, arg in actions:
            if kind == "stop":
                self.operate(clocks, rules.STOP, (arg,), at)
            elif kind == "status":
                old_status, new_status = arg
                self.on_status_change(clocks, old_status, new_status, at)
            elif kind == "priority":
                self.retarget(clocks, arg, at)
            else:  # pragma: no cover - a programming error, not bad input
                raise ValueError(f"unknown clock action {kind!r}")
        return clocks, self.next_event(clocks)


def replay_live(*, ticket, version: StandardVersion, actions: Iterable[Action]) -> None:
    """Replay one saved ticket's history through the live engine (slas.services).

    `ticket` must be saved with its filing priority and service and no clocks yet; it ends with
    its clocks and `next_sla_event_at` written exactly as live use would have left them.
    """
    clocks = sla_services.sla_start_clocks(ticket=ticket, now=ticket.created_at)
    if clocks and clocks[0].version_id != version.pk:
        # The service points at another standard: move the fresh clocks to the chosen one the
        # way the engine re-targets any ticket (elapsed is still zero at this instant).
        sla_services.sla_retarget(ticket=ticket, now=ticket.created_at, version=version)
    for kind, at, arg in actions:
        if kind == "stop":
            sla_services.sla_stop(ticket=ticket, metric=arg, now=at)
        elif kind == "status":
            old_status, new_status = arg
            sla_services.sla_on_status_change(
                ticket=ticket, old_status=old_status, new_status=new_status, now=at
            )
        elif kind == "priority":
            ticket.priority = arg
            type(ticket).objects.filter(pk=ticket.pk).update(priority=arg)
            clock = ticket.clocks.select_related("version").first()
            sla_services.sla_retarget(
                ticket=ticket, now=at, version=clock.version if clock else version
            )
        else:  # pragma: no cover
            raise ValueError(f"unknown clock action {kind!r}")


def clock_snapshot(clock: SlaClock) -> dict:
    """The fields that make up a clock's state, for comparisons."""
    return {name: getattr(clock, name) for name in CLOCK_FIELDS}
