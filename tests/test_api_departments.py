"""REST API: departments and the service catalogue."""

from __future__ import annotations

import pytest

from departments.models import Membership, Service
from tests import factories
from tests.api_helpers import _fresh_throttles, token_client  # noqa: F401

DEPARTMENT_FIELDS = {"name", "slug", "code", "parent", "calendar", "leads", "active"}
SERVICE_FIELDS = {
    "id",
    "name",
    "description",
    "department",
    "standard",
    "default_priority",
    "active",
}


def test_departments_list_is_paginated_with_every_contract_field(org):
    response = token_client(org.employee).get("/api/v1/departments/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    it = next(row for row in body["results"] if row["slug"] == "it")
    assert set(it) == DEPARTMENT_FIELDS
    assert it["parent"] == "exec"
    assert it["leads"] == ["itlead"]
    assert it["code"] == "IT"


def test_department_is_looked_up_by_slug(org):
    response = token_client(org.employee).get("/api/v1/departments/finance/")
    assert response.status_code == 200
    assert response.json()["leads"] == ["finlead"]


def test_unknown_department_answers_404(org):
    assert token_client(org.employee).get("/api/v1/departments/nope/").status_code == 404


def test_departments_filter_by_parent_slug(org):
    response = token_client(org.employee).get("/api/v1/departments/?parent=exec&ordering=code")
    assert [row["slug"] for row in response.json()["results"]] == ["finance", "hr", "it"]


def test_anonymous_clients_get_401(org):
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v1/departments/").status_code == 401


def test_departments_list_has_a_query_budget(org, django_assert_max_num_queries):
    for _ in range(60):
        department = factories.DepartmentFactory(parent=org.it)
        lead = factories.UserFactory(home_department=department)
        factories.MembershipFactory(user=lead, department=department, role=Membership.Role.LEAD)
    client = token_client(org.employee)
    with django_assert_max_num_queries(6):
        response = client.get("/api/v1/departments/?page_size=500")
    assert response.json()["count"] == 64


def test_page_size_is_capped_at_500_and_next_walks_the_rest(org):
    from departments.models import Department

    Department.objects.bulk_create(
        Department(name=f"Unit {n}", slug=f"unit-{n}", code=f"U{n}") for n in range(500)
    )
    client = token_client(org.employee)
    first = client.get("/api/v1/departments/?page_size=1000&ordering=slug").json()
    assert first["count"] == 504
    assert len(first["results"]) == 500
    assert first["previous"] is None and "page=2" in first["next"]
    second = client.get(first["next"]).json()
    assert len(second["results"]) == 4 and second["next"] is None
    assert client.get("/api/v1/departments/?page_size=2").json()["next"]


def test_services_list_has_every_contract_field(org):
    response = token_client(org.employee).get("/api/v1/services/?department=it")
    rows = response.json()["results"]
    assert [row["name"] for row in rows] == ["Laptop problem"]
    assert set(rows[0]) == SERVICE_FIELDS
    assert rows[0]["department"] == "it"
    assert rows[0]["default_priority"] == "P3"


def test_services_list_has_a_query_budget(org, django_assert_max_num_queries):
    for _ in range(80):
        factories.ServiceFactory(department=org.it)
    client = token_client(org.employee)
    with django_assert_max_num_queries(5):
        response = client.get("/api/v1/services/?page_size=500")
    assert response.json()["count"] == 82


def test_admin_adds_a_service_to_a_catalogue(org):
    response = token_client(org.admin).post(
        "/api/v1/services/",
        {"name": "VPN access", "department": "it", "standard": org.standard.pk},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["department"] == "it"
    assert Service.objects.filter(name="VPN access", department=org.it).exists()


def test_employee_may_not_add_a_service(org):
    response = token_client(org.employee).post(
        "/api/v1/services/", {"name": "Mine", "department": "it"}, format="json"
    )
    assert response.status_code == 403


def test_lead_adds_a_service_when_the_department_allows_it(org):
    org.it.leads_may_configure = True
    org.it.save()
    response = token_client(org.it_lead).post(
        "/api/v1/services/", {"name": "Printer", "department": "it"}, format="json"
    )
    assert response.status_code == 201


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"name": "x" * 500, "department": "it"}, "name"),
        ({"name": "Laptop problem", "department": "it"}, "name"),
        ({"name": "New", "department": "nowhere"}, "department"),
        ({"name": "New", "department": "it", "standard": 99999999}, "standard"),
        ({"name": "New", "department": "it", "default_priority": "P9"}, "default_priority"),
        ({"name": ["list"], "department": "it"}, "name"),
    ],
)
def test_bad_service_input_answers_400_with_field_messages(org, payload, field):
    response = token_client(org.admin).post("/api/v1/services/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()


@pytest.mark.parametrize("role", ["employee", "it_agent", "it_lead", "finance_lead", "admin"])
def test_every_role_reads_departments_and_the_catalogue(org, role):
    client = token_client(getattr(org, role))
    assert client.get("/api/v1/departments/it/").status_code == 200
    response = client.get(f"/api/v1/services/{org.service.pk}/")
    assert response.status_code == 200
    assert set(response.json()) == SERVICE_FIELDS


@pytest.mark.parametrize("role", ["employee", "it_agent", "it_lead", "finance_lead", "admin"])
def test_departments_are_read_only(org, role):
    client = token_client(getattr(org, role))
    assert client.post("/api/v1/departments/", {"name": "X"}, format="json").status_code == 405
    assert client.delete("/api/v1/departments/it/").status_code == 405
