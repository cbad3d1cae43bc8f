"""SLA compliance figures (SPEC §3 "Compliance figures"): one definition for the dashboards and
`/api/v1/metrics/sla/` alike.

For the tickets filed in [start, end), cancelled ones excluded, per metric: `met` and
`breached` count clocks in those states as of `now` (a running clock past its deadline is
breached); `compliance` = met / (met + breached), None when both are 0; `median` and `p90`
are of the business time to stop (`elapsed`) over stopped clocks — the median averages the two
middle values of an even count, p90 is the nearest-rank 90th percentile.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.db.models import Count, F, Q, QuerySet

from slas.models import Metric, SlaClock


def breached_clock_q(*, now: datetime) -> Q:
    """Clocks in state `breached` as of `now` (slas.selectors.clock_state, as a Q)."""
    return (
        Q(breached_at__isnull=False)
        | Q(status=SlaClock.Status.RUNNING, deadline__lt=now)
        | Q(status=SlaClock.Status.STOPPED, elapsed__gt=F("target"))
    )


def met_clock_q() -> Q:
    return Q(status=SlaClock.Status.STOPPED, breached_at__isnull=True, elapsed__lte=F("target"))


def _percentiles(stopped: QuerySet[SlaClock]) -> tuple[timedelta | None, timedelta | None]:
    # Read only the rows that matter, in database order: memory stays flat for any history.
    n = stopped.count()
    if n == 0:
        return None, None
    ordered = stopped.order_by("elapsed").values_list("elapsed", flat=True)
    middle = list(ordered[(n - 1) // 2 : n // 2 + 1])
    median = middle[0] if len(middle) == 1 else (middle[0] + middle[1]) / 2
    p90 = ordered[math.ceil(0.9 * n) - 1]
    return median, p90


def sla_compliance(
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    supplier_ids: set[int] | None = None,
    customer_ids: set[int] | None = None,
    either_ids: set[int] | None = None,
) -> dict:
    """Figures for tickets filed in [start, end); the id sets narrow it (None = any).

    `either_ids` keeps tickets whose supplier *or* customer department is among them (a
    lead's view of its departments on both sides).
    """
    from tickets.models import Status, Ticket

    tickets = Ticket.objects.filter(created_at__gte=start, created_at__lt=end).exclude(
        status=Status.CANCELLED
    )
    if supplier_ids is not None:
        tickets = tickets.filter(supplier_department_id__in=supplier_ids)
    if customer_ids is not None:
        tickets = tickets.filter(customer_department_id__in=customer_ids)
    if either_ids is not None:
        tickets = tickets.filter(
            Q(supplier_department_id__in=either_ids) | Q(customer_department_id__in=either_ids)
        )
    clocks = SlaClock.objects.filter(ticket__in=tickets.values("pk")).exclude(
        status=SlaClock.Status.CANCELLED
    )
    counts = {
        row["metric"]: row
        for row in clocks.values("metric")
        .order_by()
        .annotate(
            met=Count("pk", filter=met_clock_q()),
            breached=Count("pk", filter=breached_clock_q(now=now)),
        )
    }
    result: dict = {"tickets": tickets.count()}
    for metric in (Metric.FIRST_RESPONSE, Metric.RESOLUTION):
        row = counts.get(metric, {"met": 0, "breached": 0})
        met, breached = row["met"], row["breached"]
        median, p90 = _percentiles(clocks.filter(metric=metric, status=SlaClock.Status.STOPPED))
        result[str(metric)] = {
            "met": met,
            "breached": breached,
            "compliance": met / (met + breached) if met + breached else None,
            "median": median,
            "p90": p90,
        }
    return result
