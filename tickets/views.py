"""Browser pages. Thin: validate input, call a selector or a service, render.

Every refusal comes from a service as a DomainError and is shown next to the field it names;
what a user may not see is a 404 (the selectors raise it), what a user may see but not change
is a 403 before any service is called.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from departments import selectors as department_selectors
from departments.models import Department, User
from servicedesk import permissions
from servicedesk.errors import DomainError
from slas.models import StandardTarget
from tickets import selectors, services
from tickets.forms import (
    AgentOption,
    AssignForm,
    BulkForm,
    CommentForm,
    LinkRequestForm,
    MyRequestsFilterForm,
    PreviewForm,
    PriorityForm,
    QueueFilterForm,
    RatingForm,
    ServiceChangeForm,
    TicketCreateForm,
    TransitionForm,
    WatcherForm,
)
from tickets.markdown import render_markdown
from tickets.models import ALLOWED_TRANSITIONS, Status
from tickets.pagination import CappedPaginator
from tickets.table_rows import display_name, row_values, table_rows
from tickets.templatetags.servicedesk import business_duration

PAGE_SIZE = 25
BULK_LIMIT = 100


def _form_error(form, error: DomainError) -> None:
    form.add_error(error.field if error.field in form.fields else None, error.message)


# --- Home, catalogue ------------------------------------------------------------------------


@login_required
def home(request):
    """Agents and leads start at their queue; everybody else at their requests + catalogue."""
    if permissions.is_agent(request.user):
        return redirect("queue")
    lens = selectors.SlaLens(now=timezone.now())
    recent = table_rows(
        row_values(
            selectors.ticket_requested_by(
                user=request.user, filters={"sort": "updated"}, lens=lens
            )[:5]
        ),
        lens=lens,
    )
    departments = _catalogue_with_standards(department_selectors.catalogue(), lens=lens)
    return render(
        request,
        "tickets/home.html",
        {"recent": recent, "departments": departments, "now": lens.now},
    )


def _catalogue_with_standards(departments, *, lens: selectors.SlaLens) -> list[Department]:
    """Attach to every catalogue service its published standard and expected-by times."""
    departments = list(departments)
    versions = {}
    for department in departments:
        default = department.default_standard
        for service in department.catalogue_services:
            standard = service.standard or default
            version = standard.current_version if standard else None
            service.standard_version = version
            if version:
                versions[version.pk] = version
    targets = {
        (t.version_id, t.priority): t
        for t in StandardTarget.objects.filter(version_id__in=versions)
    }
    for department in departments:
        for service in department.catalogue_services:
            version = service.standard_version
            target = targets.get((version.pk, service.default_priority)) if version else None
            service.promise = None
            if target is None:
                continue
            calendar = lens.calendar(version.calendar_id)
            service.promise = {
                "standard": (service.standard or department.default_standard).name,
                "first_response": target.first_response,
                "resolution": target.resolution,
                "calendar": calendar,
                "first_response_by": calendar.add(lens.now, target.first_response),
                "resolution_by": calendar.add(lens.now, target.resolution),
            }
    return departments


@login_required
def catalogue(request):
    search = request.GET.get("q", "").strip()[:100]
    lens = selectors.SlaLens(now=timezone.now())
    departments = _catalogue_with_standards(
        department_selectors.catalogue(search=search), lens=lens
    )
    return render(
        request,
        "tickets/catalogue.html",
        {"departments": departments, "q": search, "now": lens.now},
    )


# --- Lists ----------------------------------------------------------------------------------


def _page(request, queryset, lens, *, count_in_order: bool = True):
    page = CappedPaginator(queryset, PAGE_SIZE, count_in_order=count_in_order).get_page(
        request.GET.get("page")
    )
    page.object_list = table_rows(row_values(page.object_list), lens=lens)
    return page


def _query_without_page(request) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


@login_required
def my_requests(request):
    lens = selectors.SlaLens(now=timezone.now())
    form = MyRequestsFilterForm(request.GET or None)
    filters = form.filters() if form.is_bound else {}
    tickets = selectors.ticket_requested_by(user=request.user, filters=filters, lens=lens)
    return render(
        request,
        "tickets/my_requests.html",
        {
            "page": _page(request, tickets, lens),
            "filter_form": form,
            "query": _query_without_page(request),
            "now": lens.now,
        },
    )


def _queue_filter_form(request, *, departments: list[tuple[int, str, bool]]) -> QueueFilterForm:
    """`departments`: every department's (id, name, active), by name."""
    # Choices as values, not model instances (issue 10: the form was a tenth of the queue).
    user = request.user
    department_ids = None if permissions.is_admin(user) else permissions.agent_department_ids(user)
    return QueueFilterForm(
        request.GET or None,
        agents=[
            AgentOption(pk=pk, username=username, name=display_name(username, first, last))
            for pk, username, first, last in department_selectors.agents_in(
                department_ids=department_ids
            )
        ],
        services=[
            (str(pk), f"{code} · {name}")
            for pk, code, name in department_selectors.services_in(department_ids=department_ids)
        ],
        departments=[(str(pk), name) for pk, name, active in departments if active],
    )


@login_required
def queue(request):
    if not permissions.is_agent(request.user):
        raise Http404
    lens = selectors.SlaLens(now=timezone.now())
    # One read for the customer filter's choices and the heading's names.
    departments = list(Department.objects.values_list("pk", "name", "active"))
    form = _queue_filter_form(request, departments=departments)
    filters = form.filters() if form.is_bound else {}
    indexed = selectors.queue_order_is_indexed(filters)
    tickets = None
    if indexed:
        # The page and the count from the first cap + 1 ids, by SQL compiled once per shape.
        tickets = selectors.ticket_queue_first_ids(
            user=request.user, filters=filters, limit=CappedPaginator.cap + 1
        )
    if tickets is None:
        tickets = selectors.ticket_queue(user=request.user, filters=filters, lens=lens)
    page = _page(request, tickets, lens, count_in_order=indexed)
    return render(
        request,
        "tickets/queue.html",
        {
            "page": page,
            "filter_form": form,
            "bulk_form": BulkForm(),
            "query": _query_without_page(request),
            "now": lens.now,
            "statuses": Status.choices,
            "departments": _queue_department_names(request.user, departments),
        },
    )


def _queue_department_names(user, departments: list[tuple[int, str, bool]]) -> str:
    """The departments whose queue `user` works, active or not, by name."""
    if permissions.is_admin(user):
        return _("all departments")
    mine = permissions.agent_department_ids(user)
    return ", ".join(name for pk, name, _active in departments if pk in mine)


@login_required
@require_POST
def queue_bulk(request):
    """Assign or move several tickets, one service call per ticket; refusals are reported
    per ticket and do not stop the others."""
    if not permissions.is_agent(request.user):
        raise Http404
    back = reverse("queue") + ("?" + request.POST["back"] if request.POST.get("back") else "")
    quick = request.POST.get("assign_me")
    if quick:
        data = {"tickets": [quick], "action": BulkForm.ASSIGN_ME}
        references = [quick]
    else:
        references = request.POST.getlist("tickets")[:BULK_LIMIT]
        data = request.POST
    form = BulkForm(data, references=references)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(back)
    action = form.cleaned_data["action"]
    assignee = None
    if action == BulkForm.ASSIGN:
        assignee = User.objects.filter(username=form.cleaned_data["assignee"]).first()
        if assignee is None:
            messages.error(
                request,
                _("There is nobody called %(name)s.") % {"name": form.cleaned_data["assignee"]},
            )
            return redirect(back)
    done, refused = [], []
    for reference in form.cleaned_data["tickets"]:
        try:
            ticket = selectors.ticket_get_for_user(user=request.user, reference=reference)
        except Http404:
            refused.append((reference, _("not found")))
            continue
        try:
            if action == BulkForm.ASSIGN_ME:
                services.ticket_assign(ticket=ticket, actor=request.user, assignee=request.user)
            elif action == BulkForm.ASSIGN:
                services.ticket_assign(ticket=ticket, actor=request.user, assignee=assignee)
            elif action == BulkForm.UNASSIGN:
                services.ticket_assign(ticket=ticket, actor=request.user, assignee=None)
            else:
                services.ticket_transition(
                    ticket=ticket, actor=request.user, to_status=form.cleaned_data["to_status"]
                )
        except DomainError as error:
            refused.append((reference, error.message))
        else:
            done.append(reference)
    if done:
        messages.success(
            request,
            _("Updated %(count)d ticket(s): %(refs)s.")
            % {"count": len(done), "refs": ", ".join(done)},
        )
    for reference, reason in refused:
        messages.error(
            request, _("%(ref)s was not changed: %(reason)s") % {"ref": reference, "reason": reason}
        )
    return redirect(back)


# --- Filing a request -----------------------------------------------------------------------


@login_required
def ticket_new(request):
    preview_html = None
    if request.method == "POST" and "preview" in request.POST:
        # Without JavaScript the Preview button posts here: show the rendered text and keep
        # every typed value; nothing is filed.
        form = TicketCreateForm(initial=request.POST.dict())
        preview_html = render_markdown(request.POST.get("description", ""))
    elif request.method == "POST":
        form = TicketCreateForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                ticket = services.ticket_create(
                    requester=request.user,
                    service=form.cleaned_data["service"],
                    title=form.cleaned_data["title"],
                    description=form.cleaned_data["description"],
                    priority=form.cleaned_data["priority"] or None,
                    attachments=form.cleaned_data["attachments"],
                )
            except DomainError as error:
                _form_error(form, error)
            else:
                messages.success(
                    request,
                    _("Request %(ref)s filed. %(dept)s will answer here.")
                    % {"ref": ticket.reference, "dept": ticket.supplier_department.name},
                )
                return redirect("ticket_detail", reference=ticket.reference)
    else:
        initial = {}
        service_id = request.GET.get("service", "")
        if service_id.isdigit():
            initial["service"] = int(service_id)
        form = TicketCreateForm(initial=initial)
    status = 400 if form.is_bound and form.errors else 200
    promises = _service_promises(lens=selectors.SlaLens(now=timezone.now()))
    # Every option carries its promise so the "What happens next" panel follows the choice.
    form.fields["service"].widget.promises = promises
    chosen = str(form["service"].value() or "")
    return render(
        request,
        "tickets/ticket_new.html",
        {
            "form": form,
            "preview_html": preview_html,
            "files_dropped": bool(request.FILES),
            "promise": promises.get(chosen),
        },
        status=status,
    )


def _service_promises(*, lens: selectors.SlaLens) -> dict[str, dict]:
    """Service id → what the requester can expect if filing now, in words."""
    promises = {}
    for department in _catalogue_with_standards(department_selectors.catalogue(), lens=lens):
        for service in department.catalogue_services:
            promise = service.promise
            if promise is None:
                text = {"first": _("No published service standard."), "resolution": ""}
            else:
                calendar = promise["calendar"]
                text = {
                    "first": _("First response within %(span)s, by %(when)s.")
                    % {
                        "span": business_duration(promise["first_response"], calendar),
                        "when": date_format(
                            timezone.localtime(promise["first_response_by"]), "D j M, H:i"
                        ),
                    },
                    "resolution": _("Resolution within %(span)s, by %(when)s.")
                    % {
                        "span": business_duration(promise["resolution"], calendar),
                        "when": date_format(
                            timezone.localtime(promise["resolution_by"]), "D j M, H:i"
                        ),
                    },
                }
            promises[str(service.pk)] = {
                "service": f"{department.name} · {service.name}",
                "department": department.name,
                **text,
            }
    return promises


@login_required
@require_POST
def markdown_preview(request):
    """Render Markdown through the same sanitiser as saved text (used by the Preview button)."""
    form = PreviewForm(request.POST)
    if not form.is_valid():
        return HttpResponse(_("The text is too long to preview."), status=400)
    html = render_markdown(form.cleaned_data["text"])
    if not html.strip():
        html = format_html('<p class="muted">{}</p>', _("Nothing to preview yet."))
    return HttpResponse(html, content_type="text/html; charset=utf-8")


# --- The ticket page ------------------------------------------------------------------------

TRANSITION_LABELS = {
    Status.OPEN: _("Start work"),
    Status.WAITING_ON_CUSTOMER: _("Wait for requester"),
    Status.RESOLVED: _("Resolve"),
    Status.CLOSED: _("Close"),
    Status.CANCELLED: _("Cancel request"),
}


def _transition_label(ticket, to_status: str) -> str:
    if ticket.status == Status.RESOLVED and to_status == Status.OPEN:
        return _("Reopen")
    if ticket.status == Status.WAITING_ON_CUSTOMER and to_status == Status.OPEN:
        return _("Resume work")
    if ticket.status == Status.RESOLVED and to_status == Status.CLOSED:
        return _("Accept and close")
    return str(TRANSITION_LABELS.get(to_status, Status(to_status).label))


def _ticket_context(request, ticket, *, status_forms=None, **forms):
    user = request.user
    now = timezone.now()
    lens = selectors.SlaLens(now=now)
    lens.prime([ticket])
    can_work = permissions.can_work_ticket(user, ticket)
    transitions = [
        {
            "value": status,
            "label": _transition_label(ticket, status),
            "danger": status == Status.CANCELLED,
        }
        for status in (
            Status.OPEN,
            Status.WAITING_ON_CUSTOMER,
            Status.RESOLVED,
            Status.CLOSED,
            Status.CANCELLED,
        )
        if status in ALLOWED_TRANSITIONS[ticket.status]
        and permissions.can_transition_now(user, ticket, status, now=now)
    ]
    is_requester = ticket.requester_id == user.pk
    watchers = selectors.ticket_watcher_list(ticket=ticket)
    ratings = selectors.ticket_rating_list(ticket=ticket)  # one query for both uses below
    already_rated = ticket.resolution_count and any(
        r.resolution_number == ticket.resolution_count for r in ratings
    )
    rating = next((r for r in ratings if r.resolution_number == ticket.resolution_count), None)
    can_rate = (
        permissions.can_rate(user, ticket)
        and ticket.status in (Status.RESOLVED, Status.CLOSED)
        and not already_rated
    )
    comments, ticket_attachments = selectors.ticket_conversation(user=user, ticket=ticket)
    context = {
        "ticket": ticket,
        "sla": lens.summary(ticket),
        "sla_rows": lens.rows(ticket),
        "comments": comments,
        "ticket_attachments": ticket_attachments,
        "events": selectors.ticket_events_for_user(user=user, ticket=ticket),
        "chain": selectors.ticket_chain(user=user, ticket=ticket),
        "can_work": can_work,
        "is_requester": is_requester,
        "transitions": [t for t in transitions if not t["danger"]],
        "cancel": next((t for t in transitions if t["danger"]), None),
        "reopen_until": permissions.reopen_deadline(ticket),
        "now": now,
        "watchers": watchers,
        "is_watching": any(w.pk == user.pk for w in watchers),
        "comment_form": forms.get("comment_form") or CommentForm(can_work=can_work),
        # The rating form only where the page shows it.
        "rating_form": (forms.get("rating_form") or RatingForm(auto_id="rate_%s"))
        if can_rate
        else None,
        "can_rate": can_rate,
        "rating": rating,
        "preview_html": forms.get("preview_html"),
    }
    if can_work:
        context.update(
            {
                "agents": department_selectors.department_agents(
                    department_id=ticket.supplier_department_id
                ),
                "assign_form": forms.get("assign_form") or AssignForm(auto_id="assign_%s"),
                "priority_form": forms.get("priority_form")
                or PriorityForm(initial={"priority": ticket.priority}, auto_id="prio_%s"),
                "service_form": forms.get("service_form")
                or ServiceChangeForm(
                    initial={"service": ticket.service_id},
                    department_id=ticket.supplier_department_id,
                    auto_id="svc_%s",
                    shown=department_selectors.department_active_services(
                        department_id=ticket.supplier_department_id
                    ),
                ),
                "watcher_form": forms.get("watcher_form") or WatcherForm(auto_id="watch_%s"),
                "open_panel": forms.get("open_panel", ""),
            }
        )
    return context


def _get_ticket(request, reference):
    ticket = selectors.ticket_get_for_user(user=request.user, reference=reference)
    return ticket


def _render_ticket(request, ticket, status=200, **forms):
    return render(
        request,
        "tickets/ticket_detail.html",
        _ticket_context(request, ticket, **forms),
        status=status,
    )


def _require_work(request, ticket) -> None:
    if not permissions.can_work_ticket(request.user, ticket):
        raise PermissionDenied


def _back(ticket, anchor: str = ""):
    return redirect(reverse("ticket_detail", args=[ticket.reference]) + anchor)


@login_required
def ticket_detail(request, reference):
    ticket = selectors.ticket_get_for_user(user=request.user, reference=reference)
    return _render_ticket(request, ticket)


@login_required
@require_POST
def ticket_comment(request, reference):
    ticket = _get_ticket(request, reference)
    can_work = permissions.can_work_ticket(request.user, ticket)
    if "preview" in request.POST:
        form = CommentForm(initial=request.POST.dict(), can_work=can_work)
        return _render_ticket(
            request,
            ticket,
            comment_form=form,
            preview_html=render_markdown(request.POST.get("body", "")),
        )
    form = CommentForm(request.POST, request.FILES, can_work=can_work)
    if form.is_valid():
        try:
            services.ticket_comment(
                ticket=ticket,
                author=request.user,
                body=form.cleaned_data["body"],
                internal=form.internal,
                attachments=form.cleaned_data["attachments"],
            )
        except DomainError as error:
            _form_error(form, error)
        else:
            messages.success(
                request, _("Internal note added.") if form.internal else _("Reply sent.")
            )
            return _back(ticket, "#conversation")
    return _render_ticket(request, ticket, status=400, comment_form=form)


@login_required
@require_POST
def ticket_transition(request, reference):
    ticket = _get_ticket(request, reference)
    form = TransitionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a valid status."))
        return _back(ticket)
    to_status = form.cleaned_data["to_status"]
    try:
        services.ticket_transition(ticket=ticket, actor=request.user, to_status=to_status)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            _("%(ref)s is now %(status)s.")
            % {"ref": ticket.reference, "status": Status(to_status).label},
        )
    return _back(ticket)


@login_required
@require_POST
def ticket_assign(request, reference):
    ticket = _get_ticket(request, reference)
    _require_work(request, ticket)
    form = AssignForm(request.POST, auto_id="assign_%s")
    if form.is_valid():
        assignee = form.cleaned_data["assignee"]
        try:
            services.ticket_assign(ticket=ticket, actor=request.user, assignee=assignee)
        except DomainError as error:
            _form_error(form, error)
        else:
            messages.success(
                request,
                _("Assigned to %(name)s.") % {"name": assignee}
                if assignee
                else _("Nobody is assigned now."),
            )
            return _back(ticket)
    return _render_ticket(request, ticket, status=400, assign_form=form)


@login_required
@require_POST
def ticket_priority(request, reference):
    ticket = _get_ticket(request, reference)
    _require_work(request, ticket)
    form = PriorityForm(request.POST, auto_id="prio_%s")
    if form.is_valid():
        try:
            services.ticket_change_priority(
                ticket=ticket, actor=request.user, priority=form.cleaned_data["priority"]
            )
        except DomainError as error:
            _form_error(form, error)
        else:
            messages.success(request, _("Priority changed; the service standard follows it."))
            return _back(ticket)
    return _render_ticket(request, ticket, status=400, priority_form=form)


@login_required
@require_POST
def ticket_service(request, reference):
    ticket = _get_ticket(request, reference)
    _require_work(request, ticket)
    form = ServiceChangeForm(
        request.POST, department_id=ticket.supplier_department_id, auto_id="svc_%s"
    )
    if form.is_valid():
        try:
            services.ticket_change_service(
                ticket=ticket, actor=request.user, service=form.cleaned_data["service"]
            )
        except DomainError as error:
            _form_error(form, error)
        else:
            messages.success(request, _("Service changed."))
            return _back(ticket)
    return _render_ticket(request, ticket, status=400, service_form=form)


@login_required
@require_POST
def ticket_watchers(request, reference):
    ticket = _get_ticket(request, reference)
    form = WatcherForm(request.POST, auto_id="watch_%s")
    if form.is_valid():
        watching = form.cleaned_data["action"] == WatcherForm.ADD
        person = form.cleaned_data["username"]
        if not permissions.can_manage_watcher(request.user, ticket, person, watching=watching):
            raise PermissionDenied
        try:
            services.ticket_set_watcher(
                ticket=ticket, actor=request.user, user=person, watching=watching
            )
        except DomainError as error:
            form.add_error("username", error.message)
        else:
            if person.pk == request.user.pk and not watching:
                messages.success(request, _("You no longer watch this request."))
                if not permissions.can_view_ticket(request.user, ticket):
                    return redirect("my_requests")
            else:
                messages.success(
                    request,
                    (
                        _("%(name)s now watches this request.")
                        if watching
                        else _("%(name)s no longer watches this request.")
                    )
                    % {"name": person},
                )
            return _back(ticket, "#watchers")
    if not permissions.can_work_ticket(request.user, ticket):
        raise PermissionDenied
    return _render_ticket(request, ticket, status=400, watcher_form=form, open_panel="watchers")


@login_required
@require_http_methods(["GET", "POST"])
def ticket_link(request, reference):
    """Ask another department: a page of its own, so the ticket page does not build a form
    over every other department's services on each view (issue 10: a fifth of its cost)."""
    ticket = _get_ticket(request, reference)
    _require_work(request, ticket)
    if request.method == "GET":
        form = LinkRequestForm(
            exclude_department_id=ticket.supplier_department_id, auto_id="link_%s"
        )
        return _render_link(request, ticket, form)
    form = LinkRequestForm(
        request.POST, exclude_department_id=ticket.supplier_department_id, auto_id="link_%s"
    )
    if form.is_valid():
        try:
            child = services.ticket_link_request(
                ticket=ticket,
                actor=request.user,
                service=form.cleaned_data["service"],
                title=form.cleaned_data["title"],
                description=form.cleaned_data["description"],
                priority=form.cleaned_data["priority"] or None,
            )
        except DomainError as error:
            _form_error(form, error)
        else:
            messages.success(
                request,
                _("Linked request %(ref)s opened with %(dept)s.")
                % {"ref": child.reference, "dept": child.supplier_department.name},
            )
            return _back(ticket, "#linked")
    return _render_link(request, ticket, form, status=400)


def _render_link(request, ticket, form, status=200):
    return render(
        request, "tickets/ticket_link.html", {"ticket": ticket, "form": form}, status=status
    )


@login_required
@require_POST
def ticket_rate(request, reference):
    ticket = _get_ticket(request, reference)
    form = RatingForm(request.POST, auto_id="rate_%s")
    if form.is_valid():
        try:
            services.ticket_rate(
                ticket=ticket,
                actor=request.user,
                rating=form.cleaned_data["rating"],
                comment=form.cleaned_data["comment"],
            )
        except DomainError as error:
            _form_error(form, error)
        else:
            messages.success(request, _("Thank you for your rating."))
            return _back(ticket)
    return _render_ticket(request, ticket, status=400, rating_form=form)
