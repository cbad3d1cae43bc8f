"""Cached dashboards with a cache each process keeps to itself (the embedded mode: no
REDIS_URL, LocMemCache in each of the two gunicorn workers and in the Celery worker).

A write served by one process bumps the generation tokens in *its* cache only; another
process's copy of the dashboard must not outlive it.
"""

from __future__ import annotations

import time_machine

from tests.test_reports_figures import NOW, history  # noqa: F401 (fixture)
from tests.test_reports_views import WEEK, links, signed_in
from tickets import services as ticket_services


def _local_cache(name: str) -> dict:
    # One LOCATION per process: LocMemCache stores with different locations share nothing.
    return {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": name}
    }


@time_machine.travel(NOW, tick=False)
def test_a_write_in_another_process_is_seen_with_per_process_caches(
    client,
    history,  # noqa: F811
    settings,
):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    signed_in(client, history.it_lead)
    url = f"/dashboards/it/supplier/?{WEEK}"
    open_link = "/dashboards/tickets/?supplier=it&state=open"
    settings.CACHES = _local_cache("web-worker-1")
    assert links(client.get(url).content.decode())[open_link] == "1"
    # The next request, a new ticket, is served by the other web worker.
    settings.CACHES = _local_cache("web-worker-2")
    ticket_services.ticket_create(
        requester=history.employee, service=history.service, title="Elsewhere", now=NOW
    )
    settings.CACHES = _local_cache("web-worker-1")
    assert links(client.get(url).content.decode())[open_link] == "2"
