"""Reporting tables: per-ticket facts and the roll-ups summed from them.

The roll-ups are plain sums of per-ticket contributions (reports/facts.py). Each ticket's
current contribution is kept in `TicketFact`; a ticket change recomputes the fact from the raw
ticket, clocks and ratings and applies the difference (new − old) to the roll-up rows, in the
same transaction as the change. So at every commit, roll-up = Σ facts = recomputation from raw
(tests/test_reports_rollups.py checks this after every kind of ticket change).

Department, service and person ids are stored as plain integers (0 = none) rather than foreign
keys: these are derived tables, rebuilt by `manage.py rebuild_rollups`, and never joined for
integrity.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from reports import buckets


class Outcome(models.TextChoices):
    NONE = "", _("no clock")
    MET = "met", _("met")
    BREACHED = "breached", _("breached")
    # Running or paused without a recorded breach: becomes breached at `*_deadline` if still
    # running then (SPEC §3), which the selectors count live.
    PENDING = "pending", _("pending")


class TicketFact(models.Model):
    """What one ticket contributes to the reports, recomputed from raw on every change."""

    ticket = models.OneToOneField(
        "tickets.Ticket", primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    # Filing day in settings.TIME_ZONE (the organisation's reporting day).
    day = models.DateField()
    created_at = models.DateTimeField()
    supplier_id = models.IntegerField()
    customer_id = models.IntegerField(default=0)
    service_id = models.IntegerField()
    priority = models.CharField(max_length=2)
    assignee_id = models.IntegerField(default=0)
    is_open = models.BooleanField(default=False)
    is_cancelled = models.BooleanField(default=False)
    breached_any = models.BooleanField(default=False)
    fr_outcome = models.CharField(max_length=10, blank=True, default="")
    fr_elapsed = models.DurationField(null=True, blank=True)
    fr_bucket = models.SmallIntegerField(null=True, blank=True)
    res_outcome = models.CharField(max_length=10, blank=True, default="")
    res_elapsed = models.DurationField(null=True, blank=True)
    res_bucket = models.SmallIntegerField(null=True, blank=True)
    fr_deadline = models.DateTimeField(null=True, blank=True)
    res_deadline = models.DateTimeField(null=True, blank=True)
    # Open tickets only: earliest deadline of a pending running clock (breached-now when it
    # has passed) and, unless a breach is recorded, the earliest warning instant (at risk).
    next_deadline = models.DateTimeField(null=True, blank=True)
    warn_at = models.DateTimeField(null=True, blank=True)
    rating_1 = models.SmallIntegerField(default=0)
    rating_2 = models.SmallIntegerField(default=0)
    rating_3 = models.SmallIntegerField(default=0)
    rating_4 = models.SmallIntegerField(default=0)
    rating_5 = models.SmallIntegerField(default=0)

    class Meta:
        indexes = [
            # Exact medians/p90: the facts of one histogram bucket in a period, read from the
            # index alone (the elapsed time is included).
            models.Index(
                fields=["supplier_id", "fr_bucket", "day"],
                include=["fr_elapsed"],
                name="fact_sup_fr",
            ),
            models.Index(
                fields=["supplier_id", "res_bucket", "day"],
                include=["res_elapsed"],
                name="fact_sup_res",
            ),
            models.Index(
                fields=["customer_id", "fr_bucket", "day"],
                include=["fr_elapsed"],
                name="fact_cus_fr",
            ),
            models.Index(
                fields=["customer_id", "res_bucket", "day"],
                include=["res_elapsed"],
                name="fact_cus_res",
            ),
            models.Index(fields=["fr_bucket", "day"], include=["fr_elapsed"], name="fact_fr"),
            models.Index(fields=["res_bucket", "day"], include=["res_elapsed"], name="fact_res"),
            # Live figures of the open backlog: only open tickets with a pending clock.
            models.Index(
                fields=["supplier_id", "next_deadline"],
                name="fact_sup_deadline",
                condition=Q(next_deadline__isnull=False),
            ),
            models.Index(
                fields=["customer_id", "next_deadline"],
                name="fact_cus_deadline",
                condition=Q(next_deadline__isnull=False),
            ),
            models.Index(
                fields=["next_deadline"],
                name="fact_deadline",
                condition=Q(next_deadline__isnull=False),
            ),
            models.Index(
                fields=["supplier_id", "warn_at"],
                name="fact_sup_warn",
                condition=Q(warn_at__isnull=False),
            ),
            models.Index(
                fields=["customer_id", "warn_at"],
                name="fact_cus_warn",
                condition=Q(warn_at__isnull=False),
            ),
            models.Index(fields=["warn_at"], name="fact_warn", condition=Q(warn_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"fact {self.ticket_id}"


class DailyRollup(models.Model):
    """Per filing day × supplier × customer × service × priority: the breakdowns by service
    and priority, and figures filtered by them."""

    day = models.DateField()
    supplier_id = models.IntegerField()
    customer_id = models.IntegerField()
    service_id = models.IntegerField()
    priority = models.CharField(max_length=2)
    filed = models.IntegerField(default=0)
    open = models.IntegerField(default=0)
    cancelled = models.IntegerField(default=0)
    fr_met = models.IntegerField(default=0)
    fr_breached = models.IntegerField(default=0)
    res_met = models.IntegerField(default=0)
    res_breached = models.IntegerField(default=0)
    rating_1 = models.IntegerField(default=0)
    rating_2 = models.IntegerField(default=0)
    rating_3 = models.IntegerField(default=0)
    rating_4 = models.IntegerField(default=0)
    rating_5 = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "supplier_id", "customer_id", "service_id", "priority"],
                name="daily_rollup_key",
            )
        ]
        indexes = [
            models.Index(fields=["supplier_id", "day"], name="daily_rollup_supplier"),
            models.Index(fields=["customer_id", "day"], name="daily_rollup_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.supplier_id}→{self.customer_id} {self.service_id} {self.priority}"


class PairRollup(models.Model):
    """Per filing day × supplier × customer, with the histograms of time to stop: the
    department figures, weekly trends and the organisation map.

    Narrow on purpose: a department's month is at most 30 × (departments) rows, so its cost
    stops growing with volume early (the five-dimension DailyRollup keeps growing denser)."""

    day = models.DateField()
    supplier_id = models.IntegerField()
    customer_id = models.IntegerField()
    filed = models.IntegerField(default=0)
    open = models.IntegerField(default=0)
    cancelled = models.IntegerField(default=0)
    fr_met = models.IntegerField(default=0)
    fr_breached = models.IntegerField(default=0)
    res_met = models.IntegerField(default=0)
    res_breached = models.IntegerField(default=0)
    rating_1 = models.IntegerField(default=0)
    rating_2 = models.IntegerField(default=0)
    rating_3 = models.IntegerField(default=0)
    rating_4 = models.IntegerField(default=0)
    rating_5 = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "supplier_id", "customer_id"], name="pair_rollup_key"
            )
        ]
        indexes = [
            models.Index(fields=["supplier_id", "day"], name="pair_rollup_supplier"),
            models.Index(fields=["customer_id", "day"], name="pair_rollup_customer"),
            models.Index(fields=["day"], name="pair_rollup_day"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.supplier_id}→{self.customer_id}"


class AgentRollup(models.Model):
    """Per filing day × supplier × assignee: the breakdown by agent."""

    day = models.DateField()
    supplier_id = models.IntegerField()
    assignee_id = models.IntegerField()
    filed = models.IntegerField(default=0)
    open = models.IntegerField(default=0)
    cancelled = models.IntegerField(default=0)
    fr_met = models.IntegerField(default=0)
    fr_breached = models.IntegerField(default=0)
    res_met = models.IntegerField(default=0)
    res_breached = models.IntegerField(default=0)
    rating_1 = models.IntegerField(default=0)
    rating_2 = models.IntegerField(default=0)
    rating_3 = models.IntegerField(default=0)
    rating_4 = models.IntegerField(default=0)
    rating_5 = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "supplier_id", "assignee_id"], name="agent_rollup_key"
            )
        ]
        indexes = [models.Index(fields=["supplier_id", "day"], name="agent_rollup_supplier")]

    def __str__(self) -> str:
        return f"{self.day} {self.supplier_id} agent {self.assignee_id}"


class BacklogRollup(models.Model):
    """Open tickets per filing day × supplier × customer: backlog by age, breached now."""

    day = models.DateField()
    supplier_id = models.IntegerField()
    customer_id = models.IntegerField()
    open = models.IntegerField(default=0)
    # Open tickets with a breach already recorded on a clock; the selectors add the open
    # tickets whose pending deadline has passed since.
    breached = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "supplier_id", "customer_id"], name="backlog_rollup_key"
            )
        ]
        indexes = [
            models.Index(fields=["supplier_id", "day"], name="backlog_rollup_supplier"),
            models.Index(fields=["customer_id", "day"], name="backlog_rollup_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.supplier_id}→{self.customer_id} open {self.open}"


# Histogram of business time to stop, one column per bucket and metric (reports/buckets.py).
HISTOGRAM_FIELDS: dict[str, list[str]] = {
    metric: [f"{metric}_h{i}" for i in range(buckets.COUNT)] for metric in ("fr", "res")
}
for _names in HISTOGRAM_FIELDS.values():
    for _name in _names:
        PairRollup.add_to_class(_name, models.IntegerField(default=0))


class Export(models.Model):
    """A CSV export running as a Celery job; the row holds its progress and result."""

    class State(models.TextChoices):
        PENDING = "pending", _("waiting")
        RUNNING = "running", _("running")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    requested_by = models.ForeignKey(
        "departments.User", on_delete=models.CASCADE, related_name="exports"
    )
    table = models.CharField(max_length=40)
    params = models.JSONField(default=dict)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    total = models.IntegerField(default=0)
    done = models.IntegerField(default=0)
    # Bumped by every run of the job: only the latest run may write progress and the result.
    attempt = models.IntegerField(default=0)
    file = models.FileField(upload_to="exports/", blank=True)
    filename = models.CharField(max_length=200, blank=True)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["pending", "running", "done", "failed"]),
                name="export_state_valid",
            )
        ]

    def __str__(self) -> str:
        return f"export {self.pk} {self.table} {self.state}"

    @property
    def percent(self) -> int:
        if self.state == self.State.DONE:
            return 100
        if not self.total:
            return 0
        return min(100, int(self.done * 100 / self.total))
