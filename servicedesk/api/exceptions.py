"""Turn domain errors into 400s with field messages, never 500s."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler

from servicedesk.errors import DomainError


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        exc = exceptions.ValidationError(detail=detail)
    elif isinstance(exc, DomainError):
        exc = exceptions.ValidationError(detail={exc.field or "detail": [str(exc.message)]})
    elif isinstance(exc, IntegrityError):
        # A concurrent request won a uniqueness race the validation had checked (e.g. two
        # calendars of one name at once): the database constraint decided, say so.
        exc = Conflict(_("This conflicts with a change made at the same time; try again."))
    return drf_exception_handler(exc, context)
