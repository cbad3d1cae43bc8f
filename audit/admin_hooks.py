"""Audit every add, change and delete made through the Django admin.

Mix `AuditedAdminMixin` into a ModelAdmin (before the Django base class). It records the
object's fields, many-to-many relations (permissions, groups, named handlers) and the rows of
its inlines (memberships, working intervals…) before and after the change, keeping only what
changed. The admin wraps add/change/delete views in a transaction, so the record commits or
rolls back with the change itself.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import transaction
from django.forms.models import _get_foreign_key

from audit.services import audit_record

_PLAIN = (str, int, float, bool, type(None))


def _plain(value):
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta | Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return str(value)


class AuditedAdminMixin:
    # Never copy secrets or noise into the trail.
    audit_exclude: tuple[str, ...] = ("password", "last_login")

    def audit_snapshot(self, request, obj) -> dict:
        """The object's fields, its many-to-many relations and the rows of its inlines."""
        data: dict = {}
        for field in obj._meta.concrete_fields:
            if field.primary_key or field.name in self.audit_exclude:
                continue
            if field.is_relation:
                related = getattr(obj, field.name)
                data[field.name] = str(related) if related is not None else None
            else:
                data[field.name] = _plain(field.value_from_object(obj))
        if obj.pk is not None:
            for field in obj._meta.many_to_many:
                if field.name not in self.audit_exclude:
                    data[field.name] = sorted(str(item) for item in getattr(obj, field.name).all())
            for inline in self.get_inline_instances(request, obj):
                fk = _get_foreign_key(self.model, inline.model, fk_name=inline.fk_name)
                rows = inline.model._default_manager.filter(**{fk.name: obj})
                data[str(inline.model._meta.verbose_name_plural)] = sorted(str(row) for row in rows)
        return data

    def save_model(self, request, obj, form, change):
        if change and obj.pk is not None:
            # The form has already been applied to `obj`; read what is stored.
            stored = self.model._default_manager.filter(pk=obj.pk).first()
            obj._audit_before = self.audit_snapshot(request, stored) if stored else None
        else:
            obj._audit_before = None
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        obj = form.instance
        before = getattr(obj, "_audit_before", None)
        after = self.audit_snapshot(request, obj)
        if before is None:
            audit_record(
                actor=request.user,
                action="admin.add",
                target=obj,
                after=after,
                via="admin",
                request=request,
            )
            return
        changed = sorted(key for key in after if before.get(key) != after[key])
        if not changed:
            return
        audit_record(
            actor=request.user,
            action="admin.change",
            target=obj,
            before={key: before.get(key) for key in changed},
            after={key: after[key] for key in changed},
            via="admin",
            request=request,
        )

    def _audit_delete(self, request, obj, snapshot: dict, pk) -> None:
        audit_record(
            actor=request.user,
            action="admin.delete",
            target_type=obj._meta.label_lower,
            target_id=pk,
            target_repr=str(obj),
            before=snapshot,
            via="admin",
            request=request,
        )

    def delete_model(self, request, obj):
        snapshot, pk = self.audit_snapshot(request, obj), obj.pk
        with transaction.atomic():
            super().delete_model(request, obj)
            self._audit_delete(request, obj, snapshot, pk)

    def delete_queryset(self, request, queryset):
        doomed = [(obj, self.audit_snapshot(request, obj), obj.pk) for obj in queryset]
        with transaction.atomic():
            super().delete_queryset(request, queryset)
            for obj, snapshot, pk in doomed:
                self._audit_delete(request, obj, snapshot, pk)
