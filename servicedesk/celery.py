"""The Celery application; the beat schedule is declared here, in one place."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "servicedesk.settings")

app = Celery("servicedesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _beat_schedule() -> dict:
    from django.conf import settings

    return {
        # Safety net behind the precise ETA tasks: catches whatever was missed.
        "sla-sweep": {"task": "slas.tasks.sla_sweep", "schedule": settings.SLA_SWEEP_SECONDS},
    }


@app.on_after_configure.connect
def setup_periodic_tasks(sender, **kwargs):
    sender.conf.beat_schedule = _beat_schedule()
