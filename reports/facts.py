"""Per-ticket facts and their roll-up contributions: the one definition of what a ticket adds
to the reports. Used by the in-transaction maintenance (reports/services.py), the full rebuild
and the consistency check, so all three agree by construction.

A fact is a plain dict of `TicketFact` field values. Clock outcomes follow SPEC §3 and
`slas.selectors.clock_state`, minus the part that depends on "now": a running clock without a
recorded breach is `pending` here, and the selectors count it as breached once its deadline
has passed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from reports import buckets
from reports.models import (
    HISTOGRAM_FIELDS,
    AgentRollup,
    BacklogRollup,
    DailyRollup,
    Outcome,
    PairRollup,
)
from slas.models import LadderLevel, SlaClock
from slas.selectors import threshold_duration
from tickets.models import ACTIVE_STATUSES, Status

METRIC_PREFIX = {"first_response": "fr", "resolution": "res"}
# SPEC §2: 0.75 of the target is the warning level when a ladder names none below 1.
DEFAULT_WARNING = Decimal("0.75")

TICKET_VALUES = (
    "id",
    "created_at",
    "supplier_department_id",
    "customer_department_id",
    "service_id",
    "priority",
    "assignee_id",
    "status",
)
CLOCK_VALUES = (
    "ticket_id",
    "metric",
    "status",
    "target",
    "elapsed",
    "running_since",
    "deadline",
    "breached_at",
    "version_id",
    "version__calendar_id",
)

FACT_FIELDS = (
    "day",
    "created_at",
    "supplier_id",
    "customer_id",
    "service_id",
    "priority",
    "assignee_id",
    "is_open",
    "is_cancelled",
    "breached_any",
    "fr_outcome",
    "fr_elapsed",
    "fr_bucket",
    "res_outcome",
    "res_elapsed",
    "res_bucket",
    "fr_deadline",
    "res_deadline",
    "next_deadline",
    "warn_at",
    "rating_1",
    "rating_2",
    "rating_3",
    "rating_4",
    "rating_5",
)
RATING_FIELDS = tuple(f"rating_{n}" for n in range(1, 6))

# Roll-up tables: model, key fields (fact field → roll-up field is the same name), counters.
COUNTERS = ("filed", "open", "cancelled", "fr_met", "fr_breached", "res_met", "res_breached")
DAILY_KEY = ("day", "supplier_id", "customer_id", "service_id", "priority")
AGENT_KEY = ("day", "supplier_id", "assignee_id")
BACKLOG_KEY = ("day", "supplier_id", "customer_id")
PAIR_KEY = ("day", "supplier_id", "customer_id")
DAILY_VALUES = COUNTERS + RATING_FIELDS
PAIR_VALUES = COUNTERS + RATING_FIELDS + tuple(HISTOGRAM_FIELDS["fr"] + HISTOGRAM_FIELDS["res"])
AGENT_VALUES = COUNTERS + RATING_FIELDS
BACKLOG_VALUES = ("open", "breached")
TABLES: tuple[tuple[type, tuple[str, ...], tuple[str, ...]], ...] = (
    (DailyRollup, DAILY_KEY, DAILY_VALUES),
    (PairRollup, PAIR_KEY, PAIR_VALUES),
    (AgentRollup, AGENT_KEY, AGENT_VALUES),
    (BacklogRollup, BACKLOG_KEY, BACKLOG_VALUES),
)

_warning_lock = threading.Lock()
_warning_cache: dict[tuple[int, str], Decimal] = {}


def reporting_day(instant: datetime) -> date:
    """The organisation's calendar day of an instant (settings.TIME_ZONE, not the viewer's)."""
    return timezone.localtime(instant, timezone.get_default_timezone()).date()


def warning_threshold(version_id: int, metric: str) -> Decimal:
    """The lowest ladder threshold below 1 for (version, metric), else 0.75.

    Standard versions never change once published, so the answer is cached per process.
    """
    key = (version_id, metric)
    cached = _warning_cache.get(key)
    if cached is not None:
        return cached
    levels = LadderLevel.objects.filter(
        version_id=version_id, metric=metric, threshold__lt=1
    ).values_list("threshold", flat=True)
    value = min(levels, default=DEFAULT_WARNING)
    with _warning_lock:
        _warning_cache[key] = value
    return value


def clock_outcome(clock: dict, *, ticket_cancelled: bool) -> str:
    """SPEC §3 outcome of a clock without reference to "now" (see module docstring)."""
    if ticket_cancelled or clock["status"] == SlaClock.Status.CANCELLED:
        return Outcome.NONE
    if clock["breached_at"] is not None:
        return Outcome.BREACHED
    if clock["status"] == SlaClock.Status.STOPPED:
        return Outcome.BREACHED if clock["elapsed"] > clock["target"] else Outcome.MET
    return Outcome.PENDING


def _warn_instant(clock: dict, calendar_for: Callable[[int], object]) -> datetime:
    threshold = warning_threshold(clock["version_id"], clock["metric"])
    at = threshold_duration(target=clock["target"], threshold=threshold)
    remaining = at - clock["elapsed"]
    if remaining <= timedelta(0):
        return clock["running_since"]
    calendar = calendar_for(clock["version__calendar_id"])
    return calendar.add(clock["running_since"], remaining)


def build_fact(
    *,
    ticket: dict,
    clocks: Iterable[dict],
    ratings: dict[int, int],
    calendar_for: Callable[[int], object],
) -> dict:
    """The fact of one ticket from its raw rows (values of TICKET_VALUES / CLOCK_VALUES)."""
    cancelled = ticket["status"] == Status.CANCELLED
    is_open = ticket["status"] in ACTIVE_STATUSES
    fact = {
        "day": reporting_day(ticket["created_at"]),
        "created_at": ticket["created_at"],
        "supplier_id": ticket["supplier_department_id"],
        "customer_id": ticket["customer_department_id"] or 0,
        "service_id": ticket["service_id"],
        "priority": ticket["priority"],
        "assignee_id": ticket["assignee_id"] or 0,
        "is_open": is_open,
        "is_cancelled": cancelled,
        "breached_any": False,
        "next_deadline": None,
        "warn_at": None,
    }
    for prefix in METRIC_PREFIX.values():
        fact.update(
            {
                f"{prefix}_outcome": Outcome.NONE.value,
                f"{prefix}_elapsed": None,
                f"{prefix}_bucket": None,
                f"{prefix}_deadline": None,
            }
        )
    pending_deadlines, warnings = [], []
    for clock in clocks:
        prefix = METRIC_PREFIX[clock["metric"]]
        outcome = clock_outcome(clock, ticket_cancelled=cancelled)
        fact[f"{prefix}_outcome"] = str(outcome)
        if outcome == Outcome.BREACHED:
            fact["breached_any"] = True
        if outcome != Outcome.NONE and clock["status"] == SlaClock.Status.STOPPED:
            # Business time to stop (SPEC §3): the elapsed banked when the clock stopped.
            fact[f"{prefix}_elapsed"] = clock["elapsed"]
            fact[f"{prefix}_bucket"] = buckets.bucket_of(clock["elapsed"])
        if outcome == Outcome.PENDING and clock["status"] == SlaClock.Status.RUNNING:
            fact[f"{prefix}_deadline"] = clock["deadline"]
            if clock["deadline"] is not None:
                pending_deadlines.append(clock["deadline"])
            if clock["running_since"] is not None:
                warnings.append(_warn_instant(clock, calendar_for))
    if is_open:
        # Every open ticket with a pending running clock, breached or not: a clock of another
        # metric may have breached already while this one still runs towards its deadline.
        fact["next_deadline"] = min(pending_deadlines, default=None)
        if not fact["breached_any"]:
            fact["warn_at"] = min(warnings, default=None)
    for n in range(1, 6):
        fact[f"rating_{n}"] = ratings.get(n, 0)
    return fact


def contributions(fact: dict | None) -> list[tuple[type, tuple, dict[str, int]]]:
    """What `fact` adds to each roll-up: (model, key values, {counter: amount})."""
    if fact is None:
        return []
    counters = {
        "filed": 1,
        "open": int(fact["is_open"]),
        "cancelled": int(fact["is_cancelled"]),
        "fr_met": int(fact["fr_outcome"] == Outcome.MET),
        "fr_breached": int(fact["fr_outcome"] == Outcome.BREACHED),
        "res_met": int(fact["res_outcome"] == Outcome.MET),
        "res_breached": int(fact["res_outcome"] == Outcome.BREACHED),
    }
    for name in RATING_FIELDS:
        counters[name] = fact[name]
    pair = dict(counters)
    for prefix in ("fr", "res"):
        if fact[f"{prefix}_bucket"] is not None:
            pair[f"{prefix}_h{fact[f'{prefix}_bucket']}"] = 1
    result = [
        (DailyRollup, tuple(fact[k] for k in DAILY_KEY), counters),
        (PairRollup, tuple(fact[k] for k in PAIR_KEY), pair),
        (AgentRollup, tuple(fact[k] for k in AGENT_KEY), counters),
    ]
    if fact["is_open"]:
        result.append(
            (
                BacklogRollup,
                tuple(fact[k] for k in BACKLOG_KEY),
                {"open": 1, "breached": int(fact["breached_any"])},
            )
        )
    return result


def delta(old: dict | None, new: dict | None) -> dict[tuple[type, tuple], dict[str, int]]:
    """new − old per roll-up row, zero entries dropped."""
    changes: dict[tuple[type, tuple], dict[str, int]] = {}
    for sign, fact in ((-1, old), (1, new)):
        for model, key, values in contributions(fact):
            row = changes.setdefault((model, key), {})
            for name, amount in values.items():
                if amount:
                    row[name] = row.get(name, 0) + sign * amount
    return {
        row_key: {k: v for k, v in values.items() if v}
        for row_key, values in changes.items()
        if any(values.values())
    }


def accumulate(into: dict[tuple[type, tuple], dict[str, int]], fact: dict) -> None:
    """Add a fact's contributions to an in-memory roll-up (rebuild and consistency check)."""
    for model, key, values in contributions(fact):
        row = into.setdefault((model, key), {})
        for name, amount in values.items():
            if amount:
                row[name] = row.get(name, 0) + amount
