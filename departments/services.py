"""State changes of departments, memberships and the catalogue."""

from __future__ import annotations

from django.db import transaction

from departments.models import Department, Membership, Service, User


@transaction.atomic
def membership_set(*, user: User, department: Department, role: str | None) -> Membership | None:
    """Make `user` an agent or lead of `department`, or remove it (role None)."""
    if role is None:
        Membership.objects.filter(user=user, department=department).delete()
        return None
    membership, _ = Membership.objects.update_or_create(
        user=user, department=department, defaults={"role": role}
    )
    return membership


@transaction.atomic
def department_create(
    *,
    name: str,
    slug: str,
    code: str,
    parent: Department | None = None,
    calendar=None,
    default_standard=None,
) -> Department:
    department = Department(
        name=name,
        slug=slug,
        code=code.upper(),
        parent=parent,
        calendar=calendar,
        default_standard=default_standard,
    )
    department.full_clean()
    department.save()
    return department


@transaction.atomic
def service_create(
    *,
    department: Department,
    name: str,
    description: str = "",
    default_priority: str = "P3",
    standard=None,
    confidential: bool = False,
) -> Service:
    service = Service(
        department=department,
        name=name,
        description=description,
        default_priority=default_priority,
        standard=standard,
        confidential=confidential,
    )
    service.full_clean()
    service.save()
    return service
