"""Turn domain errors into 400s with field messages, never 500s."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler

from servicedesk.errors import DomainError


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        exc = exceptions.ValidationError(detail=detail)
    elif isinstance(exc, DomainError):
        exc = exceptions.ValidationError(detail={exc.field or "detail": [str(exc.message)]})
    return drf_exception_handler(exc, context)
