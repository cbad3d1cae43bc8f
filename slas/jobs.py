"""Celery task of the configuration pages: the background what-if replay (issue 7).

Registered through `CELERY_IMPORTS` (settings) so it does not share slas/tasks.py with the
escalation workers. Thin: take the job id, call the service, which claims the job row and
makes a second delivery harmless.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from slas import services


@shared_task(
    acks_late=True,
    ignore_result=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    max_retries=5,
    time_limit=settings.SLA_REPLAY_TIME_LIMIT_SECONDS,
    soft_time_limit=settings.SLA_REPLAY_TIME_LIMIT_SECONDS - 30,
)
def replay_whatif(job_id: int) -> str:
    """Run what-if replay job `job_id` unless it is done or another worker is on it."""
    job = services.replay_job_run(job_id=job_id)
    return "gone" if job is None else job.status
