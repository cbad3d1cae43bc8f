"""SPEC §3 clock rules as pure functions on clock states (no ORM, no I/O).

The live engine (slas/services.py) applies these to `SlaClock` rows and saves them; the
what-if replay (slas/replay.py) applies the very same functions to in-memory
:class:`ClockState` objects built from a ticket's recorded events. Sharing them is what makes
"replaying the current standard gives exactly the recorded outcomes" hold by construction
rather than by keeping two copies in step.

A *clock* here is anything with the attributes of :class:`ClockState` (an `SlaClock` row has
them all). `calendar` arguments are :class:`slas.clock.BusinessCalendar` instances.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from slas.clock import BusinessCalendar

ZERO = timedelta(0)

RUNNING = "running"
PAUSED = "paused"
STOPPED = "stopped"
CANCELLED = "cancelled"

FIRST_RESPONSE = "first_response"
RESOLUTION = "resolution"
METRICS = (FIRST_RESPONSE, RESOLUTION)

# Operations a ticket change applies to its clocks.
PAUSE = "pause"
RESUME = "resume"
STOP = "stop"
CANCEL = "cancel"


@dataclass
class ClockState:
    """An in-memory clock with the same fields (and meaning) as `slas.models.SlaClock`."""

    metric: str
    version: Any
    target: timedelta
    status: str = RUNNING
    elapsed: timedelta = ZERO
    running_since: datetime | None = None
    deadline: datetime | None = None
    stopped_at: datetime | None = None
    breached_at: datetime | None = None


def deadline_of(clock, calendar: BusinessCalendar) -> datetime | None:
    """The instant elapsed reaches the target if the clock keeps running (SPEC §3)."""
    if clock.status != RUNNING or clock.running_since is None:
        return None
    remaining = clock.target - clock.elapsed
    if remaining <= ZERO:
        return clock.running_since
    return calendar.add(clock.running_since, remaining)


def settle(clock, calendar: BusinessCalendar, now: datetime) -> None:
    """Bank the business time counted since `running_since` and record a breach if any."""
    if clock.status != RUNNING or clock.running_since is None:
        return
    deadline = deadline_of(clock, calendar)
    clock.elapsed = clock.elapsed + calendar.elapsed(clock.running_since, now)
    if clock.breached_at is None and clock.elapsed > clock.target:
        clock.breached_at = deadline
    clock.running_since = None


def begin(clock, calendar: BusinessCalendar, now: datetime) -> None:
    """Start a new clock at `now` (the ticket was filed)."""
    clock.status = RUNNING
    clock.running_since = now
    clock.deadline = deadline_of(clock, calendar)


def pause(clock, calendar: BusinessCalendar, now: datetime) -> bool:
    """Pause a running clock; return whether anything changed."""
    if clock.status != RUNNING:
        return False
    settle(clock, calendar, now)
    clock.status = PAUSED
    clock.deadline = None
    return True


def resume(
    clock, calendar: BusinessCalendar, now: datetime, metrics: tuple[str, ...] | None = None
) -> bool:
    """Resume a paused clock (and, when `metrics` names it, a stopped one: a reopen)."""
    resumable = clock.status == PAUSED or (
        metrics is not None and clock.metric in metrics and clock.status == STOPPED
    )
    if not resumable:
        return False
    clock.status = RUNNING
    clock.running_since = now
    clock.stopped_at = None
    clock.deadline = deadline_of(clock, calendar)
    return True


def stop(clock, calendar: BusinessCalendar, now: datetime) -> bool:
    """Stop a running or paused clock: met if elapsed ≤ target, otherwise breached."""
    if clock.status not in (RUNNING, PAUSED):
        return False
    settle(clock, calendar, now)
    clock.status = STOPPED
    clock.stopped_at = now
    return True


def cancel(clock, calendar: BusinessCalendar, now: datetime) -> bool:
    """Stop a clock for good; cancelled tickets leave the compliance figures."""
    if clock.status == CANCELLED:
        return False
    settle(clock, calendar, now)
    clock.status = CANCELLED
    clock.stopped_at = clock.stopped_at or now
    clock.deadline = None if clock.stopped_at == now else clock.deadline
    return True


def retarget(
    clock,
    *,
    version: Any,
    target: timedelta | None,
    old_calendar: BusinessCalendar,
    new_calendar: BusinessCalendar,
    now: datetime,
) -> bool:
    """Move a running or paused clock to a new version/target, keeping elapsed.

    A breach already recorded stays (SPEC §3: never undone); a clock whose elapsed is already
    beyond the new target is breached from `now`.
    """
    if clock.status not in (RUNNING, PAUSED) or target is None:
        return False
    if clock.status == RUNNING:
        # Bank time under the old calendar, then run on under the new one.
        settle(clock, old_calendar, now)
        clock.running_since = now
    clock.version = version
    clock.target = target
    if clock.breached_at is None and clock.elapsed > clock.target:
        clock.breached_at = now
    clock.deadline = deadline_of(clock, new_calendar)
    return True


def status_change_operations(
    old_status: str, new_status: str
) -> list[tuple[str, tuple[str, ...] | None]]:
    """What a status transition does to the clocks, in order: (operation, metrics)."""
    if new_status == "cancelled":
        return [(CANCEL, None)]
    if new_status == "waiting_on_customer":
        return [(PAUSE, None)]
    if new_status == "resolved":
        # Resolved without a public reply also stops the first-response clock.
        return [(STOP, (FIRST_RESPONSE,)), (STOP, (RESOLUTION,))]
    if new_status == "open" and old_status == "waiting_on_customer":
        return [(RESUME, None)]
    if new_status == "open" and old_status == "resolved":
        # A reopen resumes resolution, keeping the time already counted.
        return [(RESUME, (RESOLUTION,))]
    return []


def apply_operation(
    clocks: Iterable,
    *,
    operation: str,
    metrics: tuple[str, ...] | None,
    now: datetime,
    calendar_for: Callable[[Any], BusinessCalendar],
) -> list:
    """Apply one operation to a ticket's clocks; return the clocks that changed."""
    changed = []
    for clock in clocks:
        # Look the calendar up only for clocks the operation touches (a lookup may query).
        if not _applies(clock, operation, metrics):
            continue
        calendar = calendar_for(clock)
        if operation == PAUSE:
            pause(clock, calendar, now)
        elif operation == RESUME:
            resume(clock, calendar, now, metrics)
        elif operation == STOP:
            stop(clock, calendar, now)
        else:
            cancel(clock, calendar, now)
        changed.append(clock)
    return changed


def _applies(clock, operation: str, metrics: tuple[str, ...] | None) -> bool:
    if operation == PAUSE:
        return clock.status == RUNNING
    if operation == RESUME:
        return clock.status == PAUSED or (
            metrics is not None and clock.metric in metrics and clock.status == STOPPED
        )
    if operation == STOP:
        return clock.metric in (metrics or METRICS) and clock.status in (RUNNING, PAUSED)
    if operation == CANCEL:
        return clock.status != CANCELLED
    raise ValueError(f"unknown clock operation {operation!r}")


def clock_state(clock, now: datetime) -> str:
    """One of running, paused, met, breached, cancelled (SPEC §3)."""
    if clock.status == CANCELLED:
        return "cancelled"
    if clock.breached_at is not None:
        return "breached"
    if clock.status == RUNNING and clock.deadline and clock.deadline < now:
        return "breached"
    if clock.status == STOPPED:
        return "breached" if clock.elapsed > clock.target else "met"
    return clock.status


def live_elapsed(clock, calendar: BusinessCalendar, now: datetime) -> timedelta:
    """Business time counted by `clock` up to `now`."""
    if clock.status == RUNNING and clock.running_since is not None:
        return clock.elapsed + calendar.elapsed(clock.running_since, now)
    return clock.elapsed
