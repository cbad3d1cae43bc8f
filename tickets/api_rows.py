"""The API ticket list represented from plain rows (issue 10).

Through the ORM and DRF a page of 50 tickets built ~300 model instances (each ticket with its
five related rows, clocks and escalations) and ran some thirty DRF fields per ticket: most of the
request's CPU. Here the page is one values() query with the joins its slugs and usernames
need, its clocks and escalations one values() query each, and every value is written the way
TicketSerializer's field writes it. TicketSerializer stays the documented shape (and what
single-ticket responses use); tests/test_api_rows.py holds both outputs equal.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal

from django.utils import timezone
from django.utils.duration import duration_string
from rest_framework import serializers

from servicedesk.prepared import PreparedByIds
from slas import selectors as sla_selectors
from slas.models import Escalation, SlaClock
from tickets import selectors

# TicketSerializer's fields, each related one by the column it shows (service by id).
TICKET_COLUMNS = (
    "reference",
    "title",
    "description",
    "service_id",
    "supplier_department__slug",
    "customer_department__slug",
    "requester__username",
    "assignee__username",
    "priority",
    "status",
    "confidential",
    "created_at",
    "updated_at",
)
_ESCALATION_COLUMNS = ("ticket_id", "metric", "threshold", "level__version_id", "fired_at")
# EscalationSerializer.threshold has two decimal places.
_CENTS = Decimal("0.01")
# Only to raise DRF's own error for an instant the time zone cannot hold.
_DATETIME_FIELD = serializers.DateTimeField()


# --- Shared with TicketSerializer's input (tickets.api._attach_sla) --------------------------


def clock_row(clock, *, elapsed: timedelta, now: datetime) -> dict:
    """ClockSerializer's input for one clock as of `now` (a model instance or a row)."""
    return {
        "metric": clock.metric,
        "target": clock.target,
        "elapsed": elapsed,
        "deadline": clock.deadline,
        "state": sla_selectors.clock_state(clock=clock, now=now),
        "breached_at": clock.breached_at
        or (
            clock.deadline
            if clock.status == SlaClock.Status.RUNNING and clock.deadline and clock.deadline < now
            else None
        ),
    }


def ladder_thresholds(version_ids: Iterable[int]) -> dict[tuple[int, str], list[Decimal]]:
    """Each ladder's thresholds by (version, metric), ascending, from the per-process cache of
    version content (a published version never changes: no query once it is warm)."""
    ladders: dict[tuple[int, str], list[Decimal]] = defaultdict(list)
    for version_id in set(version_ids):
        for level in sla_selectors.version_content(version_id).levels:  # by metric, threshold
            ladders[(version_id, level.metric)].append(level.threshold)
    return ladders


def escalation_level(
    ladders: dict[tuple[int, str], list[Decimal]],
    *,
    version_id: int | None,
    metric: str,
    threshold: Decimal,
) -> int | None:
    """The 1-based position of a fired threshold in its ladder (None: not in the ladder)."""
    thresholds = ladders.get((version_id, metric), [])
    return thresholds.index(threshold) + 1 if threshold in thresholds else None


# --- The list page ---------------------------------------------------------------------------


_escalations = PreparedByIds(
    Escalation.objects.order_by("fired_at", "metric", "threshold"), "ticket_id", _ESCALATION_COLUMNS
)


def _instant(value: datetime | None, tz: tzinfo) -> str | None:
    """DRF DateTimeField's ISO 8601 output, in the time zone it would read per value."""
    if value is None:
        return None
    try:
        text = value.astimezone(tz).isoformat()
    except OverflowError:
        return _DATETIME_FIELD.to_representation(value)  # raises DRF's 'overflow' error
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def ticket_page(rows: list[dict], *, now: datetime) -> list[dict]:
    """`TicketSerializer(tickets, many=True).data` for the tickets of these TICKET_COLUMNS rows
    (in their order), with SLA clocks and escalations as of `now`.

    Queries: the clocks with their calendars' freshness keys and the escalations (none for no
    ticket); ladders come from the version content cache (`ladder_thresholds`).
    """
    if not rows:
        return []
    ids = [row["pk"] for row in rows]
    clocks = selectors.page_clocks(ids)
    escalations: dict[int, list] = defaultdict(list)
    for escalation in _escalations.rows(ids):
        escalations[escalation.ticket_id].append(escalation)
    # The ladders of the versions an escalation may belong to (as `_attach_sla` reads them).
    version_ids = {clock.version_id for ticket_id in escalations for clock in clocks[ticket_id]}
    version_ids |= {
        escalation.level__version_id
        for fired in escalations.values()
        for escalation in fired
        if escalation.level__version_id is not None
    }
    ladders = ladder_thresholds(version_ids)
    # Each calendar once, from the freshness key its clocks carry (no query of its own).
    lens = selectors.SlaLens(now=now)
    lens.prime_rows(clock for ticket_clocks in clocks.values() for clock in ticket_clocks)
    # DRF's DateTimeField looks the current time zone up for every value; once is enough.
    tz = timezone.get_current_timezone()
    page = []
    for row in rows:
        ticket_clocks = clocks.get(row["pk"], ())
        sla = []
        for clock in ticket_clocks:
            elapsed = sla_selectors.clock_elapsed(
                clock=clock, calendar=lens.calendar(clock.version__calendar_id), now=now
            )
            native = clock_row(clock, elapsed=elapsed, now=now)
            sla.append(
                {
                    "metric": native["metric"],
                    "target": duration_string(native["target"]),
                    "elapsed": duration_string(native["elapsed"]),
                    "deadline": _instant(native["deadline"], tz),
                    "state": native["state"],
                    "breached_at": _instant(native["breached_at"], tz),
                }
            )
        clock_versions = {clock.metric: clock.version_id for clock in ticket_clocks}
        fired = [
            {
                "metric": escalation.metric,
                "level": escalation_level(
                    ladders,
                    version_id=escalation.level__version_id
                    if escalation.level__version_id is not None
                    else clock_versions.get(escalation.metric),
                    metric=escalation.metric,
                    threshold=escalation.threshold,
                ),
                "threshold": escalation.threshold.quantize(_CENTS),
                "fired_at": _instant(escalation.fired_at, tz),
            }
            for escalation in escalations.get(row["pk"], ())
        ]
        page.append(
            {
                "reference": row["reference"],
                "title": row["title"],
                "description": row["description"],
                "service": row["service_id"],
                "supplier_department": row["supplier_department__slug"],
                "customer_department": row["customer_department__slug"],
                "requester": row["requester__username"],
                "assignee": row["assignee__username"],
                "priority": row["priority"],
                "status": row["status"],
                "confidential": row["confidential"],
                "created_at": _instant(row["created_at"], tz),
                "updated_at": _instant(row["updated_at"], tz),
                "sla": sla,
                "escalations": fired,
            }
        )
    return page
