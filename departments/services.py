"""State changes of departments, memberships and the catalogue."""

from __future__ import annotations

from django.db import transaction

from audit.services import audit_record
from departments.models import Department, Membership, Service, User


@transaction.atomic
def membership_set(
    *, user: User, department: Department, role: str | None, actor: User | None = None
) -> Membership | None:
    """Make `user` an agent or lead of `department`, or remove it (role None).

    `actor` is who made the change (None for the system); it lands on the audit trail.
    """
    before = (
        Membership.objects.select_for_update()
        .filter(user=user, department=department)
        .values_list("role", flat=True)
        .first()
    )
    if role is None:
        Membership.objects.filter(user=user, department=department).delete()
        membership = None
    else:
        membership, _ = Membership.objects.update_or_create(
            user=user, department=department, defaults={"role": role}
        )
    if before != role:
        audit_record(
            actor=actor,
            action="membership.remove" if role is None else "membership.set",
            target=department,
            before={"user": user.username, "role": before},
            after={"user": user.username, "role": role},
        )
    # Permission answers are cached on the user object; this one is now stale.
    user.__dict__.pop("_servicedesk_memberships", None)
    user.__dict__.pop("_servicedesk_configurable", None)
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
