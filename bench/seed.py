"""Seed the benchmark organisation: N departments, M people, and a bulk ticket history.

The shape follows the comparison point in issue 10: 12 departments, 500 people, 100,000 tickets
over 180 days, ~30 % open, 2 comments each (and a 1,000,000-ticket variant). Seeding is
incremental: an existing database that already holds the organisation keeps it, and only the
tickets still missing up to `--tickets` are added, so the 1M variant is 100k + 900k.
"""

from __future__ import annotations

import time

from django.core.management import call_command
from django.db import connection, transaction

from departments import services as department_services
from departments.models import Department, Membership, Service, User
from slas.models import Calendar, ServiceStandard

EXTRA_DEPARTMENTS = [
    # name, slug, code, parent slug, services
    ("Security", "security", "SEC", "it", ["Badge request", "Security incident"]),
    ("Logistics", "logistics", "LOG", "facilities", ["Courier pick-up", "Storage request"]),
    ("Training", "training", "TRN", "hr", ["Course booking", "Training material"]),
    ("Research", "research", "RES", "exec", ["Lab booking", "Data request"]),
    ("Customer Care", "care", "CAR", "exec", ["Escalated complaint", "Refund check"]),
    ("Quality", "quality", "QUA", "exec", ["Audit request", "Process change"]),
]


def log(message: str) -> None:
    print(message, flush=True)


def seed_organisation(*, departments: int, people: int) -> None:
    """Demo organisation from seed_demo, topped up to `departments` and `people`."""
    call_command("seed_demo", "--accounts-only", verbosity=0)
    office = Calendar.objects.get(name="Office hours (Berlin)")
    standard = ServiceStandard.objects.get(name="Standard support")
    extra = iter(EXTRA_DEPARTMENTS)
    with transaction.atomic():
        while Department.objects.count() < departments:
            name, slug, code, parent_slug, services = next(extra)
            department = department_services.department_create(
                name=name,
                slug=slug,
                code=code,
                parent=Department.objects.get(slug=parent_slug),
                calendar=office,
                default_standard=standard,
            )
            for service_name in services:
                department_services.service_create(
                    department=department, name=service_name, description=service_name
                )
    all_departments = list(Department.objects.order_by("pk"))
    password = User.objects.get(username="employee").password
    have = User.objects.count()
    if have < people:
        users = [
            User(
                username=f"bench{n:05d}",
                first_name="Bench",
                last_name=f"Person {n}",
                email=f"bench{n:05d}@example.org",
                home_department=all_departments[n % len(all_departments)],
                password=password,
            )
            for n in range(have, people)
        ]
        User.objects.bulk_create(users, batch_size=1000)
    # Every department gets a lead and a handful of agents, like a real service desk.
    staffed = set(Membership.objects.values_list("user_id", "department_id"))
    memberships = []
    for department in all_departments:
        count = Membership.objects.filter(department=department).count()
        if count >= 8:
            continue
        home = list(
            User.objects.filter(home_department=department, username__startswith="bench")
            .order_by("pk")
            .values_list("pk", flat=True)[: 8 - count]
        )
        has_lead = Membership.objects.filter(
            department=department, role=Membership.Role.LEAD
        ).exists()
        for index, user_id in enumerate(home):
            if (user_id, department.pk) in staffed:
                continue
            role = Membership.Role.LEAD if index == 0 and not has_lead else Membership.Role.MEMBER
            memberships.append(Membership(user_id=user_id, department=department, role=role))
    Membership.objects.bulk_create(memberships)
    log(
        f"organisation: {Department.objects.count()} departments, {User.objects.count()} people, "
        f"{Service.objects.count()} services, {Membership.objects.count()} memberships"
    )


def seed(
    *,
    tickets: int,
    departments: int = 12,
    people: int = 500,
    days: int = 180,
    amplify_from: int = 100_000,
) -> dict:
    """Seed up to `tickets`. When the target is a multiple of an existing history of at least
    `amplify_from` tickets, the history is copied in SQL (bench.amplify) instead of generated
    row by row; otherwise `bulk_seed_tickets` generates the missing tickets."""
    from bench.amplify import amplify
    from reports.services import rollup_rebuild
    from tickets.bulk import bulk_seed_tickets
    from tickets.models import Ticket

    started = time.perf_counter()
    call_command("migrate", "--noinput", verbosity=0)
    seed_organisation(departments=departments, people=people)
    have = Ticket.objects.count()
    timings: dict[str, float] = {}
    if have >= amplify_from and tickets > have and tickets % have == 0:
        t0 = time.perf_counter()
        amplify(factor=tickets // have, log=log)
        timings["amplify"] = time.perf_counter() - t0
    elif have < tickets:
        t0 = time.perf_counter()
        made = bulk_seed_tickets(
            count=tickets - have,
            days=days,
            seed=42 + have,
            progress=lambda n: log(f"  {n} tickets inserted"),
        )
        timings["tickets"] = time.perf_counter() - t0
        log(f"inserted {made} tickets in {timings['tickets']:.1f} s")
        t0 = time.perf_counter()
        rollup_rebuild()
        timings["rollups"] = time.perf_counter() - t0
        log(f"rebuilt report roll-ups in {timings['rollups']:.1f} s")
    else:
        log(f"{have} tickets present; nothing to add")
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE") if connection.vendor == "postgresql" else None
    timings["analyze"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - started
    return timings
