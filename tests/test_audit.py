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


# --- What gets recorded ---------------------------------------------------------------------


def _records(action: str):
    return list(AuditRecord.objects.filter(action=action).order_by("id"))


def test_membership_set_records_who_changed_which_role(org):
    from departments.services import membership_set

    membership_set(user=org.outsider, department=org.it, role="member", actor=org.admin)
    membership_set(user=org.outsider, department=org.it, role="lead", actor=org.admin)
    first, second = _records("membership.set")
    assert first.actor == org.admin and first.target_repr == "IT"
    assert (first.before, first.after) == (
        {"user": "outsider", "role": None},
        {"user": "outsider", "role": "member"},
    )
    assert (second.before["role"], second.after["role"]) == ("member", "lead")


def test_membership_removal_is_recorded(org):
    from departments.services import membership_set

    membership_set(user=org.it_agent, department=org.it, role=None, actor=org.it_lead)
    (record,) = _records("membership.remove")
    assert record.before == {"user": "itagent", "role": "member"}
    assert record.after == {"user": "itagent", "role": None}


def test_membership_set_without_change_records_nothing(org):
    from departments.services import membership_set

    membership_set(user=org.it_agent, department=org.it, role="member", actor=org.admin)
    assert _records("membership.set") == []


def test_rolled_back_change_leaves_no_record(org):
    from departments.services import membership_set

    with pytest.raises(RuntimeError), transaction.atomic():
        membership_set(user=org.outsider, department=org.it, role="lead", actor=org.admin)
        raise RuntimeError("abort")
    assert _records("membership.set") == []


def test_calendar_save_records_before_and_after(org):
    from datetime import time

    from slas import services as sla_services

    calendar = org.standard.current_version.calendar
    sla_services.calendar_save(
        calendar=calendar,
        name=calendar.name,
        timezone_name="Europe/London",
        week={0: [(time(8), time(12))]},
        actor=org.admin,
    )
    record = _records("calendar.save")[-1]
    assert record.actor == org.admin
    assert record.before["timezone"] == "Europe/Berlin"
    assert record.after["timezone"] == "Europe/London"
    assert record.after["week"] == ["0 08:00-12:00"]


def test_standard_publish_records_previous_and_new_version(org):
    from datetime import timedelta

    from slas import services as sla_services

    hour = timedelta(hours=1)
    sla_services.standard_publish(
        standard=org.standard,
        name=org.standard.name,
        calendar=org.standard.current_version.calendar,
        targets={"P1": (hour, 2 * hour)},
        ladder=[],
        actor=org.it_lead,
    )
    record = _records("standard.publish")[-1]
    assert record.actor == org.it_lead
    assert record.before["version"] == 1
    assert record.after["version"] == 2
    assert record.after["targets"] == {"P1": ["1:00:00", "2:00:00"]}


# --- Confidential reads ---------------------------------------------------------------------


@pytest.fixture
def confidential_ticket(org):
    from departments.models import Service
    from tickets import services

    payroll = Service.objects.create(department=org.hr, name="Payroll question", confidential=True)
    payroll.handlers.add(org.hr_agent)
    return services.ticket_create(requester=org.employee, service=payroll, title="My salary")


def test_reading_a_confidential_request_is_recorded(client, org, confidential_ticket):
    client.force_login(org.hr_agent)
    url = reverse("ticket_detail", args=[confidential_ticket.reference])
    assert client.get(url).status_code == 200
    (record,) = _records("ticket.read")
    assert record.actor == org.hr_agent
    assert record.target_type == "tickets.ticket"
    assert record.target_id == str(confidential_ticket.pk)
    assert record.target_repr == confidential_ticket.reference


def test_refused_read_of_a_confidential_request_is_recorded(client, org, confidential_ticket):
    client.force_login(org.outsider)
    url = reverse("ticket_detail", args=[confidential_ticket.reference])
    assert client.get(url).status_code == 404
    (record,) = _records("ticket.read_denied")
    assert record.actor == org.outsider
    assert _records("ticket.read") == []


def test_reading_an_ordinary_request_is_not_recorded(client, org):
    from tickets import services

    ticket = services.ticket_create(requester=org.employee, service=org.service, title="Mouse")
    client.force_login(org.it_agent)
    assert client.get(reverse("ticket_detail", args=[ticket.reference])).status_code == 200
    assert not AuditRecord.objects.filter(action__startswith="ticket.").exists()


# --- Django admin changes -------------------------------------------------------------------


def _admin_form_data(response) -> dict:
    """The POST body the admin change form would send back unchanged."""
    data = {}
    form = response.context["adminform"].form
    for name, field in form.fields.items():
        value = form[name].value()
        if value is None:
            continue
        widget = getattr(field.widget, "widget", field.widget)
        if hasattr(widget, "decompress"):
            for index, part in enumerate(widget.decompress(value)):
                data[f"{name}_{index}"] = widget.widgets[index].format_value(part)
        elif isinstance(value, list | tuple):
            data[name] = [str(v) for v in value]
        elif isinstance(value, bool):
            if value:
                data[name] = "on"
        else:
            data[name] = field.widget.format_value(value) if hasattr(field, "widget") else value
    for formset in response.context.get("inline_admin_formsets", []):
        formset = formset.formset
        for name, value in formset.management_form.initial.items():
            data[f"{formset.prefix}-{name}"] = value
        for inline_form in formset.forms:
            for name in inline_form.fields:
                value = inline_form[name].value()
                if value is None or value is False:
                    continue
                data[inline_form.add_prefix(name)] = "on" if value is True else value
    return {key: value for key, value in data.items() if value is not None}


def test_admin_change_of_membership_role_is_recorded(client, org):
    from departments.models import Membership

    membership = Membership.objects.get(user=org.it_agent, department=org.it)
    client.force_login(org.admin)
    url = reverse("admin:departments_membership_change", args=[membership.pk])
    data = _admin_form_data(client.get(url))
    data["role"] = "lead"
    assert client.post(url, data).status_code == 302
    (record,) = _records("admin.change")
    assert record.via == "admin" and record.actor == org.admin
    assert record.target_type == "departments.membership"
    assert record.before == {"role": "member"} and record.after == {"role": "lead"}
    assert record.ip_address == "127.0.0.1"


def test_admin_change_of_user_permissions_is_recorded(client, org):
    from django.contrib.auth.models import Permission

    permission = Permission.objects.get(codename="view_ticket")
    client.force_login(org.admin)
    url = reverse("admin:departments_user_change", args=[org.outsider.pk])
    data = _admin_form_data(client.get(url))
    data["is_staff"] = "on"
    data["user_permissions"] = [str(permission.pk)]
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    (record,) = _records("admin.change")
    assert record.before["is_staff"] is False and record.after["is_staff"] is True
    assert record.before["user_permissions"] == []
    assert record.after["user_permissions"] == [str(permission)]
    assert "password" not in record.after


def test_admin_change_of_service_handlers_is_recorded(client, org):
    client.force_login(org.admin)
    url = reverse("admin:departments_service_change", args=[org.hr_service.pk])
    data = _admin_form_data(client.get(url))
    data["confidential"] = "on"
    data["handlers"] = [str(org.hr_agent.pk)]
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    (record,) = _records("admin.change")
    assert record.before == {"confidential": False, "handlers": []}
    assert record.after == {"confidential": True, "handlers": [str(org.hr_agent)]}


def test_admin_membership_inline_on_department_is_recorded(client, org):
    client.force_login(org.admin)
    url = reverse("admin:departments_department_change", args=[org.hr.pk])
    data = _admin_form_data(client.get(url))
    prefix = "memberships"
    total = int(data[f"{prefix}-TOTAL_FORMS"])
    data[f"{prefix}-{total - 1}-user"] = str(org.outsider.pk)
    data[f"{prefix}-{total - 1}-role"] = "lead"
    response = client.post(url, data)
    assert response.status_code == 302
    (record,) = _records("admin.change")
    key = "memberships"
    assert not any("outsider" in row for row in record.before[key])
    assert any("outsider" in row for row in record.after[key])


def test_admin_delete_of_membership_is_recorded(client, org):
    from departments.models import Membership

    membership = Membership.objects.get(user=org.it_agent, department=org.it)
    client.force_login(org.admin)
    url = reverse("admin:departments_membership_delete", args=[membership.pk])
    assert client.post(url, {"post": "yes"}).status_code == 302
    (record,) = _records("admin.delete")
    assert record.target_id == str(membership.pk)
    assert record.before["role"] == "member"


def test_admin_change_of_group_permissions_is_recorded(client, org):
    from django.contrib.auth.models import Group, Permission

    group = Group.objects.create(name="Auditors")
    permission = Permission.objects.get(codename="view_ticket")
    client.force_login(org.admin)
    url = reverse("admin:auth_group_change", args=[group.pk])
    data = _admin_form_data(client.get(url))
    data["permissions"] = [str(permission.pk)]
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    (record,) = _records("admin.change")
    assert record.target_type == "auth.group" and record.actor == org.admin
    assert record.before == {"permissions": []}
    assert record.after == {"permissions": [str(permission)]}


def test_admin_change_of_a_departments_configuration_right_is_recorded(client, org):
    client.force_login(org.admin)
    url = reverse("admin:departments_department_change", args=[org.hr.pk])
    data = _admin_form_data(client.get(url))
    before = org.hr.leads_may_configure
    if before:
        data.pop("leads_may_configure", None)
    else:
        data["leads_may_configure"] = "on"
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    (record,) = _records("admin.change")
    assert record.before == {"leads_may_configure": before}
    assert record.after == {"leads_may_configure": not before}


# Admin models holding people, memberships, permissions, confidentiality or standards: every
# add, change and delete of them lands on the audit trail (issue 9 §4). A new admin for one of
# these models that forgets the mixin fails here.
AUDITED_ADMIN_MODELS = {
    "auth.group",
    "departments.user",
    "departments.department",
    "departments.membership",
    "departments.service",
    "slas.calendar",
    "slas.servicestandard",
    "slas.standardversion",
}


def test_admins_of_permissions_memberships_and_standards_are_audited():
    from django.contrib import admin

    from audit.admin_hooks import AuditedAdminMixin

    registry = {
        model._meta.label_lower: model_admin for model, model_admin in admin.site._registry.items()
    }
    assert AUDITED_ADMIN_MODELS <= set(registry)
    unaudited = sorted(
        label
        for label in AUDITED_ADMIN_MODELS
        if not isinstance(registry[label], AuditedAdminMixin)
    )
    assert not unaudited
