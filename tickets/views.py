"""Browser pages. Thin: validate input, call a selector or a service, render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from departments import selectors as department_selectors
from departments.models import User
from servicedesk import permissions
from servicedesk.errors import DomainError
from slas import selectors as sla_selectors
from tickets import selectors, services
from tickets.forms import CommentForm, RatingForm, TicketCreateForm, TransitionForm
from tickets.models import ACTIVE_STATUSES, ALLOWED_TRANSITIONS, Status

PAGE_SIZE = 25


@login_required
def home(request):
    if permissions.is_agent(request.user):
        return redirect("queue")
    return redirect("my_requests")


@login_required
def catalogue(request):
    search = request.GET.get("q", "").strip()[:100]
    departments = department_selectors.catalogue(search=search)
    return render(request, "tickets/catalogue.html", {"departments": departments, "q": search})


@login_required
def my_requests(request):
    tickets = selectors.ticket_list(
        user=request.user, filters={"status": request.GET.get("status", "")}
    ).filter(requester=request.user)
    page = Paginator(tickets, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "tickets/my_requests.html", {"page": page, "statuses": Status.choices})


@login_required
def queue(request):
    if not permissions.is_agent(request.user):
        raise Http404
    tickets = selectors.ticket_list(
        user=request.user,
        filters={
            "status": request.GET.get("status", ""),
            "priority": request.GET.get("priority", ""),
        },
    )
    if not permissions.is_admin(request.user):
        tickets = tickets.filter(
            supplier_department_id__in=permissions.agent_department_ids(request.user)
        )
    if not request.GET.get("status"):
        tickets = tickets.filter(status__in=ACTIVE_STATUSES)
    tickets = tickets.order_by("next_sla_event_at", "created_at")
    page = Paginator(tickets, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "tickets/queue.html", {"page": page, "statuses": Status.choices})


@login_required
def ticket_new(request):
    initial = {}
    if request.GET.get("service"):
        initial["service"] = request.GET["service"]
    form = TicketCreateForm(request.POST or None, request.FILES or None, initial=initial)
    if request.method == "POST" and form.is_valid():
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
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            messages.success(request, _("Request %(ref)s filed.") % {"ref": ticket.reference})
            return redirect("ticket_detail", reference=ticket.reference)
    return render(request, "tickets/ticket_new.html", {"form": form})


def _ticket_context(request, ticket, **forms):
    user = request.user
    now = timezone.now()
    can_work = permissions.can_work_ticket(user, ticket)
    transitions = [
        (status, Status(status).label)
        for status in sorted(ALLOWED_TRANSITIONS[ticket.status])
        if permissions.can_transition(user, ticket, status)
    ]
    context = {
        "ticket": ticket,
        "comments": selectors.ticket_comments_for_user(user=user, ticket=ticket),
        "events": selectors.ticket_events_for_user(user=user, ticket=ticket),
        "chain": selectors.ticket_chain(user=user, ticket=ticket),
        "can_work": can_work,
        "transitions": transitions,
        "now": now,
        "sla_rows": sla_selectors.ticket_clock_rows(ticket=ticket, now=now),
        "comment_form": forms.get("comment_form") or CommentForm(),
        "rating_form": forms.get("rating_form") or RatingForm(),
        "can_rate": permissions.can_rate(user, ticket)
        and ticket.status in (Status.RESOLVED, Status.CLOSED)
        and not ticket.ratings.filter(resolution_number=ticket.resolution_count).exists(),
        "agents": department_selectors.department_agents(
            department_id=ticket.supplier_department_id
        )
        if can_work
        else [],
    }
    return context


@login_required
def ticket_detail(request, reference):
    ticket = selectors.ticket_get_for_user(user=request.user, reference=reference)
    return render(request, "tickets/ticket_detail.html", _ticket_context(request, ticket))


@login_required
@require_POST
def ticket_comment(request, reference):
    ticket = selectors.ticket_get_for_user(user=request.user, reference=reference)
    form = CommentForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            services.ticket_comment(
                ticket=ticket,
                author=request.user,
                body=form.cleaned_data["body"],
                internal=form.cleaned_data["internal"],
                attachments=form.cleaned_data["attachments"],
            )
        except DomainError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            return redirect("ticket_detail", reference=ticket.reference)
    context = _ticket_context(request, ticket, comment_form=form)
    return render(request, "tickets/ticket_detail.html", context, status=400)


@login_required
@require_POST
def ticket_transition(request, reference):
    ticket = selectors.ticket_get_for_user(user=request.user, reference=reference)
    form = TransitionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a valid status."))
    else:
        try:
            services.ticket_transition(
                ticket=ticket, actor=request.user, to_status=form.cleaned_data["to_status"]
            )
        except DomainError as error:
            messages.error(request, error.message)
    return redirect("ticket_detail", reference=ticket.reference)


@login_required
@require_POST
def ticket_assign(request, reference):
    ticket = selectors.ticket_get_for_user(user=request.user, reference=reference)
    if not permissions.can_work_ticket(request.user, ticket):
        raise Http404
    username = request.POST.get("assignee", "")
    assignee = get_object_or_404(User, username=username) if username else None
    try:
        services.ticket_assign(ticket=ticket, actor=request.user, assignee=assignee)
    except DomainError as error:
        messages.error(request, error.message)
    return redirect("ticket_detail", reference=ticket.reference)


@login_required
@require_POST
def ticket_rate(request, reference):
    ticket = selectors.ticket_get_for_user(user=request.user, reference=reference)
    form = RatingForm(request.POST)
    if form.is_valid():
        try:
            services.ticket_rate(
                ticket=ticket,
                actor=request.user,
                rating=form.cleaned_data["rating"],
                comment=form.cleaned_data["comment"],
            )
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, _("Thank you for your rating."))
            return redirect("ticket_detail", reference=ticket.reference)
    context = _ticket_context(request, ticket, rating_form=form)
    return render(request, "tickets/ticket_detail.html", context, status=400)
