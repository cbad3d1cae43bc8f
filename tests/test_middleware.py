"""servicedesk/middleware.py: the signed-in person's time zone, and the person read once."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from servicedesk.middleware import UserTimezoneMiddleware


def _through_middleware(rf, user):
    seen = {}

    def view(request):
        seen["user"], seen["zone"] = request.user, timezone.get_current_timezone_name()
        return None

    request = rf.get("/")
    request.user = user
    UserTimezoneMiddleware(view)(request)
    return seen


def test_views_get_the_person_itself_not_the_lazy_proxy(rf, org):
    loads = []

    def load():
        loads.append(1)
        return org.employee

    seen = _through_middleware(rf, SimpleLazyObject(load))
    assert type(seen["user"]) is type(org.employee) and seen["user"] == org.employee
    assert loads == [1]


def test_anonymous_requests_get_the_anonymous_user(rf):
    seen = _through_middleware(rf, SimpleLazyObject(AnonymousUser))
    assert isinstance(seen["user"], AnonymousUser)


def test_times_are_shown_in_the_persons_time_zone(rf, org):
    org.employee.time_zone = "Asia/Tokyo"
    assert _through_middleware(rf, org.employee)["zone"] == "Asia/Tokyo"
    org.employee.time_zone = "Not/AZone"
    assert _through_middleware(rf, org.employee)["zone"] == timezone.get_default_timezone_name()
