"""API views that belong to no app: the token endpoint."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.throttling import AnonRateThrottle

from servicedesk.api.parsers import StrictJSONParser
from servicedesk.api.schema import VALIDATION_ERROR


class TokenRequestSerializer(AuthTokenSerializer):
    # Bounded: a megabyte "password" would otherwise be hashed on every try.
    username = serializers.CharField(label=_("Username"), max_length=150, write_only=True)
    password = serializers.CharField(
        label=_("Password"),
        max_length=4096,
        style={"input_type": "password"},
        trim_whitespace=False,
        write_only=True,
    )


class TokenView(ObtainAuthToken):
    """`POST {"username", "password"}` → `{"token"}`; send it as `Authorization: Token …`."""

    # DRF leaves this endpoint unthrottled; it is the one anonymous clients can hammer. DRF's
    # sliding window (not the API's fixed windows): it guards passwords, not load.
    throttle_classes = [AnonRateThrottle]
    parser_classes = [StrictJSONParser, FormParser, MultiPartParser]
    serializer_class = TokenRequestSerializer

    @extend_schema(
        summary=_("Exchange a username and password for an API token"),
        request=TokenRequestSerializer,
        responses={
            200: inline_serializer("Token", fields={"token": serializers.CharField()}),
            400: VALIDATION_ERROR,
        },
        auth=[],
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)
