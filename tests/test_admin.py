"""The Django admin lets an admin set up an organisation: every model's pages load."""

import pytest
from django.contrib import admin
from django.urls import reverse

from tickets import services


@pytest.fixture
def admin_client(client, org):
    services.ticket_create(requester=org.employee, service=org.service, title="Printer")
    client.force_login(org.admin)
    return client


def registered_models():
    return sorted((model._meta.app_label, model._meta.model_name) for model in admin.site._registry)


@pytest.mark.parametrize(("app_label", "model_name"), registered_models())
def test_admin_changelist_loads(admin_client, app_label, model_name):
    url = reverse(f"admin:{app_label}_{model_name}_changelist")
    assert admin_client.get(url).status_code == 200


@pytest.mark.parametrize(("app_label", "model_name"), registered_models())
def test_admin_search_does_not_fail(admin_client, app_label, model_name):
    url = reverse(f"admin:{app_label}_{model_name}_changelist")
    assert admin_client.get(url, {"q": "it"}).status_code == 200


def test_admin_can_create_a_department_with_membership(admin_client, org):
    response = admin_client.post(
        reverse("admin:departments_department_add"),
        {
            "name": "Security",
            "slug": "security",
            "code": "SEC",
            "active": "on",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "0",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
            "memberships-0-user": org.outsider.pk,
            "memberships-0-role": "lead",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    from departments.models import Department

    assert Department.objects.get(slug="security").memberships.get().role == "lead"


def test_admin_refuses_invalid_department_code_with_message(admin_client):
    response = admin_client.post(
        reverse("admin:departments_department_add"),
        {
            "name": "Bad",
            "slug": "bad",
            "code": "bad code",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 200
    assert b"errorlist" in response.content


def test_tickets_cannot_be_edited_in_admin(admin_client, org):
    from tickets.models import Ticket

    ticket = Ticket.objects.first()
    response = admin_client.post(
        reverse("admin:tickets_ticket_change", args=[ticket.pk]), {"title": "changed"}
    )
    assert response.status_code == 403
    ticket.refresh_from_db()
    assert ticket.title == "Printer"


def test_a_published_versions_targets_and_ladder_are_read_only_in_admin(admin_client, org):
    # Tickets are measured against exactly the content of their version, and the SLA engine
    # caches it per version (slas.selectors.version_content): a change is a new version.
    version = org.standard.current_version
    url = reverse("admin:slas_standardversion_change", args=[version.pk])
    page = admin_client.get(url)
    assert page.status_code == 200
    formsets = {f.formset.prefix: f for f in page.context["inline_admin_formsets"]}
    assert set(formsets) == {"targets", "levels"}
    for inline_formset in formsets.values():
        assert not inline_formset.has_change_permission
        assert not inline_formset.has_add_permission
        assert not inline_formset.has_delete_permission
    add_page = admin_client.get(reverse("admin:slas_standardversion_add"))
    for inline_formset in add_page.context["inline_admin_formsets"]:
        assert inline_formset.has_add_permission
