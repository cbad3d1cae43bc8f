"""tickets.pagination.CappedPaginator: with count_in_order, the count and every page come
from one read of the first cap + 1 ids; they are what counting and slicing the list give."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from tests.conftest import MONDAY_10
from tickets import selectors, services
from tickets.pagination import CappedPaginator


def _queue(org):
    lens = selectors.SlaLens(now=MONDAY_10)
    return selectors.ticket_queue(user=org.it_agent, filters={}, lens=lens)


@pytest.mark.parametrize("cap", [3, 5, 100])
@pytest.mark.parametrize("orphans", [0, 1])
def test_pages_from_the_capped_ids_are_the_lists_own_slices(org, monkeypatch, cap, orphans):
    monkeypatch.setattr(CappedPaginator, "cap", cap)
    for n in range(7):
        with time_machine.travel(MONDAY_10 + timedelta(minutes=n), tick=False):
            services.ticket_create(
                requester=org.employee, service=org.service, title=f"T{n}", priority="P3"
            )
    queryset = _queue(org)
    in_order = list(queryset.values_list("pk", flat=True))
    assert len(in_order) == 7
    one_read = CappedPaginator(queryset, 2, orphans=orphans)
    two_reads = CappedPaginator(queryset, 2, orphans=orphans, count_in_order=False)
    assert one_read.count == two_reads.count == min(7, cap)
    assert one_read.capped is two_reads.capped is (7 > cap)
    assert one_read.num_pages == two_reads.num_pages
    for number in [*one_read.page_range, 0, "x", one_read.num_pages + 1]:
        page = one_read.get_page(number)
        other = two_reads.get_page(number)
        assert page.number == other.number
        assert page.object_list == [ticket.pk for ticket in other.object_list]
        assert page.object_list == in_order[page.start_index() - 1 : page.end_index()]


def test_an_empty_list_has_one_empty_page(org):
    page = CappedPaginator(_queue(org), 25).get_page(1)
    assert page.object_list == [] and page.paginator.count == 0 and page.number == 1


def test_the_queues_first_ids_by_shape_are_the_queues_own(org):
    """selectors.ticket_queue_first_ids (SQL compiled once per shape, other people's values
    put in) against ticket_queue itself, for every filter a shape takes."""
    import itertools

    from departments.models import Membership
    from tests.factories import MembershipFactory, UserFactory
    from tickets.models import Ticket

    both = UserFactory(home_department=org.hr)
    MembershipFactory(user=both, department=org.it)
    MembershipFactory(user=both, department=org.hr, role=Membership.Role.LEAD)
    for n, (service, priority) in enumerate(
        itertools.product([org.service, org.hr_service], ["P1", "P3"])
    ):
        for requester in (org.employee, org.finance_lead):
            ticket = services.ticket_create(
                requester=requester, service=service, title=f"T{n}", priority=priority
            )
            Ticket.objects.filter(pk=ticket.pk).update(
                assignee=[None, org.it_agent, both][n % 3], status=["new", "open"][n % 2]
            )
    lens = selectors.SlaLens(now=MONDAY_10)
    cases = itertools.product(
        ["", "open", "all"],
        ["", "P1"],
        ["", "me", "none", str(org.it_agent.pk)],
        [None, org.service.pk],
        [None, org.finance.pk],
        ["deadline", "newest"],
    )
    for status, priority, assignee, service, customer, sort in cases:
        filters = {
            "status": status,
            "priority": priority,
            "assignee": assignee,
            "service": service,
            "customer_department": customer,
            "sort": sort,
        }
        filters = {name: value for name, value in filters.items() if value not in (None, "")}
        for user in (org.it_agent, both, org.admin):
            shaped = selectors.ticket_queue_first_ids(user=user, filters=filters, limit=5)
            queue = selectors.ticket_queue(user=user, filters=filters, lens=lens)
            assert shaped == list(queue.values_list("pk", flat=True)[:5]), (user, filters)


def test_a_queue_with_words_or_an_sla_filter_is_not_read_by_shape(org):
    for filters in ({"q": "printer"}, {"sla": "at_risk"}, {"assignee": "not-a-number"}):
        assert selectors.ticket_queue_first_ids(user=org.it_agent, filters=filters, limit=5) is None


def test_a_queue_with_a_filter_no_shape_knows_is_not_read_by_shape(org):
    filters = {"supplier_department": org.it.pk}
    assert selectors.ticket_queue_first_ids(user=org.it_agent, filters=filters, limit=5) is None
    assert selectors.ticket_queue_first_ids(user=org.employee, filters={}, limit=5) is None
