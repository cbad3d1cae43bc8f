"""Celery tasks of the SLA engine: thin edges around slas.escalation (SPEC §4).

Ids and ISO instants in (JSON), re-fetch, return early when the state has moved on, call the
use case. `acks_late` (settings) means a task whose worker dies is redelivered; the use case's
row lock plus the database's unique constraint make running it twice harmless. Retries happen
only on transient database/broker errors.
"""

from __future__ import annotations

import logging
from datetime import datetime

from celery import shared_task
from django.db import InterfaceError, OperationalError
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerOperationalError

from servicedesk.celery import publish
from slas import escalation

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS = (OperationalError, InterfaceError, BrokerOperationalError)
RETRY = {
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": 1,
    "retry_backoff_max": 30,
    "retry_jitter": True,
    "max_retries": 8,
}
# How often an ETA task comes back for a ticket someone else holds locked before it leaves
# the ticket to the sweep.
LOCKED_RETRIES = 5


@shared_task(bind=True, acks_late=True, ignore_result=True, **RETRY)
def sla_fire_ticket(self, ticket_id: int, at: str | None = None) -> str:
    """Fire the due ladder levels of one ticket, at (or just after) the instant `at`, and in
    the same batch every other ticket due by then (up to FIRE_BATCH in all): tasks woken for
    the same moment then find their work done and return after one query.

    The use case re-reads the ticket under its row lock and returns early when nothing is
    due any more (answered, paused, fired by the sweep), so a stale or repeated task is a
    single cheap query.
    """
    outcome = escalation.sla_escalate(
        ticket_id=ticket_id, now=timezone.now(), others=escalation.FIRE_BATCH - 1
    )
    if outcome.locked:
        if self.request.retries >= LOCKED_RETRIES:
            return "locked; left to the sweep"
        # Held by another worker firing it (the retry then finds it done) or by a person's
        # change that may not touch the SLA instant (so nothing would re-schedule it).
        raise self.retry(countdown=1, max_retries=LOCKED_RETRIES + 1)
    if outcome.missing or outcome.next_event_at is None:
        return "nothing pending"
    if not outcome.due:
        expected = datetime.fromisoformat(at) if at else None
        if expected == outcome.next_event_at and not self.request.is_eager:
            # Delivered early (clock skew between hosts): come back at the instant itself.
            publish(sla_fire_ticket, args=(ticket_id, at), eta=outcome.next_event_at)
            return "early"
        return "moved on"
    return f"fired {len(outcome.fired)}"


@shared_task(acks_late=True, ignore_result=True, **RETRY)
def sla_drain_slot(until: str) -> str:
    """Fire tickets as they fall due until `until` (one scheduling slot, see sla_drain)."""
    outcome = escalation.sla_drain(until=datetime.fromisoformat(until))
    return f"fired {outcome.fired}"


@shared_task(acks_late=True, ignore_result=True, **RETRY)
def sla_sweep() -> dict:
    """Safety net (beat, every SLA_SWEEP_SECONDS): fire everything due, schedule the near."""
    outcome = escalation.sla_sweep()
    if outcome.fired or outcome.failed:
        logger.info("SLA sweep: %s", outcome)
    return {
        "fired": outcome.fired,
        "due_found": outcome.due_found,
        "failed": outcome.failed,
        "scheduled": outcome.scheduled,
    }


def publish_fire(*, ticket_id: int, at: datetime) -> bool:
    """Queue `sla_fire_ticket` to run at `at`; False (logged) if the broker is unreachable."""
    return publish(sla_fire_ticket, args=(ticket_id, at.isoformat()), eta=at)


def publish_drain(*, first: datetime, until: datetime) -> bool:
    """Queue `sla_drain_slot` to start at `first`; False (logged) if the broker is down."""
    return publish(sla_drain_slot, args=(until.isoformat(),), eta=first)
