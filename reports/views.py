"""Dashboards, organisation map, satisfaction, the tickets behind a figure, CSV exports.

Thin: permission check (servicedesk.permissions), a selector call, render. Charts receive
their data through `json_script` and are drawn by static/js/dashboards.js.
"""

from __future__ import annotations

import math
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import FileResponse, Http404, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from departments.models import Department
from reports import buckets, exports, selectors
from reports import cache as report_cache
from reports.forms import PeriodForm, TicketFilterForm
from reports.models import Export
from reports.templatetags.reports import drill_links, pct, rating
from servicedesk import permissions

PAGE_SIZE = 50
# The states each row of a breakdown table links to ("" = every ticket of the row).
TALLY_STATES = (
    "",
    "open",
    "fr_met",
    "fr_breached",
    "fr_counted",
    "res_met",
    "res_breached",
    "res_counted",
    "rated",
)


def _require_dashboards(user) -> None:
    if not permissions.can_view_dashboards(user):
        raise Http404


def _period_context(request):
    form = PeriodForm(request.GET or None)
    period = form.get_period()
    return form, period


def _period_query(period) -> dict:
    """The query string that reproduces `period` on another page (links, exports)."""
    if period.key == "custom":
        return {
            "period": "custom",
            "start": period.start.isoformat(),
            "until": period.last_day.isoformat(),
        }
    return {"period": period.key}


@login_required
@require_GET
def index(request):
    """The departments whose dashboards the user may open."""
    _require_dashboards(request.user)
    allowed = permissions.dashboard_department_ids(request.user)
    departments = Department.objects.filter(active=True)
    if allowed is not None:
        departments = departments.filter(pk__in=allowed)
    return render(request, "reports/index.html", {"departments": departments})


@login_required
@require_GET
def department_redirect(request, slug):
    department = get_object_or_404(Department, slug=slug)
    if not permissions.can_view_dashboard(request.user, department):
        raise Http404
    return redirect("reports:department", slug=slug, side="supplier")


def _chart_trend(trend) -> dict:
    return {
        "type": "trend",
        "labels": [row["week"].isoformat() for row in trend],
        "datasets": [
            {
                "label": _("Filed"),
                "data": [row["tally"].filed for row in trend],
                "kind": "bar",
                "axis": "count",
            },
            {
                "label": _("First response met (%)"),
                "data": [_percent(row["tally"].fr_compliance) for row in trend],
                "kind": "line",
                "axis": "percent",
            },
            {
                "label": _("Resolution met (%)"),
                "data": [_percent(row["tally"].res_compliance) for row in trend],
                "kind": "line",
                "axis": "percent",
            },
        ],
    }


def _percent(value):
    return None if value is None else round(value * 100, 1)


def _fragment_key(*parts) -> str:
    """Cache key of a fragment: its parameters, the language and the viewer's time zone."""
    return ":".join(
        ["reports", *map(str, parts), get_language() or "", timezone.get_current_timezone_name()]
    )


@login_required
@require_GET
def department_dashboard(request, slug, side):
    """A department's dashboard as supplier (how it serves) or customer (how it is served).

    The figures are the same for everyone allowed to see them, so their rendered HTML is
    cached (reports/cache.py: invalidated by every roll-up write of the department, at the
    next instant a live figure changes by itself, and when a label changes)."""
    department = get_object_or_404(Department, slug=slug)
    if side not in ("supplier", "customer") or not permissions.can_view_dashboard(
        request.user, department
    ):
        raise Http404
    form, period = _period_context(request)
    now = timezone.now()
    today = selectors.reporting_today(now)
    key = _fragment_key("dashboard", department.pk, side, period.start, period.end, today)
    body = report_cache.cached_fragment(
        key=key,
        generation_keys=[report_cache.department_key(department.pk)],
        now=now,
        compute=lambda: _dashboard_body(department, side, period, now, today),
    )
    context = {
        "department": department,
        "side": side,
        "other_side": "customer" if side == "supplier" else "supplier",
        "form": form,
        "period": period,
        "body": mark_safe(body),  # noqa: S308 (our own template's output, from the cache)
    }
    return render(request, "reports/dashboard.html", context)


def _dashboard_body(department, side, period, now, today):
    """Render the figures of a dashboard: (html, valid until, agent ids, label rows)."""
    scope = selectors.department_scope(department, side)
    # The overdue clocks are read once and shared by every figure of the page.
    overdue = selectors.overdue_rows(scope=scope, now=now)
    until = selectors.next_change(scope=scope, now=now, overdue=overdue)
    figures = selectors.sla_figures(scope=scope, period=period, now=now, overdue=overdue)
    days = selectors.backlog_days(scope=scope)
    live = selectors.live_figures(scope=scope, now=now, overdue=overdue, days=days)
    backlog = selectors.backlog_by_age(
        scope=scope, today=today, now=now, overdue=overdue, days=days
    )
    trend = selectors.weekly_trend(scope=scope, period=period, now=now, overdue=overdue)
    other_side = "customer" if side == "supplier" else "supplier"
    agents = []
    if side == "supplier":
        agents = selectors.breakdown(
            scope=scope, period=period, by="agent", now=now, overdue=overdue, labels={}
        )
    label_rows = report_cache.label_rows(row["key"] for row in agents)
    labels = selectors.labels_from_rows(label_rows)
    if agents:
        names = {**labels["agent"], 0: "—"}
        for row in agents:
            row["label"] = names.get(row["key"], str(row["key"]))
        agents.sort(key=lambda item: (-item["tally"].filed, item["label"]))

    by_service_priority = selectors.service_priority_rows(scope=scope, period=period)

    def rows(by):
        return selectors.breakdown(
            scope=scope,
            period=period,
            by=by,
            now=now,
            overdue=overdue,
            labels=labels,
            rows=by_service_priority if by in ("service", "priority") else None,
        )

    breakdowns = [
        ("service", _("By service"), rows("service")),
        ("priority", _("By priority"), rows("priority")),
        (
            other_side,
            _("By customer department") if side == "supplier" else _("By supplier department"),
            rows(other_side),
        ),
    ]
    if side == "supplier":
        breakdowns.append(("agent", _("By agent"), agents))
    if side == "supplier":
        live_base = {"supplier": department.slug}
    else:
        live_base = {"customer": department.slug, "not_supplier": department.slug}
    period_base = {**live_base, "filed_from": period.start, "filed_before": period.end}
    # Every figure of a table links to its tickets: the URLs built here, not per cell by a
    # template tag (that was a third of the page's time).
    live_link, period_link = drill_links(live_base), drill_links(period_base)
    for by, _label, table_rows in breakdowns:
        for row in table_rows:
            row_filter = _row_filter(by, row["key"], labels["slug"])
            row["links"] = {
                state or "all": period_link(**row_filter, state=state) for state in TALLY_STATES
            }
            tally = row["tally"]
            row["fr_pct"], row["res_pct"] = pct(tally.fr_compliance), pct(tally.res_compliance)
            row["rating"] = rating(tally.rating_average) if tally.rating_count else ""
    for row in trend:
        week = {"filed_from": row["week"], "filed_before": row["week_end"]}
        row["link"] = live_link(**week)
        row["fr_link"] = live_link(**week, state="fr_counted")
        row["res_link"] = live_link(**week, state="res_counted")
    for band in backlog:
        window = {"filed_from": band["filed_from"], "filed_before": band["filed_before"]}
        band["open_link"] = live_link(**window, state="open")
        band["breached_link"] = live_link(**window, state="breached_now")
    fr_hist, res_hist = figures["first_response"]["histogram"], figures["resolution"]["histogram"]
    used = [i for i in range(buckets.COUNT) if fr_hist[i] or res_hist[i]]
    # The chart spans the buckets in use (there are many, most of them empty for a department).
    shown = range(used[0], used[-1] + 1) if used else range(0)
    histogram_chart = {
        "type": "histogram",
        "labels": [buckets.bucket_label(i) for i in shown],
        "datasets": [
            {
                "label": _("First response"),
                "data": [fr_hist[i] for i in shown],
                "kind": "bar",
                "axis": "count",
            },
            {
                "label": _("Resolution"),
                "data": [res_hist[i] for i in shown],
                "kind": "bar",
                "axis": "count",
            },
        ],
    }
    backlog_chart = {
        "type": "backlog",
        "labels": [_band_label(band) for band in backlog],
        "datasets": [
            {
                "label": _("Open"),
                "data": [b["open"] for b in backlog],
                "kind": "bar",
                "axis": "count",
            },
            {
                "label": _("Breached now"),
                "data": [b["breached"] for b in backlog],
                "kind": "bar",
                "axis": "count",
            },
        ],
    }
    satisfaction_chart = {
        "type": "satisfaction",
        "labels": ["1", "2", "3", "4", "5"],
        "datasets": [
            {
                "label": _("Ratings"),
                "data": figures["satisfaction"]["distribution"],
                "kind": "bar",
                "axis": "count",
            }
        ],
    }
    for band in backlog:
        band["label"] = _band_label(band)
    context = {
        "department": department,
        "side": side,
        "other_side": other_side,
        "period": period,
        "period_query": _period_query(period),
        "figures": figures,
        "live": live,
        "backlog": backlog,
        "trend": trend,
        "breakdowns": breakdowns,
        "low_ratings": selectors.low_ratings(scope=scope, period=period),
        "live_base": live_base,
        "period_base": period_base,
        "histogram_rows": [
            (
                buckets.bucket_label(i),
                fr_hist[i],
                res_hist[i],
                period_link(state="fr_stopped", bucket=i),
                period_link(state="res_stopped", bucket=i),
            )
            for i in used
        ],
        "charts": {
            "trend": _chart_trend(trend),
            "backlog": backlog_chart,
            "histogram": histogram_chart,
            "satisfaction": satisfaction_chart,
        },
        "export_tables": exports.dashboard_tables(side),
        "export_query": urlencode(
            {"department": department.slug, "side": side, **_period_query(period)}
        ),
        "tickets_export_query": urlencode(
            {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in period_base.items()}
        ),
        "rating_rows": [
            (n, count, period_link(state=f"rating_{n}"))
            for n, count in enumerate(figures["satisfaction"]["distribution"], start=1)
        ],
    }
    html = render_to_string("reports/_dashboard_body.html", context)
    return html, until, [row["key"] for row in agents], label_rows


def _band_label(band) -> str:
    if band["high"] is None:
        return _("over %(n)d days") % {"n": band["low"]}
    if band["low"] == 0:
        return _("under 1 day")
    return _("%(low)d–%(high)d days") % {"low": band["low"], "high": band["high"]}


def _row_filter(by: str, key, slugs: dict) -> dict:
    if by == "service":
        return {"service": key}
    if by == "priority":
        return {"priority": key}
    if by == "agent":
        return {"assignee": key}
    return {by: slugs.get(key, "")}


# --- Organisation map -------------------------------------------------------------------------


def _graph_layout(departments, pairs, weakest) -> dict:
    """Departments on a circle, a directed edge customer → supplier per pair (SVG units)."""
    size, radius = 640, 240
    centre = size / 2
    positions = {}
    count = max(len(departments), 1)
    for index, department in enumerate(departments):
        angle = 2 * math.pi * index / count - math.pi / 2
        positions[department.pk] = (
            round(centre + radius * math.cos(angle), 1),
            round(centre + radius * math.sin(angle), 1),
        )
    max_volume = max((p["tally"].filed for p in pairs), default=1) or 1
    edges = []
    for pair in pairs:
        source, target = pair["customer_id"], pair["supplier_id"]
        if source not in positions or target not in positions or source == target:
            continue
        (x1, y1), (x2, y2) = positions[source], positions[target]
        # Stop short of the node circle so the arrowhead shows.
        length = math.hypot(x2 - x1, y2 - y1) or 1
        shorten = 28 / length
        customer, supplier = pair.get("customer"), pair.get("supplier")
        # Numbers formatted here, once (SVG attributes, one decimal).
        edges.append(
            {
                "x1": f"{x1 + (x2 - x1) * shorten:.1f}",
                "y1": f"{y1 + (y2 - y1) * shorten:.1f}",
                "x2": f"{x2 - (x2 - x1) * shorten:.1f}",
                "y2": f"{y2 - (y2 - y1) * shorten:.1f}",
                "width": f"{1 + 7 * pair['tally'].filed / max_volume:.1f}",
                "weak": (pair["supplier_id"], pair["customer_id"]) in weakest,
                "title": f"{customer.name if customer else '—'} → "
                f"{supplier.name if supplier else ''}: {pair['tally'].filed}, "
                f"{pct(pair['tally'].res_compliance)}",
                "pair": pair,
            }
        )
    nodes = [
        {"department": d, "x": positions[d.pk][0], "y": positions[d.pk][1]} for d in departments
    ]
    return {"size": size, "nodes": nodes, "edges": edges}


@login_required
@require_GET
def organisation_map(request):
    """Supplier × customer heatmap and dependency graph; leads see their own rows.

    The rendered map is cached like a dashboard (reports/cache.py), per set of rows shown."""
    _require_dashboards(request.user)
    form, period = _period_context(request)
    allowed = permissions.organisation_map_department_ids(request.user)
    now = timezone.now()
    rows = "all" if allowed is None else ",".join(map(str, sorted(allowed)))
    key = _fragment_key("map", rows, period.start, period.end, selectors.reporting_today(now))
    body = report_cache.cached_fragment(
        key=key,
        generation_keys=[report_cache.ORGANISATION],
        now=now,
        compute=lambda: _organisation_body(period, allowed, now),
    )
    context = {
        "form": form,
        "period": period,
        "whole_organisation": allowed is None,
        "body": mark_safe(body),  # noqa: S308 (our own template's output, from the cache)
    }
    return render(request, "reports/organisation_map.html", context)


def _heat_class(compliance: float | None) -> str:
    if compliance is None:
        return "heat-none"
    if compliance >= 0.95:
        return "heat-0"
    if compliance >= 0.85:
        return "heat-1"
    if compliance >= 0.7:
        return "heat-2"
    return "heat-3"


def _organisation_body(period, allowed, now):
    """Render the map: (html, valid until, agent ids (none), label rows)."""
    scope = selectors.Scope() if allowed is None else selectors.Scope(either_ids=tuple(allowed))
    overdue = selectors.overdue_rows(scope=scope, now=now)
    until = selectors.next_change(scope=scope, now=now, overdue=overdue, period=period)
    pairs = selectors.organisation_pairs(period=period, department_ids=allowed, now=now)
    weakest = selectors.weakest_links(pairs)
    label_rows = report_cache.label_rows()
    ids = {p["supplier_id"] for p in pairs} | {p["customer_id"] for p in pairs}
    departments = list(Department.objects.filter(pk__in=ids | (allowed or set())))
    if allowed is None:
        departments = list(
            Department.objects.filter(active=True) | Department.objects.filter(pk__in=ids)
        )
    departments = sorted(set(departments), key=lambda d: d.name)
    by_id = {d.pk: d for d in departments}
    # Links and formatted figures of each pair built once here (a heatmap cell, a table row
    # and a graph edge show the same pair; template tags and filters per cell cost most).
    link = drill_links()
    for pair in pairs:
        pair["supplier"] = supplier = by_id.get(pair["supplier_id"])
        pair["customer"] = customer = by_id.get(pair["customer_id"])
        pair["weak"] = (pair["supplier_id"], pair["customer_id"]) in weakest
        tally = pair["tally"]
        where = {
            "supplier": supplier.slug if supplier else "",
            "customer": customer.slug if customer else "",
            "filed_from": period.start,
            "filed_before": period.end,
        }
        pair["link"] = link(**where)
        pair["fr_link"] = link(**where, state="fr_counted")
        pair["res_link"] = link(**where, state="res_counted")
        pair["rated_link"] = link(**where, state="rated")
        pair["fr_pct"], pair["res_pct"] = pct(tally.fr_compliance), pct(tally.res_compliance)
        pair["rating"] = rating(tally.rating_average) if tally.rating_count else ""
        compliance = tally.res_compliance
        pair["bad"] = compliance is not None and compliance < 0.7
        pair["heat"] = _heat_class(compliance) + (" heat-weak" if pair["weak"] else "")
    suppliers = [d for d in departments if any(p["supplier_id"] == d.pk for p in pairs)]
    customers = [d for d in departments if any(p["customer_id"] == d.pk for p in pairs)]
    if any(p["customer_id"] == 0 for p in pairs):
        customers.append(None)
    grid = {(p["supplier_id"], p["customer_id"]): p for p in pairs}
    matrix = [
        {
            "supplier": supplier,
            "cells": [
                {
                    "customer": customer,
                    "pair": grid.get((supplier.pk, customer.pk if customer else 0)),
                }
                for customer in customers
            ],
        }
        for supplier in suppliers
    ]
    graph_departments = [d for d in departments if d.pk in ids]
    context = {
        "period": period,
        "period_query": _period_query(period),
        "matrix": matrix,
        "customers": customers,
        "pairs": sorted(
            pairs,
            key=lambda p: (
                p["supplier"].name if p["supplier"] else "",
                p["customer"].name if p["customer"] else "",
            ),
        ),
        "weak_pairs": [p for p in pairs if p["weak"]],
        "graph": _graph_layout(graph_departments, pairs, weakest),
        "whole_organisation": allowed is None,
    }
    return render_to_string("reports/_organisation_body.html", context), until, [], label_rows


@login_required
@require_GET
def satisfaction(request):
    """Satisfaction per supplier, per pair and per service, and the low ratings' comments."""
    _require_dashboards(request.user)
    form, period = _period_context(request)
    allowed = permissions.dashboard_department_ids(request.user)
    scope = (
        selectors.Scope() if allowed is None else selectors.Scope(either_ids=tuple(sorted(allowed)))
    )
    per_supplier = selectors.breakdown(scope=scope, period=period, by="supplier")
    per_service = selectors.breakdown(scope=scope, period=period, by="service")
    pairs = selectors.organisation_pairs(period=period, department_ids=allowed)
    names = dict(Department.objects.values_list("pk", "name"))
    slugs = dict(Department.objects.values_list("pk", "slug"))
    for pair in pairs:
        pair["supplier_name"] = names.get(pair["supplier_id"], "—")
        pair["customer_name"] = names.get(pair["customer_id"], "—")
        pair["supplier_slug"] = slugs.get(pair["supplier_id"], "")
        pair["customer_slug"] = slugs.get(pair["customer_id"], "")
    for row in per_supplier:
        row["slug"] = slugs.get(row["key"], "")
    pairs = [p for p in pairs if p["tally"].rating_count]
    pairs.sort(key=lambda p: (p["supplier_name"], p["customer_name"]))
    low = selectors.low_ratings(scope=scope, period=period, limit=50)
    context = {
        "form": form,
        "period": period,
        "period_query": _period_query(period),
        "per_supplier": [r for r in per_supplier if r["tally"].rating_count],
        "per_service": [r for r in per_service if r["tally"].rating_count],
        "pairs": pairs,
        "low_ratings": low,
        "base": {"filed_from": period.start, "filed_before": period.end},
    }
    return render(request, "reports/satisfaction.html", context)


# --- The tickets behind a figure --------------------------------------------------------------


@login_required
@require_GET
def ticket_list(request):
    _require_dashboards(request.user)
    form = TicketFilterForm(request.GET)
    if not form.is_valid():
        return render(request, "reports/tickets.html", {"form": form, "page": None}, status=400)
    tickets = selectors.dashboard_tickets(user=request.user, filters=form.cleaned_data)
    page = Paginator(tickets, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "reports/tickets.html",
        {
            "form": form,
            "page": page,
            "query": query.urlencode(),
            "filters": form.cleaned_data,
            "bucket_label": buckets.bucket_label(form.cleaned_data["bucket"])
            if form.cleaned_data.get("bucket") is not None
            else "",
        },
    )


# --- CSV exports ------------------------------------------------------------------------------


@login_required
@require_GET
def export_csv(request, table):
    """Stream a table as CSV, or start a background export when it is large."""
    _require_dashboards(request.user)
    try:
        spec = exports.ExportSpec.from_request(user=request.user, table=table, params=request.GET)
    except exports.ExportError as error:
        if error.not_found:
            raise Http404 from None
        return render(request, "reports/export_error.html", {"message": error.message}, status=400)
    if spec.is_large():
        export = exports.export_start(user=request.user, spec=spec)
        return redirect("reports:export_detail", pk=export.pk)
    response = StreamingHttpResponse(spec.stream_csv(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{spec.filename()}"'
    return response


def _get_export(request, pk) -> Export:
    export = get_object_or_404(Export, pk=pk)
    if not permissions.can_view_export(request.user, export):
        raise Http404
    return export


@login_required
@require_GET
def export_detail(request, pk):
    export = _get_export(request, pk)
    return render(
        request,
        "reports/export_detail.html",
        {"export": export, "status_url": reverse("reports:export_status", args=[export.pk])},
    )


@login_required
@require_GET
def export_status(request, pk):
    export = _get_export(request, pk)
    return JsonResponse(
        {
            "state": export.state,
            "label": export.get_state_display(),
            "done": export.done,
            "total": export.total,
            "percent": export.percent,
            "download": reverse("reports:export_download", args=[export.pk])
            if export.state == Export.State.DONE
            else None,
            "error": export.error,
        }
    )


@login_required
@require_GET
def export_download(request, pk):
    export = _get_export(request, pk)
    if export.state != Export.State.DONE or not export.file:
        raise Http404
    return FileResponse(
        export.file.open("rb"),
        as_attachment=True,
        filename=export.filename or "export.csv",
        content_type="text/csv; charset=utf-8",
    )


@login_required
@require_POST
def export_retry(request, pk):
    export = _get_export(request, pk)
    if export.state == Export.State.FAILED:
        with transaction.atomic():
            Export.objects.filter(pk=export.pk).update(state=Export.State.PENDING, error="")
            exports.enqueue(export.pk)
    return redirect("reports:export_detail", pk=export.pk)
