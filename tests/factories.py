"""factory_boy factories and a small organisation builder for tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time, timedelta

import factory

from departments.models import Department, Membership, Service, User
from slas import services as sla_services
from slas.models import Calendar, ServiceStandard


class CalendarFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Calendar

    name = factory.Sequence(lambda n: f"Calendar {n}")
    timezone = "Europe/Berlin"


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Department

    name = factory.Sequence(lambda n: f"Department {n}")
    slug = factory.Sequence(lambda n: f"dept-{n}")
    code = factory.Sequence(lambda n: f"D{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    home_department = factory.SubFactory(DepartmentFactory)
    password = factory.PostGenerationMethodCall("set_password", "pw")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    department = factory.SubFactory(DepartmentFactory)
    role = Membership.Role.MEMBER


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Service

    department = factory.SubFactory(DepartmentFactory)
    name = factory.Sequence(lambda n: f"Service {n}")
    description = "A service."
    default_priority = "P3"


H = timedelta(hours=1)
DEFAULT_TARGETS = {
    "P1": (H / 2, 4 * H),
    "P2": (H, 8 * H),
    "P3": (4 * H, 16 * H),
    "P4": (8 * H, 40 * H),
}
DEFAULT_LADDER = [
    ("first_response", 0.75, ["notify_assignee"]),
    ("first_response", 1.0, ["notify_supplier_lead"]),
    ("resolution", 0.75, ["notify_assignee"]),
    ("resolution", 1.0, ["notify_supplier_lead", "notify_customer_lead"]),
]


def office_calendar(name: str = "Office", tz: str = "Europe/Berlin") -> Calendar:
    return sla_services.calendar_save(
        name=name, timezone_name=tz, week={day: [(time(9), time(17))] for day in range(5)}
    )


def standard(
    *,
    name: str = "Standard",
    calendar: Calendar | None = None,
    targets=None,
    ladder=None,
    department=None,
) -> ServiceStandard:
    return sla_services.standard_publish(
        name=name,
        calendar=calendar or office_calendar(f"{name} calendar"),
        targets=targets or DEFAULT_TARGETS,
        ladder=DEFAULT_LADDER if ladder is None else ladder,
        department=department,
    )


@dataclass
class Org:
    it: Department
    finance: Department
    hr: Department
    exec: Department
    standard: ServiceStandard
    service: Service
    hr_service: Service
    admin: User
    it_lead: User
    it_agent: User
    employee: User
    finance_lead: User
    hr_agent: User
    outsider: User


def build_org() -> Org:
    std = standard()
    exec_ = DepartmentFactory(name="Executive", slug="exec", code="EXE")
    it = DepartmentFactory(name="IT", slug="it", code="IT", parent=exec_, default_standard=std)
    finance = DepartmentFactory(
        name="Finance", slug="finance", code="FIN", parent=exec_, default_standard=std
    )
    hr = DepartmentFactory(name="HR", slug="hr", code="HR", parent=exec_, default_standard=std)
    service = ServiceFactory(department=it, name="Laptop problem")
    hr_service = ServiceFactory(department=hr, name="Employment letter")
    admin = UserFactory(username="admin", home_department=exec_, is_superuser=True, is_staff=True)
    it_lead = UserFactory(username="itlead", home_department=it)
    it_agent = UserFactory(username="itagent", home_department=it)
    employee = UserFactory(username="employee", home_department=finance)
    finance_lead = UserFactory(username="finlead", home_department=finance)
    hr_agent = UserFactory(username="hragent", home_department=hr)
    outsider = UserFactory(username="outsider", home_department=hr)
    MembershipFactory(user=it_lead, department=it, role=Membership.Role.LEAD)
    MembershipFactory(user=it_agent, department=it)
    MembershipFactory(user=finance_lead, department=finance, role=Membership.Role.LEAD)
    MembershipFactory(user=hr_agent, department=hr)
    return Org(
        it=it,
        finance=finance,
        hr=hr,
        exec=exec_,
        standard=std,
        service=service,
        hr_service=hr_service,
        admin=admin,
        it_lead=it_lead,
        it_agent=it_agent,
        employee=employee,
        finance_lead=finance_lead,
        hr_agent=hr_agent,
        outsider=outsider,
    )
