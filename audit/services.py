"""Writing the audit trail. Call `audit_record` inside the transaction of the change it
describes, so a rolled-back change leaves no record (and a recorded change really happened)."""

from __future__ import annotations

from datetime import datetime

from django.db import models

from audit.models import AuditRecord

_MAX_REPR = 300


def _client_ip(request) -> str | None:
    # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy sets it.
    address = (getattr(request, "META", {}) or {}).get("REMOTE_ADDR") or None
    return address


def audit_record(
    *,
    actor,
    action: str,
    target: models.Model | None = None,
    target_type: str = "",
    target_id: str | int = "",
    target_repr: str = "",
    before=None,
    after=None,
    via: str = "app",
    request=None,
    now: datetime | None = None,
) -> AuditRecord:
    """Append one audit record: who (`actor`, None for the system), what (`action`, a dotted
    name such as "membership.set"), on which object (`target` or the explicit target_* fields)
    and how it changed (`before` → `after`, JSON-serialisable; dates, durations and decimals
    are fine). Pass `request` to keep the client's address.
    """
    if target is not None:
        target_type = target_type or target._meta.label_lower
        target_id = target_id or target.pk
        target_repr = target_repr or str(target)
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    record = AuditRecord(
        actor=actor,
        actor_username=actor.get_username() if actor is not None else "",
        action=action,
        target_type=target_type,
        target_id="" if target_id is None else str(target_id),
        target_repr=(target_repr or "")[:_MAX_REPR],
        before=before,
        after=after,
        via=via,
        ip_address=_client_ip(request) if request is not None else None,
    )
    if now is not None:
        record.created_at = now
    record.save(force_insert=True)
    return record
