from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from departments.models import Priority


class Metric(models.TextChoices):
    FIRST_RESPONSE = "first_response", _("first response")
    RESOLUTION = "resolution", _("resolution")


class Calendar(models.Model):
    """Business hours: weekly wall-clock intervals in a time zone, minus holidays."""

    name = models.CharField(_("name"), max_length=120, unique=True)
    timezone = models.CharField(_("time zone"), max_length=64, default="Europe/Berlin")
    always_open = models.BooleanField(_("24×7"), default=False)
    holiday_country = models.CharField(
        _("holiday preset country"),
        max_length=3,
        blank=True,
        default="",
        help_text=_("ISO code understood by the holidays package, e.g. DE."),
    )
    holiday_subdivision = models.CharField(
        _("holiday preset subdivision"), max_length=10, blank=True, default=""
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(holiday_subdivision="") | ~Q(holiday_country=""),
                name="calendar_subdivision_needs_country",
            )
        ]

    def __str__(self) -> str:
        return self.name


class WorkingInterval(models.Model):
    class Weekday(models.IntegerChoices):
        MONDAY = 0, _("Monday")
        TUESDAY = 1, _("Tuesday")
        WEDNESDAY = 2, _("Wednesday")
        THURSDAY = 3, _("Thursday")
        FRIDAY = 4, _("Friday")
        SATURDAY = 5, _("Saturday")
        SUNDAY = 6, _("Sunday")

    calendar = models.ForeignKey(Calendar, on_delete=models.CASCADE, related_name="intervals")
    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=Weekday.choices)
    start = models.TimeField(_("from"))
    end = models.TimeField(_("until"), help_text=_("00:00 means midnight at the end of the day."))

    class Meta:
        ordering = ["weekday", "start"]
        constraints = [
            models.CheckConstraint(
                condition=Q(weekday__gte=0, weekday__lte=6), name="interval_weekday_valid"
            ),
            models.CheckConstraint(
                condition=Q(end__gt=models.F("start")) | Q(end="00:00"),
                name="interval_end_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.start:%H:%M}–{self.end:%H:%M}"


class Holiday(models.Model):
    calendar = models.ForeignKey(Calendar, on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField(_("date"))
    name = models.CharField(_("name"), max_length=120, blank=True)

    class Meta:
        ordering = ["date"]
        constraints = [
            models.UniqueConstraint(fields=["calendar", "date"], name="holiday_unique_date")
        ]

    def __str__(self) -> str:
        return f"{self.date:%Y-%m-%d} {self.name}".strip()


class ServiceStandard(models.Model):
    """A published promise (SLA policy). Its content lives in immutable versions."""

    name = models.CharField(_("name"), max_length=120, unique=True)
    department = models.ForeignKey(
        "departments.Department",
        verbose_name=_("owning department"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="standards",
    )
    current_version = models.ForeignKey(
        "StandardVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class StandardVersion(models.Model):
    """One version of a standard; tickets are measured against the version they were filed
    under, so a change never rewrites the past."""

    standard = models.ForeignKey(ServiceStandard, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    calendar = models.ForeignKey(Calendar, on_delete=models.PROTECT, related_name="versions")
    effective_from = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["standard", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["standard", "number"], name="standard_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.standard.name} v{self.number}"


class StandardTarget(models.Model):
    version = models.ForeignKey(StandardVersion, on_delete=models.CASCADE, related_name="targets")
    priority = models.CharField(max_length=2, choices=Priority.choices)
    first_response = models.DurationField(_("first response target"))
    resolution = models.DurationField(_("resolution target"))

    class Meta:
        ordering = ["priority"]
        constraints = [
            models.UniqueConstraint(fields=["version", "priority"], name="target_unique_priority"),
            models.CheckConstraint(
                condition=Q(first_response__gt=timedelta(0)), name="target_first_response_positive"
            ),
            models.CheckConstraint(
                condition=Q(resolution__gte=models.F("first_response")),
                name="target_resolution_not_before_first_response",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.priority}: {self.first_response} / {self.resolution}"

    def target_for(self, metric: str) -> timedelta:
        return self.first_response if metric == Metric.FIRST_RESPONSE else self.resolution


class LadderAction(models.TextChoices):
    NOTIFY_ASSIGNEE = "notify_assignee", _("notify the assignee")
    NOTIFY_SUPPLIER_LEAD = "notify_supplier_lead", _("notify the supplier department's lead")
    NOTIFY_PARENT_LEAD = "notify_parent_lead", _("notify the parent department's lead")
    NOTIFY_CUSTOMER_LEAD = "notify_customer_lead", _("notify the customer department's lead")
    RAISE_PRIORITY = "raise_priority", _("raise the priority")
    REASSIGN_TO_LEAD = "reassign_to_lead", _("reassign to the lead")


class LadderLevel(models.Model):
    """An escalation step: fires once per ticket when elapsed ≥ threshold × target."""

    version = models.ForeignKey(StandardVersion, on_delete=models.CASCADE, related_name="levels")
    metric = models.CharField(max_length=20, choices=Metric.choices)
    threshold = models.DecimalField(
        _("threshold"), max_digits=4, decimal_places=2, help_text=_("Fraction of the target.")
    )
    actions = models.JSONField(_("actions"), default=list, blank=True)

    class Meta:
        ordering = ["metric", "threshold"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "metric", "threshold"], name="ladder_level_unique"
            ),
            models.CheckConstraint(
                condition=Q(threshold__gt=0) & Q(threshold__lte=10), name="ladder_threshold_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_metric_display()} at {self.threshold:.0%}"


class SlaClock(models.Model):
    """One metric's clock on one ticket (SPEC §3).

    `elapsed` is the business time counted up to `running_since` (or to the stop); while the
    clock runs the live elapsed is `elapsed + calendar.elapsed(running_since, now)`.
    """

    class Status(models.TextChoices):
        RUNNING = "running", _("running")
        PAUSED = "paused", _("paused")
        STOPPED = "stopped", _("stopped")
        CANCELLED = "cancelled", _("cancelled")

    ticket = models.ForeignKey(
        "tickets.Ticket",
        on_delete=models.CASCADE,
        related_name="clocks",
        db_index=False,  # served by clock_unique_metric, which it leads
    )
    metric = models.CharField(max_length=20, choices=Metric.choices)
    version = models.ForeignKey(StandardVersion, on_delete=models.PROTECT, related_name="clocks")
    target = models.DurationField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    elapsed = models.DurationField(default=timedelta(0))
    running_since = models.DateTimeField(null=True, blank=True)
    deadline = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    breached_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["ticket", "metric"], name="clock_unique_metric"),
            models.CheckConstraint(
                condition=Q(status="running", running_since__isnull=False)
                | (~Q(status="running") & Q(running_since__isnull=True)),
                name="clock_running_has_start",
            ),
        ]
        indexes = [models.Index(fields=["status", "deadline"], name="clock_status_deadline")]

    def __str__(self) -> str:
        return f"{self.ticket_id} {self.metric} {self.status}"


class Escalation(models.Model):
    """A ladder level that fired. The unique constraint makes firing happen exactly once."""

    ticket = models.ForeignKey(
        "tickets.Ticket", on_delete=models.CASCADE, related_name="escalations"
    )
    metric = models.CharField(max_length=20, choices=Metric.choices)
    threshold = models.DecimalField(max_digits=4, decimal_places=2)
    level = models.ForeignKey(LadderLevel, null=True, on_delete=models.SET_NULL, related_name="+")
    due_at = models.DateTimeField(help_text=_("The instant the threshold was reached."))
    fired_at = models.DateTimeField()
    actions = models.JSONField(default=list)

    class Meta:
        ordering = ["fired_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["ticket", "metric", "threshold"], name="escalation_once_per_level"
            )
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id} {self.metric} {self.threshold}"


class ReplayJob(models.Model):
    """A what-if replay run in the background: the proposal, its progress and its result.

    The task that runs it is idempotent: it claims a queued job under a row lock, and a job
    that is already done is left alone, so a redelivered message does no harm.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        RUNNING = "running", _("running")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    standard = models.ForeignKey(
        ServiceStandard,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="replay_jobs",
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The proposed standard and the scope, as plain JSON (see slas/replay.py Proposal).
    proposal = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(done__lte=models.F("total")), name="replay_job_progress_bounded"
            )
        ]

    def __str__(self) -> str:
        return f"replay {self.pk} {self.status}"

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        return int(100 * self.done / self.total) if self.total else 0
