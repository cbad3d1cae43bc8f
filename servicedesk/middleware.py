import zoneinfo

from django.utils import timezone
from django.utils.functional import SimpleLazyObject, empty


def _resolved(user):
    """The person behind AuthenticationMiddleware's lazy `request.user`: every attribute read
    through the proxy costs a function call, and a page reads it a hundred times or more."""
    if isinstance(user, SimpleLazyObject):
        if user._wrapped is empty:
            user._setup()
        return user._wrapped
    return user


class UserTimezoneMiddleware:
    """Show every instant in the signed-in person's own time zone. Runs after authentication,
    which it needs: the person is read here, once, for every request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None:
            user = request.user = _resolved(user)
        tz_name = getattr(user, "time_zone", "") or ""
        if tz_name:
            try:
                timezone.activate(zoneinfo.ZoneInfo(tz_name))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.deactivate()
        else:
            timezone.deactivate()
        return self.get_response(request)
