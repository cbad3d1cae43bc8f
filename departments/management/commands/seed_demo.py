"""Build a believable demo organisation (idempotent).

    python manage.py seed_demo                 # departments, people, standards, ~300 tickets
    python manage.py seed_demo --tickets 1000000   # plus N bulk-inserted historical tickets
    python manage.py seed_demo --accounts-only # just the organisation and demo accounts

Small histories go through the real services (every Event and clock as in live use); the
`--tickets` bulk mode writes rows in batches for scale tests.
"""

from __future__ import annotations

import functools
import random
from datetime import time, timedelta

from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from departments import services as department_services
from departments.models import Department, Membership, Service, User
from slas import services as sla_services
from slas.models import Calendar, ServiceStandard
from tickets import services as ticket_services
from tickets.bulk import bulk_seed_tickets
from tickets.models import Status, Ticket

DEPARTMENTS = [
    # name, slug, code, parent slug, services
    (
        "Executive Office",
        "exec",
        "EXE",
        None,
        [
            ("Board paper review", "Review of papers before they go to the board."),
            ("Executive briefing", "A briefing for the executive team."),
            ("Policy sign-off", "Formal sign-off of a new internal policy."),
        ],
    ),
    (
        "IT",
        "it",
        "IT",
        "exec",
        [
            ("Laptop or hardware problem", "Something is broken with your computer or phone."),
            ("Access request", "Access to a system, shared drive or mailbox."),
            ("New starter equipment", "Laptop, accounts and phone for a new colleague."),
            ("Software installation", "Install or update approved software."),
        ],
    ),
    (
        "Human Resources",
        "hr",
        "HR",
        "exec",
        [
            ("Employment letter", "A letter confirming employment or salary."),
            ("Leave question", "Questions about holidays, sick leave or parental leave."),
            ("Grievance (confidential)", "Raise a grievance in confidence."),
        ],
    ),
    (
        "Payroll",
        "payroll",
        "PAY",
        "hr",
        [
            ("Payslip query", "Something looks wrong on your payslip."),
            ("Bank details change", "Change the account your salary is paid into."),
            ("Expense reimbursement", "Claim back money you spent for work."),
        ],
    ),
    (
        "Facilities",
        "facilities",
        "FAC",
        "exec",
        [
            ("Building repair", "Something in the building is broken."),
            ("Desk move", "Move desks, chairs or storage."),
            ("Meeting room setup", "Catering, furniture or AV for a meeting."),
        ],
    ),
    (
        "Finance",
        "finance",
        "FIN",
        "exec",
        [
            ("Invoice payment", "A supplier invoice that needs paying."),
            ("Budget question", "Questions on your cost centre or budget."),
            ("Purchase order approval", "Approve a purchase order."),
        ],
    ),
    (
        "Legal",
        "legal",
        "LEG",
        "exec",
        [
            ("Contract review", "Review of a contract before signature."),
            ("NDA", "A non-disclosure agreement with a partner."),
            ("Data protection question", "Questions about personal data and privacy."),
        ],
    ),
    (
        "Procurement",
        "procurement",
        "PRO",
        "finance",
        [
            ("New supplier", "Onboard a new supplier."),
            ("Quote request", "Get quotes for goods or services."),
            ("Framework call-off", "Order under an existing framework agreement."),
        ],
    ),
    (
        "Communications",
        "comms",
        "COM",
        "exec",
        [
            ("Intranet update", "Publish or change an intranet page."),
            ("Press enquiry", "Answer a journalist's question."),
            ("Design request", "Posters, slides and other designs."),
        ],
    ),
]

FIRST_NAMES = [
    "Anna",
    "Ben",
    "Chloé",
    "Dmitri",
    "Elif",
    "Farah",
    "Gustav",
    "Hana",
    "Ivan",
    "Jana",
    "Kofi",
    "Lena",
    "Marta",
    "Nils",
    "Olu",
    "Priya",
    "Quentin",
    "Rosa",
    "Sven",
    "Tariq",
    "Uma",
    "Viktor",
    "Wen",
    "Xenia",
    "Yusuf",
    "Zoe",
]
LAST_NAMES = [
    "Adler",
    "Berg",
    "Costa",
    "Dahl",
    "Eze",
    "Fischer",
    "García",
    "Hoffmann",
    "Ito",
    "Jansen",
    "Kowalski",
    "Lind",
    "Moreau",
    "Nowak",
    "Okafor",
    "Petrov",
    "Quint",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Ulrich",
    "Vogel",
    "Weber",
    "Yilmaz",
    "Zimmer",
]
TITLES = [
    "Cannot sign in",
    "Please help with {s}",
    "Urgent: {s}",
    "Question about {s}",
    "{s} for the new project",
    "Follow-up on {s}",
    "{s} needed by Friday",
]
PASSWORD = "demo"


@functools.cache
def _demo_password_hash() -> str:
    return make_password(PASSWORD)


def _person(username: str, first: str, last: str, home: Department, **extra) -> User:
    user, created = User.objects.get_or_create(
        username=username,
        defaults={
            "first_name": first,
            "last_name": last,
            "email": f"{username}@example.org",
            "home_department": home,
            **extra,
        },
    )
    if created:
        # One hash for every demo account: PBKDF2 per account would dominate seeding time.
        user.password = _demo_password_hash()
        user.save(update_fields=["password"])
    return user


class Command(BaseCommand):
    help = "Create the demo organisation, demo accounts and a few hundred tickets (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--tickets", type=int, default=0, help="Additionally bulk-insert N historical tickets."
        )
        parser.add_argument(
            "--days", type=int, default=180, help="History length for --tickets (days)."
        )
        parser.add_argument(
            "--history",
            type=int,
            default=300,
            help="Tickets filed through the services (only on an empty desk).",
        )
        parser.add_argument("--accounts-only", action="store_true")
        parser.add_argument("--seed", type=int, default=42)

    def handle(self, *args, **options):
        rng = random.Random(options["seed"])
        departments = self._organisation()
        people = self._people(departments, rng)
        if options["accounts_only"]:
            self.stdout.write(self.style.SUCCESS("Demo organisation ready."))
            return
        if not Ticket.objects.exists() and options["history"]:
            self._history(departments, people, rng, options["history"])
        if options["tickets"]:
            created = bulk_seed_tickets(
                count=options["tickets"],
                days=options["days"],
                seed=options["seed"],
                progress=lambda n: self.stdout.write(f"  {n} tickets inserted"),
            )
            self.stdout.write(f"Bulk-inserted {created} tickets.")
            # Bulk rows bypass the ticket services, which keep the dashboards' roll-ups.
            from reports.services import rollup_rebuild

            rollup_rebuild()
            self.stdout.write("Rebuilt the dashboards' roll-ups.")
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready: {Department.objects.count()} departments, "
                f"{User.objects.count()} people, {Service.objects.count()} services, "
                f"{Ticket.objects.count()} tickets. Accounts admin / lead / agent / employee, "
                f"password '{PASSWORD}'."
            )
        )

    @transaction.atomic
    def _organisation(self) -> dict[str, Department]:
        office = Calendar.objects.filter(name="Office hours (Berlin)").first()
        if office is None:
            office = sla_services.calendar_save(
                name="Office hours (Berlin)",
                timezone_name="Europe/Berlin",
                week={
                    day: [(time(9), time(12, 30)), (time(13, 30), time(17, 30))] for day in range(5)
                },
                holiday_country="DE",
                holiday_subdivision="BE",
            )
        always = Calendar.objects.filter(name="24×7").first() or sla_services.calendar_save(
            name="24×7", timezone_name="UTC", always_open=True
        )
        h = timedelta(hours=1)
        ladder = [
            ("first_response", 0.75, ["notify_assignee"]),
            ("first_response", 1.0, ["notify_assignee", "notify_supplier_lead"]),
            ("resolution", 0.75, ["notify_assignee"]),
            ("resolution", 1.0, ["notify_supplier_lead", "notify_customer_lead"]),
            ("resolution", 1.5, ["notify_parent_lead", "raise_priority", "reassign_to_lead"]),
        ]
        standard = ServiceStandard.objects.filter(name="Standard support").first()
        if standard is None:
            standard = sla_services.standard_publish(
                name="Standard support",
                calendar=office,
                targets={
                    "P1": (h / 2, 4 * h),
                    "P2": (h, 8 * h),
                    "P3": (4 * h, 24 * h),
                    "P4": (8 * h, 40 * h),
                },
                ladder=ladder,
                note="Initial version",
            )
        urgent = ServiceStandard.objects.filter(name="Building emergencies 24×7").first()
        if urgent is None:
            urgent = sla_services.standard_publish(
                name="Building emergencies 24×7",
                calendar=always,
                targets={
                    "P1": (h / 4, 2 * h),
                    "P2": (h / 2, 4 * h),
                    "P3": (2 * h, 24 * h),
                    "P4": (4 * h, 72 * h),
                },
                ladder=ladder,
                note="Initial version",
            )
        departments: dict[str, Department] = {}
        for name, slug, code, parent_slug, services in DEPARTMENTS:
            department = Department.objects.filter(slug=slug).first()
            if department is None:
                department = department_services.department_create(
                    name=name,
                    slug=slug,
                    code=code,
                    parent=departments.get(parent_slug) if parent_slug else None,
                    calendar=office,
                    default_standard=standard,
                )
            departments[slug] = department
            for service_name, description in services:
                if not Service.objects.filter(department=department, name=service_name).exists():
                    department_services.service_create(
                        department=department,
                        name=service_name,
                        description=description,
                        standard=urgent if service_name == "Building repair" else None,
                        confidential="confidential" in service_name,
                        default_priority="P3",
                    )
        urgent.department = departments["facilities"]
        urgent.save(update_fields=["department"])
        return departments

    @transaction.atomic
    def _people(self, departments, rng) -> dict[str, list[User]]:
        admin = _person(
            "admin", "Ada", "Admin", departments["exec"], is_staff=True, is_superuser=True
        )
        if not admin.is_superuser:
            admin.is_superuser = admin.is_staff = True
            admin.save(update_fields=["is_superuser", "is_staff"])
        lead = _person("lead", "Lars", "Lead", departments["it"])
        agent = _person("agent", "Alex", "Agent", departments["it"])
        employee = _person("employee", "Emma", "Employee", departments["finance"])
        Membership.objects.get_or_create(
            user=lead, department=departments["it"], defaults={"role": Membership.Role.LEAD}
        )
        Membership.objects.get_or_create(
            user=agent, department=departments["it"], defaults={"role": Membership.Role.MEMBER}
        )
        people: dict[str, list[User]] = {slug: [] for slug in departments}
        handlers_needed = Service.objects.filter(confidential=True, handlers__isnull=True)
        people["it"] += [lead, agent]
        people["finance"].append(employee)
        for index, (slug, department) in enumerate(departments.items()):
            for n in range(5):
                first = FIRST_NAMES[(index * 5 + n) % len(FIRST_NAMES)]
                last = LAST_NAMES[(index * 7 + n * 3) % len(LAST_NAMES)]
                username = f"{slug}{n + 1}"
                person = _person(username, first, last, department)
                people[slug].append(person)
                role = None
                if n == 0 and slug != "it":
                    role = Membership.Role.LEAD
                elif n in (1, 2):
                    role = Membership.Role.MEMBER
                if role:
                    Membership.objects.get_or_create(
                        user=person, department=department, defaults={"role": role}
                    )
        for service in handlers_needed:
            # Confidential requests are seen by named handlers only: the lead and one agent.
            service.handlers.add(
                *User.objects.filter(
                    username__in=[f"{service.department.slug}1", f"{service.department.slug}2"]
                )
            )
        return people

    @transaction.atomic
    def _history(self, departments, people, rng, count: int) -> None:
        now = timezone.now()
        everyone = [p for members in people.values() for p in members]
        services = list(Service.objects.filter(active=True).select_related("department"))
        agents_by_dept: dict[int, list[User]] = {}
        for membership in Membership.objects.select_related("user"):
            agents_by_dept.setdefault(membership.department_id, []).append(membership.user)
        demo_employee = User.objects.get(username="employee")
        it_services = [s for s in services if s.department.slug == "it"]
        for index in range(count):
            requester = demo_employee if index % 15 == 0 else rng.choice(everyone)
            service = rng.choice(it_services if index % 3 == 0 else services)
            if service.department_id == requester.home_department_id:
                service = rng.choice(
                    [s for s in services if s.department_id != requester.home_department_id]
                )
            fate = rng.random()
            # Requests still in progress were mostly filed in the last days, as in a desk that
            # keeps up; finished ones spread over the whole 60 days.
            still_active = 0.12 <= fate < 0.45
            filed = now - timedelta(days=rng.uniform(0, 5 if still_active else 60))
            title = rng.choice(TITLES).format(s=service.name.lower())
            with transaction.atomic():
                ticket = ticket_services.ticket_create(
                    requester=requester,
                    service=service,
                    title=title,
                    description=f"Hello,\n\n{service.description}\n\n*Thanks!*",
                    priority=rng.choices(["P1", "P2", "P3", "P4"], [1, 3, 10, 3])[0],
                    now=filed,
                )
                self._play(
                    ticket,
                    requester,
                    agents_by_dept.get(service.department_id, []),
                    rng,
                    filed,
                    now,
                    fate,
                )

    def _play(self, ticket, requester, agents, rng, filed, now, fate) -> None:
        """Walk a ticket through a plausible life, each step at its own past instant."""
        if ticket.confidential:
            agents = list(ticket.service.handlers.all())
        if not agents:
            return
        agent = rng.choice(agents)
        age = now - filed
        step = filed

        def later(max_hours: float):
            nonlocal step
            step = min(
                now - timedelta(minutes=1), step + timedelta(hours=rng.uniform(0.1, max_hours))
            )
            return step

        if fate < 0.12 and age > timedelta(hours=2):
            ticket_services.ticket_transition(
                ticket=ticket, actor=requester, to_status=Status.CANCELLED, now=later(2)
            )
            return
        if fate < 0.25 or age < timedelta(hours=3):
            return  # still new
        ticket_services.ticket_assign(ticket=ticket, actor=agent, assignee=agent, now=later(2))
        ticket_services.ticket_comment(
            ticket=ticket, author=agent, now=later(6), body="Thanks, we are looking into it."
        )
        if rng.random() < 0.3:
            ticket_services.ticket_comment(
                ticket=ticket,
                author=agent,
                internal=True,
                body="Checked the logs; looks like a known issue.",
                now=later(3),
            )
        if rng.random() < 0.25:
            ticket_services.ticket_transition(
                ticket=ticket, actor=agent, to_status=Status.WAITING_ON_CUSTOMER, now=later(8)
            )
            if fate < 0.35:
                return  # still waiting
            ticket_services.ticket_comment(
                ticket=ticket,
                author=requester,
                body="Here is the information you asked for.",
                now=later(24),
            )
        if fate < 0.45:
            return  # open
        ticket_services.ticket_transition(
            ticket=ticket,
            actor=agent,
            to_status=Status.RESOLVED,
            now=later(rng.choice([4, 24, 72])),
        )
        if rng.random() < 0.6:
            ticket_services.ticket_rate(
                ticket=ticket,
                actor=requester,
                rating=rng.choices([1, 2, 3, 4, 5], [1, 1, 2, 5, 6])[0],
                comment=rng.choice(["", "Quick and friendly.", "Took too long.", "Great help!"]),
                now=later(5),
            )
        if fate < 0.6:
            return  # resolved
        if fate < 0.65:
            ticket_services.ticket_transition(
                ticket=ticket, actor=requester, to_status=Status.OPEN, now=later(5)
            )
            return  # reopened
        if now - step > timedelta(days=2):
            ticket_services.ticket_transition(
                ticket=ticket, actor=requester, to_status=Status.CLOSED, now=later(48)
            )
