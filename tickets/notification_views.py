"""Notification pages: the list, mark one read, mark all read. Thin: selector/service, render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from tickets import notifications

PAGE_SIZE = 25


@login_required
def notification_list(request):
    unread_only = request.GET.get("unread") == "1"
    items = notifications.notification_list(user=request.user, unread_only=unread_only)
    page = Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "notifications/list.html",
        {
            "page": page,
            "unread_only": unread_only,
            "unread": notifications.unread_count(user=request.user),
        },
    )


def _back(request):
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("notifications")


@login_required
@require_POST
def notification_read(request, notification_id: int):
    notifications.notification_mark_read(
        user=request.user, notification_id=notification_id, now=timezone.now()
    )
    return _back(request)


@login_required
@require_POST
def notification_read_all(request):
    changed = notifications.notification_mark_all_read(user=request.user, now=timezone.now())
    if changed:
        messages.success(request, _("All notifications are marked as read."))
    return _back(request)
