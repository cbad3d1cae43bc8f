"""seed_demo builds the demo organisation and is idempotent."""

from datetime import timedelta

from django.core.management import call_command
from django.utils import timezone

from departments.models import Department, Membership, Service, User
from tickets.models import Event, Status, Ticket


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
    started = timezone.now()
    call_command("seed_demo")  # the defaults, as `make run` calls it
    assert Department.objects.count() >= 8
    for slug in ["it", "hr", "payroll", "facilities", "finance", "legal", "procurement", "comms"]:
        assert Department.objects.filter(slug=slug).exists()
    suppliers = Department.objects.exclude(slug="exec")
    for department in suppliers:
        assert department.services.count() >= 3
        assert department.memberships.filter(role="lead").exists()
        assert department.memberships.filter(role="member").exists()
    assert User.objects.count() >= 40
    # Demo accounts, all with password "demo".
    for username in ("admin", "lead", "agent", "employee"):
        assert User.objects.get(username=username).check_password("demo")
    assert User.objects.get(username="admin").is_superuser
    lead = Membership.objects.get(user__username="lead")
    assert (lead.role, lead.department.slug) == ("lead", "it")
    agent = Membership.objects.get(user__username="agent")
    assert (agent.role, agent.department.slug) == ("member", "it")
    assert User.objects.get(username="employee").home_department.slug == "finance"
    # A few hundred tickets over the last 60 days, in every status, between many pairs.
    tickets = Ticket.objects.all()
    assert tickets.count() >= 200
    assert set(tickets.values_list("status", flat=True)) == set(Status.values)
    oldest = tickets.order_by("created_at").first().created_at
    assert oldest >= started - timedelta(days=61)
    assert tickets.latest("created_at").created_at <= timezone.now()
    pairs = set(tickets.values_list("supplier_department", "customer_department"))
    assert len(pairs) >= 20
    assert len({supplier for supplier, _ in pairs}) >= 8


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
