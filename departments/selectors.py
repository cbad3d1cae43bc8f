"""Reads of departments and the service catalogue."""

from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet

from departments.models import Department, Membership, Service, User
from servicedesk.prepared import PreparedByIds, PreparedQuery


def department_list(*, active_only: bool = True) -> QuerySet[Department]:
    queryset = Department.objects.select_related("parent", "calendar")
    return queryset.filter(active=True) if active_only else queryset


def service_list() -> QuerySet[Service]:
    """Every catalogue entry, active or not, with its supplier department (API and config)."""
    return Service.objects.select_related("department").order_by("department__name", "name")


def catalogue(*, search: str = "") -> QuerySet[Department]:
    """Active supplier departments with their active services, optionally searched."""
    services = Service.objects.filter(active=True).select_related(
        "standard__current_version__calendar"
    )
    departments = Department.objects.filter(active=True, services__active=True)
    if search:
        match = Q(name__icontains=search) | Q(description__icontains=search)
        services = services.filter(match | Q(department__name__icontains=search))
        departments = departments.filter(
            Q(services__name__icontains=search)
            | Q(services__description__icontains=search)
            | Q(name__icontains=search)
        )
    return (
        departments.distinct()
        .select_related("default_standard__current_version__calendar")
        .prefetch_related(Prefetch("services", queryset=services, to_attr="catalogue_services"))
    )


def department_leads(*, department_id: int) -> QuerySet[User]:
    return User.objects.filter(
        memberships__department_id=department_id, memberships__role=Membership.Role.LEAD
    )


# The ticket page's assignee list and service choices, compiled once per process (issue 10).
_agents_of = PreparedQuery(User.objects.order_by("username"), "memberships__department_id")
_active_services_of = PreparedQuery(
    Service.objects.filter(active=True).select_related("department").order_by("name"),
    "department_id",
)


def department_agents(*, department_id: int) -> list[User]:
    """The department's agents (members of any role), by username."""
    return _agents_of.list(department_id)


def department_active_services(*, department_id: int) -> list[Service]:
    """The department's active services by name, with the department (str(service) shows it)."""
    return _active_services_of.list(department_id)


# The queue's filter choices, for the departments an agent works: compiled once per process,
# the departments as one array parameter (issue 10).
_agents_in = PreparedByIds(
    User.objects.distinct().order_by("first_name", "last_name", "username"),
    "memberships__department_id",
    ("pk", "username", "first_name", "last_name"),
)
_services_in = PreparedByIds(
    Service.objects.order_by("department__code", "name"),
    "department_id",
    ("pk", "department__code", "name"),
)


def agents_in(*, department_ids: set[int] | None) -> list:
    """(pk, username, first_name, last_name) of the members of these departments (None: of
    any department), by name."""
    if department_ids is None:
        return list(_agents_in.queryset.filter(memberships__isnull=False))
    return _agents_in.rows(sorted(department_ids))


def services_in(*, department_ids: set[int] | None) -> list:
    """(pk, department__code, name) of the services of these departments (None: all), active
    or not, by department code and name."""
    if department_ids is None:
        return list(_services_in.queryset)
    return _services_in.rows(sorted(department_ids))
