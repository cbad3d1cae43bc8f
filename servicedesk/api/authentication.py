"""API authentication."""

from __future__ import annotations

import functools

from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from servicedesk.prepared import PreparedGet


@functools.cache
def _tokens(model) -> PreparedGet:
    return PreparedGet(model.objects.select_related("user__home_department"), "key")


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's token authentication, reading the user's home department in the same query
    (filing a request snapshots it as the customer department, and the API answers with it),
    with that query's SQL compiled once per process (servicedesk/prepared.py)."""

    def authenticate_credentials(self, key):
        model = self.get_model()
        try:
            token = _tokens(model).get(key)
        except model.DoesNotExist:
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return (token.user, token)
