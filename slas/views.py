"""Configuration pages: calendars, service standards, versions and the what-if replay (issue 7).

Thin: check permissions (servicedesk/permissions.py), validate with slas/forms.py, call
slas/services.py or slas/replay.py, render. Whatever a user may not configure answers 404.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime, time, timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Count
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from departments.models import Department, Service
from servicedesk import permissions
from servicedesk.errors import DomainError
from slas import replay, services
from slas.clock import BusinessCalendar
from slas.durations import format_duration
from slas.forms import (
    CalendarForm,
    LadderFormSet,
    PreviewForm,
    RetargetForm,
    StandardForm,
    ladder_initial,
    time_zone_names,
)
from slas.models import Calendar, ReplayJob, ServiceStandard, SlaClock, StandardVersion
from slas.selectors import business_calendar, business_calendar_from, preset_holidays
from tickets.models import Ticket


def _posted(request):
    """The POST data when posted, else None (an empty POST still binds the form)."""
    return request.POST if request.method == "POST" else None


def _require_configuration(user) -> set[int] | None:
    """The departments `user` may configure (None: all), or 404."""
    if not permissions.can_open_configuration(user):
        raise Http404
    return permissions.configurable_department_ids(user)


def _standard_for_user(user, pk: int) -> ServiceStandard:
    standard = get_object_or_404(
        ServiceStandard.objects.select_related("department", "current_version__calendar"), pk=pk
    )
    if not permissions.can_configure_standard(user, standard):
        raise Http404
    return standard


@login_required
@require_GET
def home(request):
    scope = _require_configuration(request.user)
    standards = ServiceStandard.objects.select_related(
        "department", "current_version__calendar"
    ).annotate(
        service_count=Count("services", distinct=True),
        department_count=Count("default_for_departments", distinct=True),
    )
    if scope is not None:
        standards = standards.filter(department_id__in=scope)
    calendars = Calendar.objects.annotate(
        standard_count=Count("versions__standard", distinct=True)
    ).order_by("name")
    return render(
        request,
        "slas/home.html",
        {
            "standards": standards,
            "calendars": calendars,
            "can_edit_calendars": permissions.can_configure_calendars(request.user),
        },
    )


# --- Calendars --------------------------------------------------------------------------------


def _local_day_bounds(calendar: BusinessCalendar, day) -> tuple[datetime, datetime]:
    zone = zoneinfo.ZoneInfo(calendar.timezone)
    start = datetime.combine(day, time(0), zone)
    end = datetime.combine(day + timedelta(days=1), time(0), zone)
    return start, end


def calendar_preview(
    calendar: BusinessCalendar,
    *,
    now: datetime,
    duration: timedelta | None,
    country: str,
    subdivision: str,
) -> dict:
    """Next week's working time, "filed now → due at" and the holiday preset's dates."""
    zone = zoneinfo.ZoneInfo(calendar.timezone)
    today = now.astimezone(zone).date()
    week = []
    total = timedelta(0)
    for offset in range(7):
        day = today + timedelta(days=offset)
        start, end = _local_day_bounds(calendar, day)
        spans = [
            (s.astimezone(zone), e.astimezone(zone))
            for s, e in calendar.intervals_between(start, end)
        ]
        worked = calendar.elapsed(start, end)
        total += worked
        week.append(
            {
                "date": day,
                "spans": spans,
                "worked": format_duration(worked) if worked else "",
                "holiday": day in calendar.holidays,
            }
        )
    due = None
    error = ""
    if duration is not None:
        try:
            due = calendar.add(now, duration).astimezone(zone)
        except ValueError:
            error = _("This calendar has no working time, so no target is ever reached.")
    years = range(today.year, today.year + 2)
    preset = (
        sorted(preset_holidays(country=country, subdivision=subdivision, years=years).items())
        if country
        else []
    )
    return {
        "timezone": calendar.timezone,
        "now": now.astimezone(zone),
        "week": week,
        "week_total": format_duration(total) if total else "0m",
        "working_day": format_duration(calendar.typical_working_day()),
        "duration": format_duration(duration) if duration else "",
        "due": due,
        "due_error": error,
        "preset": preset,
        "preset_years": f"{years.start}–{years.stop - 1}",
    }


def _preview_for(request, calendar: BusinessCalendar, country: str, subdivision: str) -> tuple:
    form = PreviewForm(
        request.GET if "duration" in request.GET else None,
        working_day=calendar.typical_working_day(),
    )
    duration = form.cleaned_data["duration"] if form.is_bound and form.is_valid() else None
    if not form.is_bound:
        duration = timedelta(hours=4)
    preview = calendar_preview(
        calendar,
        now=timezone.now(),
        duration=duration,
        country=country,
        subdivision=subdivision,
    )
    return form, preview


@login_required
@require_GET
def calendar_detail(request, pk: int):
    _require_configuration(request.user)
    calendar = get_object_or_404(Calendar.objects.prefetch_related("intervals", "holidays"), pk=pk)
    built = business_calendar_from(calendar)
    preview_form, preview = _preview_for(
        request, built, calendar.holiday_country, calendar.holiday_subdivision
    )
    standards = (
        ServiceStandard.objects.filter(current_version__calendar=calendar)
        .select_related("department")
        .order_by("name")
    )
    return render(
        request,
        "slas/calendar_detail.html",
        {
            "calendar": calendar,
            "preview_form": preview_form,
            "preview": preview,
            "standards": standards,
            "can_edit": permissions.can_configure_calendars(request.user),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def calendar_edit(request, pk: int | None = None):
    if not permissions.can_configure_calendars(request.user):
        raise Http404
    calendar = None
    if pk is not None:
        calendar = get_object_or_404(
            Calendar.objects.prefetch_related("intervals", "holidays"), pk=pk
        )
    initial = CalendarForm.initial_for(calendar) if calendar else {"day_0": "09:00-17:00"}
    if calendar is None:
        initial.update({f"day_{d}": "09:00-17:00" for d in range(5)})
    form = CalendarForm(_posted(request), calendar=calendar, initial=initial)
    preview = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if request.POST.get("action") == "preview":
            preview = calendar_preview(
                form.business_calendar(),
                now=timezone.now(),
                duration=timedelta(hours=4),
                country=data["holiday_country"],
                subdivision=data["holiday_subdivision"],
            )
        else:
            calendar = services.calendar_save(
                calendar=calendar,
                name=data["name"],
                timezone_name=data["timezone"],
                week=data["week"],
                holidays=data["holidays"],
                always_open=data["always_open"],
                holiday_country=data["holiday_country"],
                holiday_subdivision=data["holiday_subdivision"],
                actor=request.user,
            )
            messages.success(request, _("Calendar “%(name)s” saved.") % {"name": calendar.name})
            return redirect("config:calendar_detail", pk=calendar.pk)
    status = 400 if request.method == "POST" and form.errors else 200
    return render(
        request,
        "slas/calendar_form.html",
        {"form": form, "calendar": calendar, "preview": preview, "zones": time_zone_names()},
        status=status,
    )


# --- Standards --------------------------------------------------------------------------------


def _assigned(standard: ServiceStandard | None, scope: set[int] | None):
    if standard is None:
        return [], []
    service_list = Service.objects.filter(standard=standard)
    department_list = Department.objects.filter(default_standard=standard)
    if scope is not None:
        service_list = service_list.filter(department_id__in=scope)
        department_list = department_list.filter(pk__in=scope)
    return list(service_list), list(department_list)


def _proposal(form: StandardForm, ladder: LadderFormSet, standard) -> replay.Proposal:
    data = form.cleaned_data
    return replay.Proposal(
        standard_id=standard.pk if standard else None,
        calendar_id=data["calendar"].pk,
        targets=data["targets"],
        ladder=ladder.levels,
        service_ids=[s.pk for s in data["services"]],
        department_ids=[d.pk for d in data["departments"]],
        days=data["days"],
    )


def _content_changed(standard, form: StandardForm, ladder: LadderFormSet) -> bool:
    version = standard.current_version if standard else None
    if version is None:
        return True
    data = form.cleaned_data
    current_targets = {t.priority: (t.first_response, t.resolution) for t in version.targets.all()}
    current_ladder = [
        (lv.metric, lv.threshold, sorted(lv.actions))
        for lv in version.levels.order_by("metric", "threshold")
    ]
    proposed_ladder = sorted((m, t, sorted(a)) for m, t, a in ladder.levels)
    return (
        data["calendar"].pk != version.calendar_id
        or data["targets"] != current_targets
        or proposed_ladder != current_ladder
        or data["name"] != standard.name
        or (data["department"].pk if data["department"] else None) != standard.department_id
    )


def whatif_context(user, result: dict) -> dict:
    """The result plus which changed tickets `user` may open (others show no reference)."""
    refs = [row["reference"] for row in result.get("changed", [])]
    visible = set(
        permissions.visible_tickets(Ticket.objects.filter(reference__in=refs), user).values_list(
            "reference", flat=True
        )
    )
    rows = []
    for priority, metrics in result.get("figures", {}).items():
        for metric, pair in metrics.items():
            rows.append({"priority": priority, "metric": metric, **pair})
    return {"result": result, "visible_refs": visible, "figure_rows": rows}


@login_required
@require_http_methods(["GET", "POST"])
def standard_edit(request, pk: int | None = None):
    scope = _require_configuration(request.user)
    standard = _standard_for_user(request.user, pk) if pk is not None else None
    version = standard.current_version if standard else None
    assigned_services, assigned_departments = _assigned(standard, scope)
    initial = (
        StandardForm.initial_for(
            standard, services=assigned_services, departments=assigned_departments
        )
        if standard
        else {"days": 90}
    )
    form = StandardForm(
        _posted(request), standard=standard, scope_department_ids=scope, initial=initial
    )
    ladder = LadderFormSet(_posted(request), prefix="ladder", initial=ladder_initial(version))
    context: dict = {"form": form, "ladder": ladder, "standard": standard}
    if request.method == "POST":
        valid = form.is_valid() & ladder.is_valid()
        department = form.cleaned_data.get("department") if valid else None
        if valid and not permissions.can_create_standard(request.user, department):
            form.add_error("department", _("You may not configure standards of this department."))
            valid = False
        if valid and request.POST.get("action") == "whatif":
            proposal = _proposal(form, ladder, standard)
            count = replay.whatif_tickets(proposal, now=timezone.now()).count()
            if count > settings.SLA_REPLAY_SYNC_LIMIT:
                job = services.replay_job_create(
                    proposal=proposal, actor=request.user, standard=standard
                )
                context["job"] = job
            else:
                context.update(whatif_context(request.user, replay.run_whatif(proposal)))
        elif valid:
            data = form.cleaned_data
            try:
                with transaction.atomic():
                    if _content_changed(standard, form, ladder):
                        standard = services.standard_publish(
                            standard=standard,
                            name=data["name"],
                            calendar=data["calendar"],
                            targets=data["targets"],
                            ladder=ladder.levels,
                            department=data["department"],
                            actor=request.user,
                            note=data["note"],
                        )
                        message = _("Version %(n)d of “%(name)s” published.") % {
                            "n": standard.current_version.number,
                            "name": standard.name,
                        }
                    else:
                        message = _("No change to the targets or ladder; assignments saved.")
                    services.standard_assign(
                        standard=standard,
                        services=data["services"],
                        departments=data["departments"],
                        actor=request.user,
                        scope_department_ids=scope,
                    )
            except DomainError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
            else:
                messages.success(request, message)
                return redirect("config:standard_edit", pk=standard.pk)
    if standard is not None:
        context.update(_standard_history(standard))
    status = (
        400 if request.method == "POST" and (form.errors or ladder.total_error_count()) else 200
    )
    return render(request, "slas/standard_form.html", context, status=status)


def _standard_history(standard: ServiceStandard) -> dict:
    versions = (
        StandardVersion.objects.filter(standard=standard)
        .select_related("calendar", "created_by")
        .annotate(ticket_count=Count("clocks__ticket", distinct=True))
        .order_by("-number")
    )
    old_open = services.standard_open_tickets_on_old_versions(standard=standard).count()
    return {"versions": versions, "old_open_count": old_open}


@login_required
@require_GET
def standard_version(request, pk: int, number: int):
    standard = _standard_for_user(request.user, pk)
    version = get_object_or_404(
        StandardVersion.objects.select_related("calendar", "created_by").prefetch_related(
            "targets", "levels"
        ),
        standard=standard,
        number=number,
    )
    working_day = business_calendar(version.calendar_id).typical_working_day()
    targets = [
        {
            "priority": t.get_priority_display(),
            "first_response": format_duration(t.first_response),
            "resolution": format_duration(t.resolution),
        }
        for t in version.targets.all()
    ]
    tickets = SlaClock.objects.filter(version=version).values("ticket").distinct().count()
    return render(
        request,
        "slas/standard_version.html",
        {
            "standard": standard,
            "version": version,
            "targets": targets,
            "levels": version.levels.order_by("metric", "threshold"),
            "tickets": tickets,
            "working_day": format_duration(working_day) if working_day else "",
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def standard_retarget(request, pk: int):
    standard = _standard_for_user(request.user, pk)
    form = RetargetForm(_posted(request))
    count = services.standard_open_tickets_on_old_versions(standard=standard).count()
    if request.method == "POST" and form.is_valid():
        moved = services.standard_retarget_open_tickets(standard=standard, actor=request.user)
        messages.success(
            request,
            _("%(n)d open tickets now use version %(v)d.")
            % {"n": moved, "v": standard.current_version.number},
        )
        return redirect("config:standard_edit", pk=standard.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "slas/standard_retarget.html",
        {"standard": standard, "form": form, "count": count},
        status=status,
    )


# --- What-if jobs -----------------------------------------------------------------------------


def _job_for_user(user, pk: int) -> ReplayJob:
    job = get_object_or_404(ReplayJob.objects.select_related("standard"), pk=pk)
    if not permissions.can_view_replay_job(user, job):
        raise Http404
    return job


def _job_stale(job: ReplayJob) -> bool:
    """Queued for a while and never picked up (a lost message): offer to send it again."""
    return job.status == ReplayJob.Status.QUEUED and timezone.now() - job.created_at > timedelta(
        seconds=30
    )


@login_required
@require_GET
def replay_job(request, pk: int):
    job = _job_for_user(request.user, pk)
    context = {"job": job, "stale": _job_stale(job)}
    if job.status == ReplayJob.Status.DONE and job.result:
        context.update(whatif_context(request.user, job.result))
    return render(request, "slas/replay_job.html", context)


@login_required
@require_GET
def replay_job_status(request, pk: int):
    job = _job_for_user(request.user, pk)
    return JsonResponse(
        {
            "status": job.status,
            "label": job.get_status_display(),
            "done": job.done,
            "total": job.total,
            "percent": job.percent,
            "url": reverse("config:replay_job", args=[job.pk]),
        }
    )


@login_required
@require_POST
def replay_job_retry(request, pk: int):
    job = _job_for_user(request.user, pk)
    if job.status in (ReplayJob.Status.QUEUED, ReplayJob.Status.FAILED):
        ReplayJob.objects.filter(pk=job.pk).update(status=ReplayJob.Status.QUEUED, error="")
        transaction.on_commit(lambda: services.replay_job_enqueue(job_id=job.pk), robust=True)
        messages.info(request, _("The replay was sent to the workers again."))
    return redirect("config:replay_job", pk=job.pk)
