"""The audit trail (issue 9 §4): who, when, what, before → after; it cannot be edited through
the app, the ORM, the admin or even raw SQL on the application's connection."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from audit.models import AppendOnlyError, AuditRecord
from audit.services import audit_record


@pytest.fixture
def record(org):
    return audit_record(
        actor=org.admin,
        action="membership.set",
        target=org.it,
        before={"role": None},
        after={"role": "lead"},
    )


def test_audit_record_keeps_who_when_what_and_the_change(org, record):
    stored = AuditRecord.objects.get(pk=record.pk)
    assert stored.actor == org.admin
    assert stored.actor_username == "admin"
    assert stored.action == "membership.set"
    assert (stored.target_type, stored.target_id, stored.target_repr) == (
        "departments.department",
        str(org.it.pk),
        "IT",
    )
    assert (stored.before, stored.after) == ({"role": None}, {"role": "lead"})
    assert stored.created_at is not None


def test_audit_record_without_actor_is_the_system(db):
    stored = audit_record(actor=None, action="calendar.save", target_repr="Office")
    assert stored.actor is None and stored.actor_username == ""


def test_model_refuses_to_update_a_record(record):
    record.action = "something.else"
    with pytest.raises(AppendOnlyError):
        record.save()


def test_model_refuses_to_delete_a_record(record):
    with pytest.raises(AppendOnlyError):
        record.delete()


def test_queryset_refuses_update_and_delete(record):
    with pytest.raises(AppendOnlyError):
        AuditRecord.objects.filter(pk=record.pk).update(action="x")
    with pytest.raises(AppendOnlyError):
        AuditRecord.objects.filter(pk=record.pk).delete()


def test_database_trigger_refuses_raw_update(record):
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE audit_auditrecord SET action = 'x' WHERE id = %s", [record.pk])
    assert AuditRecord.objects.get(pk=record.pk).action == "membership.set"


def test_database_trigger_refuses_raw_delete(record):
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM audit_auditrecord WHERE id = %s", [record.pk])
    assert AuditRecord.objects.filter(pk=record.pk).exists()


def test_deleting_a_user_keeps_their_audit_records(org):
    from tests.factories import UserFactory

    person = UserFactory(username="leaver")
    stored = audit_record(actor=person, action="ticket.read", target_repr="HR-1")
    person.delete()
    kept = AuditRecord.objects.get(pk=stored.pk)
    assert kept.actor_username == "leaver"


def test_admin_lists_and_shows_records_read_only(client, org, record):
    client.force_login(org.admin)
    changelist = reverse("admin:audit_auditrecord_changelist")
    assert client.get(changelist).status_code == 200
    page = client.get(reverse("admin:audit_auditrecord_change", args=[record.pk]))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert client.get(reverse("admin:audit_auditrecord_add")).status_code == 403


def test_admin_cannot_change_or_delete_a_record(client, org, record):
    client.force_login(org.admin)
    change = reverse("admin:audit_auditrecord_change", args=[record.pk])
    response = client.post(change, {"action": "forged", "actor_username": "someone"})
    assert response.status_code == 403
    delete = reverse("admin:audit_auditrecord_delete", args=[record.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    bulk = client.post(
        reverse("admin:audit_auditrecord_changelist"),
        {"action": "delete_selected", "_selected_action": [record.pk], "post": "yes"},
    )
    assert bulk.status_code in (200, 302)
    stored = AuditRecord.objects.get(pk=record.pk)
    assert stored.action == "membership.set"
