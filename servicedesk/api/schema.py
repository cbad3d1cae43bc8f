"""Shared pieces of the OpenAPI description: the error bodies every endpoint may answer."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

DetailSerializer = inline_serializer(name="ErrorDetail", fields={"detail": serializers.CharField()})

# 400 bodies name the offending fields: {"title": ["…"], "targets": [{"priority": ["…"]}]}.
VALIDATION_ERROR = OpenApiResponse(
    response=OpenApiTypes.OBJECT,
    description="Invalid input: an object whose keys are the offending fields.",
)
NOT_FOUND = OpenApiResponse(
    response=DetailSerializer,
    description="Not found, or not visible to you (ids do not leak).",
)
FORBIDDEN = OpenApiResponse(response=DetailSerializer, description="Not allowed.")
PRECONDITION_FAILED = OpenApiResponse(
    response=DetailSerializer,
    description="If-Match does not match the current ETag: someone changed it meanwhile.",
)

ERROR_RESPONSES = {400: VALIDATION_ERROR, 403: FORBIDDEN, 404: NOT_FOUND}
