"""seed_demo builds the demo organisation and is idempotent."""

from django.core.management import call_command

from departments.models import Department, Membership, Service, User
from tickets.models import Event, Ticket


def counts():
    return (
        Department.objects.count(),
        User.objects.count(),
        Service.objects.count(),
        Ticket.objects.count(),
        Event.objects.count(),
        Membership.objects.count(),
    )


def test_seed_demo_builds_the_promised_organisation(db):
    call_command("seed_demo", history=60)
    assert Department.objects.count() >= 8
    for slug in ["it", "hr", "payroll", "facilities", "finance", "legal", "procurement", "comms"]:
        assert Department.objects.filter(slug=slug).exists()
    assert User.objects.count() >= 40
    for department in Department.objects.exclude(slug="exec"):
        assert department.services.count() >= 3
    assert User.objects.get(username="admin").is_superuser
    assert Membership.objects.get(user__username="lead").role == "lead"
    assert Membership.objects.get(user__username="agent").department.slug == "it"
    assert User.objects.get(username="employee").home_department.slug == "finance"
    assert User.objects.get(username="employee").check_password("demo")
    statuses = set(Ticket.objects.values_list("status", flat=True))
    assert {"new", "open", "resolved", "closed", "cancelled"} <= statuses


def test_seed_demo_twice_changes_nothing(db):
    call_command("seed_demo", history=30)
    first = counts()
    call_command("seed_demo", history=30)
    assert counts() == first


def test_seed_demo_bulk_tickets_adds_exactly_n(db):
    call_command("seed_demo", history=0)
    call_command("seed_demo", history=0, tickets=1200)
    assert Ticket.objects.count() == 1200
    refs = Ticket.objects.values_list("reference", flat=True)
    assert len(set(refs)) == 1200
