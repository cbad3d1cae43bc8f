"""Celery tasks of the reports app: thin, take ids, call the functions that do the work."""

from __future__ import annotations

from celery import shared_task

from reports import exports, services


@shared_task(acks_late=True, time_limit=3600, soft_time_limit=3500)
def export_run(export_id: int) -> str | None:
    """Write a background CSV export (idempotent: a finished export is left alone)."""
    export = exports.export_run(export_id=export_id)
    return export.state if export else None


@shared_task(acks_late=True)
def rollup_refresh_tickets(ticket_ids: list[int]) -> int:
    """Bring the reports' facts and roll-ups of these tickets up to date (idempotent)."""
    return services.rollup_refresh_tickets(ticket_ids=ticket_ids)
