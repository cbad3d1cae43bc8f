"""The organisation-wide audit trail: who read a confidential request, who changed whose
permissions, memberships, standards or calendars. Append-only three times over: the model
refuses updates and deletes, the admin is read-only, and (PostgreSQL and SQLite) a database
trigger refuses UPDATE and DELETE of the table (see migrations/0002_append_only_trigger.py).
"""

from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AppendOnlyError(RuntimeError):
    """An attempt to change or remove an audit record."""


class AuditRecordQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("Audit records are append-only; they are never updated.")

    def delete(self):
        raise AppendOnlyError("Audit records are append-only; they are never deleted.")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnlyError("Audit records are append-only; they are never updated.")


class AuditRecord(models.Model):
    class Action(models.TextChoices):
        TICKET_READ = "ticket.read", _("confidential request read")
        TICKET_READ_DENIED = "ticket.read_denied", _("confidential request refused")
        ATTACHMENT_READ = "attachment.read", _("confidential attachment downloaded")
        ATTACHMENT_READ_DENIED = "attachment.read_denied", _("confidential attachment refused")
        MEMBERSHIP_SET = "membership.set", _("membership set")
        MEMBERSHIP_REMOVE = "membership.remove", _("membership removed")
        CALENDAR_SAVE = "calendar.save", _("calendar saved")
        STANDARD_PUBLISH = "standard.publish", _("service standard published")
        ADMIN_ADD = "admin.add", _("added in the admin")
        ADMIN_CHANGE = "admin.change", _("changed in the admin")
        ADMIN_DELETE = "admin.delete", _("deleted in the admin")

    created_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    # No database constraint and DO_NOTHING: the trail outlives the people in it, and deleting
    # a user must never try to rewrite (SET NULL) an audit row. The username is snapshotted.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("who"),
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_username = models.CharField(_("username"), max_length=150, blank=True)
    # Not constrained to Action: other apps may record their own dotted actions.
    action = models.CharField(_("what"), max_length=60, db_index=True)
    target_type = models.CharField(_("object type"), max_length=100, blank=True)
    target_id = models.CharField(_("object id"), max_length=64, blank=True)
    target_repr = models.CharField(_("object"), max_length=300, blank=True)
    before = models.JSONField(_("before"), null=True, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(_("after"), null=True, blank=True, encoder=DjangoJSONEncoder)
    via = models.CharField(_("through"), max_length=20, blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)

    objects = AuditRecordQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit record")
        verbose_name_plural = _("audit records")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["target_type", "target_id", "created_at"], name="audit_target"),
            models.Index(fields=["actor", "created_at"], name="audit_actor"),
        ]

    def __str__(self) -> str:
        who = self.actor_username or "system"
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {who} {self.action} {self.target_repr}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Audit records are append-only; they are never updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit records are append-only; they are never deleted.")
