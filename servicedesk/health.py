"""/healthz: is the database answering, is the broker answering? No login needed."""

from __future__ import annotations

import logging

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


def check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means "not ok"; the reason goes to the log
        logger.warning("healthz: database check failed: %s", exc)
        return "unavailable"
    return "ok"


def check_broker() -> str:
    from servicedesk.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=2)
    except Exception as exc:
        logger.warning("healthz: broker check failed: %s", exc)
        return "unavailable"
    return "ok"


@never_cache
@require_GET
def healthz(request):
    result = {"database": check_database(), "broker": check_broker()}
    status = 200 if all(value == "ok" for value in result.values()) else 503
    return JsonResponse(result, status=status)
