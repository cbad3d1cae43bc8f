"""The database itself holds the domain's invariants (issue 2: "database constraints for
invariants"). Each write below bypasses model validation and the services (a raw
`QuerySet.update` or a second insert) and must be refused by PostgreSQL."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F

from departments.models import Department, Membership, Service
from slas.models import Escalation, Holiday, LadderLevel, SlaClock, StandardTarget, WorkingInterval
from tickets import services
from tickets.models import SatisfactionRating, Ticket


@pytest.fixture
def ticket(org):
    return services.ticket_create(requester=org.employee, service=org.service, title="VPN")


def refused(write) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        write()


def test_department_code_must_be_upper_case_letters_and_digits(org):
    refused(lambda: Department.objects.filter(pk=org.it.pk).update(code="it-1"))


def test_department_cannot_be_its_own_parent(org):
    refused(lambda: Department.objects.filter(pk=org.it.pk).update(parent=F("id")))


def test_department_slug_and_code_are_unique(org):
    refused(lambda: Department.objects.filter(pk=org.hr.pk).update(slug="it"))
    refused(lambda: Department.objects.filter(pk=org.hr.pk).update(code="IT"))


def test_membership_is_unique_per_user_and_department_with_a_known_role(org):
    refused(lambda: Membership.objects.create(user=org.it_agent, department=org.it))
    refused(
        lambda: Membership.objects.filter(user=org.it_agent, department=org.it).update(role="boss")
    )


def test_service_names_are_unique_per_department_with_a_known_priority(org):
    refused(lambda: Service.objects.create(department=org.it, name=org.service.name))
    refused(lambda: Service.objects.filter(pk=org.service.pk).update(default_priority="P9"))


def test_ticket_reference_and_number_are_never_duplicated(org, ticket):
    second = services.ticket_create(requester=org.employee, service=org.service, title="Two")
    refused(lambda: Ticket.objects.filter(pk=second.pk).update(number=ticket.number))
    refused(lambda: Ticket.objects.filter(pk=second.pk).update(reference=ticket.reference))


def test_ticket_priority_and_status_must_be_known(ticket):
    refused(lambda: Ticket.objects.filter(pk=ticket.pk).update(priority="P0"))
    refused(lambda: Ticket.objects.filter(pk=ticket.pk).update(status="lost"))


def test_rating_is_one_to_five_and_once_per_resolution(org, ticket):
    services.ticket_transition(ticket=ticket, actor=org.it_agent, to_status="open")
    services.ticket_transition(ticket=ticket, actor=org.it_agent, to_status="resolved")
    services.ticket_rate(ticket=ticket, actor=org.employee, rating=4)
    rating = SatisfactionRating.objects.get(ticket=ticket)
    refused(lambda: SatisfactionRating.objects.filter(pk=rating.pk).update(rating=6))
    refused(lambda: SatisfactionRating.objects.filter(pk=rating.pk).update(rating=0))
    refused(
        lambda: SatisfactionRating.objects.create(
            ticket=ticket,
            resolution_number=rating.resolution_number,
            rating=5,
            supplier_department=org.it,
            customer_department=org.finance,
            created_at=rating.created_at,
        )
    )


def test_targets_are_positive_and_resolution_not_before_first_response(org):
    target = StandardTarget.objects.filter(version__standard=org.standard).first()
    refused(lambda: StandardTarget.objects.filter(pk=target.pk).update(first_response=timedelta(0)))
    refused(
        lambda: StandardTarget.objects.filter(pk=target.pk).update(
            resolution=target.first_response - timedelta(seconds=1)
        )
    )


def test_ladder_thresholds_are_positive_and_bounded(org):
    level = LadderLevel.objects.filter(version__standard=org.standard).first()
    refused(lambda: LadderLevel.objects.filter(pk=level.pk).update(threshold=0))
    refused(lambda: LadderLevel.objects.filter(pk=level.pk).update(threshold=11))


def test_working_intervals_have_a_weekday_and_end_after_they_start(org):
    interval = WorkingInterval.objects.filter(
        calendar=org.standard.current_version.calendar
    ).first()
    refused(lambda: WorkingInterval.objects.filter(pk=interval.pk).update(weekday=7))
    refused(lambda: WorkingInterval.objects.filter(pk=interval.pk).update(end=interval.start))


def test_holiday_dates_are_unique_per_calendar(org):
    calendar = org.standard.current_version.calendar
    Holiday.objects.create(calendar=calendar, date="2026-12-25")
    refused(lambda: Holiday.objects.create(calendar=calendar, date="2026-12-25"))


def test_one_clock_per_metric_and_a_running_clock_has_a_start(ticket):
    clock = SlaClock.objects.get(ticket=ticket, metric="first_response")
    refused(
        lambda: SlaClock.objects.create(
            ticket=ticket,
            metric="first_response",
            version=clock.version,
            target=clock.target,
            running_since=clock.running_since,
        )
    )
    refused(lambda: SlaClock.objects.filter(pk=clock.pk).update(running_since=None))
    refused(lambda: SlaClock.objects.filter(pk=clock.pk).update(status="paused"))


def test_an_escalation_level_fires_once_per_ticket_and_metric(ticket):
    fields = {
        "ticket": ticket,
        "metric": "first_response",
        "threshold": "0.75",
        "due_at": ticket.created_at,
        "fired_at": ticket.created_at,
    }
    Escalation.objects.create(**fields)
    refused(lambda: Escalation.objects.create(**fields))
