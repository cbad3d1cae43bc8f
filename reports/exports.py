"""CSV exports of every dashboard table.

An `ExportSpec` names a table and its parameters, checks the permission once (the same rules
as the page showing the table) and yields rows. Aggregate tables are small and streamed
straight to the browser; a ticket list longer than `REPORTS_EXPORT_STREAM_LIMIT` rows runs as
a Celery job (reports.tasks.export_run) whose progress is kept on an `Export` row.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.core.files.base import File
from django.db import transaction
from django.db.models import F
from django.http import QueryDict
from django.utils import timezone
from django.utils.translation import gettext as _

from departments.models import Department
from reports import buckets, selectors
from reports.forms import PeriodForm, TicketFilterForm
from reports.models import Export
from servicedesk import permissions

DASHBOARD_TABLES = (
    "summary",
    "service",
    "priority",
    "customer",
    "supplier",
    "agent",
    "weekly",
    "backlog",
    "histogram",
    "low_ratings",
)
ORGANISATION_TABLES = ("pairs", "suppliers", "services", "all_low_ratings")
TABLES = (*DASHBOARD_TABLES, *ORGANISATION_TABLES, "tickets")
PROGRESS_EVERY = 500


def stream_limit() -> int:
    return getattr(settings, "REPORTS_EXPORT_STREAM_LIMIT", 5000)


class ExportError(Exception):
    def __init__(self, message: str, *, not_found: bool = False):
        super().__init__(message)
        self.message = message
        self.not_found = not_found


def dashboard_tables(side: str) -> list[tuple[str, str]]:
    """(table, label) pairs offered as CSV on a dashboard."""
    labels = {
        "summary": _("Summary"),
        "service": _("By service"),
        "priority": _("By priority"),
        "customer": _("By customer department"),
        "supplier": _("By supplier department"),
        "agent": _("By agent"),
        "weekly": _("Weekly trend"),
        "backlog": _("Backlog by age"),
        "histogram": _("Time to stop, distribution"),
        "low_ratings": _("Low ratings"),
    }
    skip = {"supplier", "customer", "agent"}
    skip -= {"customer", "agent"} if side == "supplier" else {"supplier"}
    return [(name, labels[name]) for name in DASHBOARD_TABLES if name not in skip]


def _safe(value) -> object:
    """Neutralise spreadsheet formulas in user text (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _pct(value) -> str:
    return "" if value is None else f"{value:.4f}"


def _seconds(value) -> str:
    return "" if value is None else f"{value.total_seconds():.0f}"


TALLY_HEADER = [
    "filed",
    "open",
    "cancelled",
    "first_response_met",
    "first_response_breached",
    "first_response_compliance",
    "resolution_met",
    "resolution_breached",
    "resolution_compliance",
    "ratings",
    "rating_average",
]


def _tally_cells(tally) -> list:
    return [
        tally.filed,
        tally.open,
        tally.cancelled,
        tally.fr_met,
        tally.fr_breached,
        _pct(tally.fr_compliance),
        tally.res_met,
        tally.res_breached,
        _pct(tally.res_compliance),
        tally.rating_count,
        "" if tally.rating_average is None else f"{tally.rating_average:.3f}",
    ]


class _Echo:
    def write(self, value):
        return value


@dataclass
class ExportSpec:
    user: object
    table: str
    params: dict = field(default_factory=dict)
    department: Department | None = None
    side: str = "supplier"
    period: selectors.Period | None = None
    filters: dict | None = None

    @classmethod
    def from_request(cls, *, user, table: str, params) -> ExportSpec:
        """Validate `params` (a QueryDict or dict) and check the permission; raise ExportError."""
        if isinstance(params, QueryDict):
            params = {key: params.get(key) for key in params}
        if table not in TABLES:
            raise ExportError(_("No such table."), not_found=True)
        spec = cls(user=user, table=table, params=dict(params))
        if not permissions.can_view_dashboards(user):
            raise ExportError(_("Not found."), not_found=True)
        if table == "tickets":
            form = TicketFilterForm(params)
            if not form.is_valid():
                raise ExportError(_("Check the filters: %(errors)s") % {"errors": form.errors})
            spec.filters = form.cleaned_data
            return spec
        period_form = PeriodForm(params)
        if params and not period_form.is_valid():
            raise ExportError(_("Check the period."))
        spec.period = period_form.get_period()
        if table in DASHBOARD_TABLES:
            department = Department.objects.filter(slug=params.get("department") or "").first()
            if department is None or not permissions.can_view_dashboard(user, department):
                raise ExportError(_("Not found."), not_found=True)
            side = params.get("side") or "supplier"
            if side not in ("supplier", "customer"):
                raise ExportError(_("Choose the supplier or the customer side."))
            if table not in {name for name, _label in dashboard_tables(side)}:
                raise ExportError(_("No such table on this dashboard."), not_found=True)
            spec.department, spec.side = department, side
        return spec

    # --- Rows ---------------------------------------------------------------------------

    def filename(self) -> str:
        stamp = timezone.localdate().isoformat()
        who = self.department.slug if self.department else "organisation"
        if self.table in DASHBOARD_TABLES:
            who = f"{who}-{self.side}"
        return f"{who}-{self.table}-{stamp}.csv"

    def _scope(self) -> selectors.Scope:
        if self.department is not None:
            return selectors.department_scope(self.department, self.side)
        allowed = permissions.dashboard_department_ids(self.user)
        if allowed is None:
            return selectors.Scope()
        return selectors.Scope(either_ids=tuple(sorted(allowed)))

    def tickets_queryset(self):
        return selectors.dashboard_tickets(user=self.user, filters=self.filters or {})

    def count(self) -> int:
        if self.table == "tickets":
            return self.tickets_queryset().count()
        return 0  # aggregates: bounded by departments × services, always streamed

    def is_large(self) -> bool:
        return self.table == "tickets" and self.count() > stream_limit()

    def rows(self) -> Iterator[list]:
        """Header first, then the data rows."""
        method = getattr(self, f"_rows_{self.table}")
        yield from method()

    def stream_csv(self) -> Iterator[str]:
        writer = csv.writer(_Echo())
        for row in self.rows():
            yield writer.writerow([_safe(cell) for cell in row])

    def _rows_summary(self):
        scope, period = self._scope(), self.period
        figures = selectors.sla_figures(scope=scope, period=period)
        live = selectors.live_figures(scope=scope)
        yield ["figure", "value"]
        yield ["period_from", period.start.isoformat()]
        yield ["period_to_excluded", period.end.isoformat()]
        yield ["filed", figures["filed"]]
        yield ["cancelled", figures["cancelled"]]
        for metric, _prefix in selectors.METRICS:
            data = figures[metric]
            yield [f"{metric}_met", data["met"]]
            yield [f"{metric}_breached", data["breached"]]
            yield [f"{metric}_compliance", _pct(data["compliance"])]
            yield [f"{metric}_median_seconds", _seconds(data["median"])]
            yield [f"{metric}_p90_seconds", _seconds(data["p90"])]
        yield ["open_now", live["open"]]
        yield ["at_risk_now", live["at_risk"]]
        yield ["breached_now", live["breached_now"]]
        satisfaction = figures["satisfaction"]
        yield ["ratings", satisfaction["count"]]
        yield [
            "rating_average",
            "" if satisfaction["average"] is None else f"{satisfaction['average']:.3f}",
        ]

    def _breakdown_rows(self, by: str):
        yield [by, *TALLY_HEADER]
        for row in selectors.breakdown(scope=self._scope(), period=self.period, by=by):
            yield [row["label"], *_tally_cells(row["tally"])]

    def _rows_service(self):
        yield from self._breakdown_rows("service")

    def _rows_priority(self):
        yield from self._breakdown_rows("priority")

    def _rows_customer(self):
        yield from self._breakdown_rows("customer")

    def _rows_supplier(self):
        yield from self._breakdown_rows("supplier")

    def _rows_agent(self):
        yield from self._breakdown_rows("agent")

    def _rows_suppliers(self):
        yield from self._breakdown_rows("supplier")

    def _rows_services(self):
        yield from self._breakdown_rows("service")

    def _rows_weekly(self):
        yield ["week_starting", *TALLY_HEADER]
        for row in selectors.weekly_trend(scope=self._scope(), period=self.period):
            yield [row["week"].isoformat(), *_tally_cells(row["tally"])]

    def _rows_backlog(self):
        yield ["age_from_days", "age_to_days", "open", "breached_now"]
        today = selectors.reporting_today()
        for band in selectors.backlog_by_age(scope=self._scope(), today=today):
            yield [band["low"], "" if band["high"] is None else band["high"], band["open"],
                   band["breached"]]  # fmt: skip

    def _rows_histogram(self):
        figures = selectors.sla_figures(scope=self._scope(), period=self.period)
        yield ["business_time", "from_seconds", "first_response", "resolution"]
        for index in range(buckets.COUNT):
            yield [
                buckets.bucket_label(index),
                0 if index <= 1 else int(buckets.EDGES[index]),
                figures["first_response"]["histogram"][index],
                figures["resolution"]["histogram"][index],
            ]

    def _low_rating_rows(self, limit: int):
        yield ["ticket", "supplier", "customer", "rating", "comment", "rated_at"]
        for rating in selectors.low_ratings(scope=self._scope(), period=self.period, limit=limit):
            yield [
                rating.ticket.reference,
                rating.supplier_department.name,
                rating.customer_department.name if rating.customer_department else "",
                rating.rating,
                rating.comment,
                rating.created_at.isoformat(),
            ]

    def _rows_low_ratings(self):
        yield from self._low_rating_rows(1000)

    def _rows_all_low_ratings(self):
        yield from self._low_rating_rows(5000)

    def _rows_pairs(self):
        allowed = permissions.organisation_map_department_ids(self.user)
        pairs = selectors.organisation_pairs(period=self.period, department_ids=allowed)
        names = dict(Department.objects.values_list("pk", "name"))
        weakest = selectors.weakest_links(pairs)
        yield ["supplier", "customer", *TALLY_HEADER, "weakest_link"]
        for pair in sorted(
            pairs,
            key=lambda p: (names.get(p["supplier_id"], ""), names.get(p["customer_id"], "")),
        ):
            yield [
                names.get(pair["supplier_id"], ""),
                names.get(pair["customer_id"], ""),
                *_tally_cells(pair["tally"]),
                "yes" if (pair["supplier_id"], pair["customer_id"]) in weakest else "",
            ]

    def _rows_tickets(self, queryset=None):
        yield [
            "reference",
            "title",
            "supplier",
            "customer",
            "service",
            "priority",
            "status",
            "assignee",
            "filed_at",
        ]
        for ticket in (queryset if queryset is not None else self.tickets_queryset()).iterator(
            chunk_size=2000
        ):
            yield [
                ticket.reference,
                ticket.title,
                ticket.supplier_department.name,
                ticket.customer_department.name if ticket.customer_department else "",
                ticket.service.name,
                ticket.priority,
                ticket.status,
                ticket.assignee.username if ticket.assignee else "",
                ticket.created_at.isoformat(),
            ]


# --- Background exports -----------------------------------------------------------------


def enqueue(export_id: int) -> None:
    from reports.tasks import export_run

    transaction.on_commit(lambda: export_run.delay(export_id))


def export_start(*, user, spec: ExportSpec) -> Export:
    """Record a background export and queue its job once the row is committed."""
    with transaction.atomic():
        export = Export.objects.create(
            requested_by=user,
            table=spec.table,
            params=spec.params,
            created_at=timezone.now(),
        )
        enqueue(export.pk)
    return export


def export_run(*, export_id: int) -> Export | None:
    """Write the export's CSV, updating its progress; safe to run twice or concurrently.

    Each run takes a new attempt number; progress and the result are written only while the
    row still carries that number, so a duplicate or retried job supersedes the older one
    instead of both writing.
    """
    export = Export.objects.filter(pk=export_id).select_related("requested_by").first()
    if export is None or export.state == Export.State.DONE:
        return export
    with transaction.atomic():
        claimed = Export.objects.filter(
            pk=export_id, state__in=[Export.State.PENDING, Export.State.RUNNING]
        ).update(state=Export.State.RUNNING, attempt=F("attempt") + 1, done=0)
        if not claimed:
            return Export.objects.get(pk=export_id)
        attempt = Export.objects.values_list("attempt", flat=True).get(pk=export_id)
    mine = Export.objects.filter(pk=export_id, attempt=attempt)
    try:
        spec = ExportSpec.from_request(
            user=export.requested_by, table=export.table, params=export.params
        )
        total = spec.count()
        mine.update(total=total)
        rows = 0
        with tempfile.TemporaryFile(mode="w+b") as buffer:
            text = io.TextIOWrapper(buffer, encoding="utf-8", newline="")
            writer = csv.writer(text)
            for n, row in enumerate(spec.rows()):
                writer.writerow([_safe(cell) for cell in row])
                rows = n  # data rows so far (the first row is the header)
                if n and n % PROGRESS_EVERY == 0 and not mine.update(done=n):
                    return Export.objects.get(pk=export_id)  # superseded by a newer attempt
            text.flush()
            buffer.seek(0)
            export.file.save(f"{export_id}-{attempt}.csv", File(buffer), save=False)
            text.detach()
        finished = mine.update(
            state=Export.State.DONE,
            done=rows,
            total=max(total, rows),
            file=export.file.name,
            filename=spec.filename(),
            finished_at=timezone.now(),
        )
        if not finished:
            export.file.delete(save=False)
    except ExportError as error:
        mine.update(state=Export.State.FAILED, error=error.message[:300])
    return Export.objects.get(pk=export_id)
