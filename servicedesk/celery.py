"""The Celery application; the beat schedule is declared here, in one place.

`publish()` is how application code enqueues work: it never lets a broker outage break the
change that asked for the work (SPEC §4: the database is the source of truth and the periodic
sweep catches up with whatever could not be published).
"""

from __future__ import annotations

import logging
import os

from celery import Celery

from servicedesk import broker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "servicedesk.settings")

logger = logging.getLogger(__name__)

# Before any broker connection exists: the Redis transport with the reconnect fix.
broker.register()

app = Celery("servicedesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _broker_errors() -> tuple[type[BaseException], ...]:
    from kombu.exceptions import KombuError

    errors: list[type[BaseException]] = [KombuError, OSError]
    try:
        from redis.exceptions import RedisError

        errors.append(RedisError)
    except ImportError:  # pragma: no cover - redis is a pinned dependency
        pass
    return tuple(errors)


BROKER_ERRORS = _broker_errors()


def publish(task, *, args: tuple = (), kwargs: dict | None = None, **options) -> bool:
    """Send `task` to the broker; on a broker error log it and return False, never raise.

    Called from `transaction.on_commit` callbacks, i.e. after the change is committed: an
    exception here would turn a saved change into an error page. The connection attempt is
    made once, without kombu's default retry loop (which waits seconds when Redis is down),
    so a request pays at most `CELERY_BROKER_CONNECTION_TIMEOUT` for an unreachable broker.
    """
    if app.conf.task_always_eager:
        task.apply_async(args=args, kwargs=kwargs, **options)
        return True
    try:
        with app.producer_or_acquire() as producer:
            producer.connection.ensure_connection(
                max_retries=0, timeout=app.conf.broker_connection_timeout
            )
            task.apply_async(args=args, kwargs=kwargs, producer=producer, retry=False, **options)
    except BROKER_ERRORS as exc:
        logger.warning(
            "broker unavailable, %s%r not published (the SLA sweep catches up): %s",
            task.name,
            args,
            exc,
        )
        return False
    return True


def _beat_schedule() -> dict:
    from django.conf import settings

    interval = settings.SLA_SWEEP_SECONDS
    return {
        # Safety net behind the precise ETA tasks: fires whatever is due and was missed
        # (lost ETA messages, a broker restart, a killed worker) and schedules ETA tasks
        # for instants entering the horizon. A sweep that waited longer than two intervals
        # in the queue is dropped; the next one does the same work.
        "sla-sweep": {
            "task": "slas.tasks.sla_sweep",
            "schedule": interval,
            "options": {"expires": max(2 * interval, 5)},
        },
        # Safety net for e-mail copies whose task could not be published.
        "notification-email-sweep": {
            "task": "tickets.tasks.notification_email_sweep",
            "schedule": settings.NOTIFICATION_EMAIL_SWEEP_SECONDS,
            "options": {"expires": settings.NOTIFICATION_EMAIL_SWEEP_SECONDS},
        },
    }


@app.on_after_configure.connect
def setup_periodic_tasks(sender, **kwargs):
    sender.conf.beat_schedule = _beat_schedule()
