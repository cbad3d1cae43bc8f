"""Roll-ups stay equal to a recomputation from the raw tickets after every kind of change."""

from __future__ import annotations

from datetime import timedelta

import pytest

from reports import buckets
from reports import services as report_services
from reports.models import BacklogRollup, DailyRollup, PairRollup, TicketFact
from tests.factories import ServiceFactory
from tickets import services as ticket_services

H = timedelta(hours=1)


def assert_rollups_match_raw():
    assert report_services.rollups_stored() == report_services.rollups_from_raw()


@pytest.fixture
def ticket(org, monday_10):
    return ticket_services.ticket_create(
        requester=org.employee, service=org.service, title="Screen flickers", now=monday_10
    )


def test_filing_adds_the_ticket_to_its_rollup_row(org, ticket):
    row = DailyRollup.objects.get()
    assert (row.supplier_id, row.customer_id, row.service_id, row.priority) == (
        org.it.pk,
        org.finance.pk,
        org.service.pk,
        "P3",
    )
    assert (row.filed, row.open) == (1, 1)
    assert BacklogRollup.objects.get().open == 1
    assert_rollups_match_raw()


def test_first_public_reply_counts_first_response_met(org, ticket, monday_10):
    ticket_services.ticket_comment(
        ticket=ticket, author=org.it_agent, body="On it", now=monday_10 + H
    )
    row = DailyRollup.objects.get()
    assert (row.fr_met, row.fr_breached) == (1, 0)
    pair = PairRollup.objects.get()
    assert (pair.supplier_id, pair.customer_id, pair.fr_met) == (org.it.pk, org.finance.pk, 1)
    one_hour = buckets.bucket_of(H)  # 1 h of business time
    assert buckets.bucket_label(one_hour) == "1 h – 1.25 h"
    assert getattr(pair, f"fr_h{one_hour}") == 1
    assert_rollups_match_raw()


def test_internal_note_changes_nothing(org, ticket, monday_10):
    before = report_services.rollups_stored()
    ticket_services.ticket_comment(
        ticket=ticket, author=org.it_agent, body="note", internal=True, now=monday_10 + H
    )
    assert report_services.rollups_stored() == before
    assert_rollups_match_raw()


def test_waiting_resolve_reopen_and_close_keep_rollups_exact(org, ticket, monday_10):
    steps = [
        ("open", 1),
        ("waiting_on_customer", 2),
        ("open", 30),  # next day: paused time does not count
        ("resolved", 31),
        ("open", 32),
        ("resolved", 33),
        ("closed", 34),
    ]
    for status, hour in steps:
        ticket_services.ticket_transition(
            ticket=ticket, actor=org.it_agent, to_status=status, now=monday_10 + hour * H
        )
        assert_rollups_match_raw()
    row = DailyRollup.objects.get()
    assert (row.open, row.res_met + row.res_breached) == (0, 1)
    assert not BacklogRollup.objects.filter(open__gt=0).exists()


def test_cancel_removes_the_ticket_from_compliance(org, ticket, monday_10):
    ticket_services.ticket_comment(ticket=ticket, author=org.it_agent, body="Hi", now=monday_10)
    ticket_services.ticket_transition(
        ticket=ticket, actor=org.employee, to_status="cancelled", now=monday_10 + H
    )
    row = DailyRollup.objects.get()
    assert (row.filed, row.cancelled, row.fr_met, row.fr_breached) == (1, 1, 0, 0)
    pair = PairRollup.objects.get()
    assert sum(getattr(pair, f"fr_h{i}") for i in range(buckets.COUNT)) == 0
    assert_rollups_match_raw()


def test_priority_change_moves_the_ticket_between_rows(org, ticket, monday_10):
    ticket_services.ticket_change_priority(
        ticket=ticket, actor=org.it_agent, priority="P1", now=monday_10 + H
    )
    rows = {r.priority: r.filed for r in DailyRollup.objects.all()}
    assert rows == {"P3": 0, "P1": 1}
    assert_rollups_match_raw()


def test_priority_change_past_the_new_target_records_a_breach(org, ticket, monday_10):
    ticket_services.ticket_change_priority(
        ticket=ticket, actor=org.it_agent, priority="P1", now=monday_10 + 2 * H
    )
    assert TicketFact.objects.get().fr_outcome == "breached"
    assert_rollups_match_raw()


def test_service_change_moves_the_ticket_between_rows(org, ticket, monday_10):
    other = ServiceFactory(department=org.it, name="Printer")
    ticket_services.ticket_change_service(
        ticket=ticket, actor=org.it_agent, service=other, now=monday_10 + H
    )
    assert DailyRollup.objects.get(service_id=other.pk).filed == 1
    assert_rollups_match_raw()


def test_assign_and_rate_update_agent_and_satisfaction_rows(org, ticket, monday_10):
    from reports.models import AgentRollup

    ticket_services.ticket_assign(
        ticket=ticket, actor=org.it_lead, assignee=org.it_agent, now=monday_10 + H
    )
    assert AgentRollup.objects.get(assignee_id=org.it_agent.pk).filed == 1
    ticket_services.ticket_comment(ticket=ticket, author=org.it_agent, body="Hi", now=monday_10)
    ticket_services.ticket_transition(
        ticket=ticket, actor=org.it_agent, to_status="resolved", now=monday_10 + 2 * H
    )
    ticket_services.ticket_rate(
        ticket=ticket, actor=org.employee, rating=2, comment="Slow", now=monday_10 + 3 * H
    )
    assert DailyRollup.objects.get().rating_2 == 1
    assert AgentRollup.objects.get(assignee_id=org.it_agent.pk).rating_2 == 1
    assert_rollups_match_raw()


def test_linked_request_is_counted_for_the_opening_department_as_customer(org, ticket, monday_10):
    child = ticket_services.ticket_link_request(
        ticket=ticket,
        actor=org.it_agent,
        service=org.hr_service,
        title="Letter for new starter",
        now=monday_10 + H,
    )
    row = DailyRollup.objects.get(service_id=org.hr_service.pk)
    assert (row.supplier_id, row.customer_id) == (org.hr.pk, org.it.pk)
    assert child.customer_department_id == org.it.pk
    assert_rollups_match_raw()


def test_rebuild_from_raw_gives_the_same_rollups(org, ticket, monday_10):
    ticket_services.ticket_comment(ticket=ticket, author=org.it_agent, body="Hi", now=monday_10)
    stored = report_services.rollups_stored()
    DailyRollup.objects.all().delete()
    TicketFact.objects.all().delete()
    assert report_services.rollup_rebuild() == 1
    assert report_services.rollups_stored() == stored


def test_refresh_is_idempotent(ticket):
    assert report_services.rollup_refresh_ticket(ticket_id=ticket.pk) is False
    assert_rollups_match_raw()


def test_rolled_back_change_leaves_rollups_untouched(org, ticket, monday_10):
    from django.db import transaction

    before = report_services.rollups_stored()
    with pytest.raises(RuntimeError), transaction.atomic():
        ticket_services.ticket_transition(
            ticket=ticket, actor=org.it_agent, to_status="cancelled", now=monday_10 + H
        )
        raise RuntimeError("abort")
    assert report_services.rollups_stored() == before
    assert_rollups_match_raw()


def test_bulk_seeding_leaves_exact_rollups(db):
    from django.core.management import call_command

    call_command("seed_demo", "--tickets", "120", "--history", "10", verbosity=0)
    assert TicketFact.objects.count() == 130
    assert_rollups_match_raw()


def _raw_quantiles(prefix_metric: str, supplier_id: int) -> tuple:
    """Median and p90 of business time to stop, straight from the clocks (SPEC §3)."""
    import statistics

    from slas.models import SlaClock

    values = sorted(
        SlaClock.objects.filter(
            ticket__supplier_department_id=supplier_id,
            metric=prefix_metric,
            status=SlaClock.Status.STOPPED,
        )
        .exclude(ticket__status="cancelled")
        .values_list("elapsed", flat=True)
    )
    if not values:
        return None, None
    return statistics.median(values), values[-(-9 * len(values) // 10) - 1]


@pytest.mark.parametrize("refresh", ["batch_refresh", "rebuild"])
def test_bulk_seeded_tickets_refresh_into_exact_histograms(
    org, refresh, django_assert_max_num_queries
):
    """Issue 6 bug: tickets made by tickets/bulk.py (no per-ticket services) must go into the
    roll-ups through the incremental refresh as well as the rebuild, histograms included."""
    from reports import selectors
    from tickets.bulk import bulk_seed_tickets
    from tickets.models import Ticket

    bulk_seed_tickets(count=40, days=20, seed=7)
    ids = list(Ticket.objects.values_list("pk", flat=True))
    if refresh == "rebuild":
        report_services.rollup_rebuild()
    else:
        # Set-based: a fixed number of statements for the whole batch, not per ticket.
        with django_assert_max_num_queries(14):
            assert report_services.rollup_refresh_tickets(ticket_ids=ids) == len(ids)
    assert TicketFact.objects.count() == len(ids)
    assert_rollups_match_raw()
    today = selectors.reporting_today()
    period = selectors.Period(today - timedelta(days=30), today + timedelta(days=1))
    scope = selectors.department_scope(org.it, "supplier")
    figures = selectors.sla_figures(scope=scope, period=period)
    stopped = sum(getattr(p, f"res_h{i}") for p in PairRollup.objects.filter(supplier_id=org.it.pk)
                  for i in range(buckets.COUNT))  # fmt: skip
    assert figures["resolution"]["stopped"] == stopped > 0
    for metric in ("first_response", "resolution"):
        median, p90 = _raw_quantiles(metric, org.it.pk)
        assert (figures[metric]["median"], figures[metric]["p90"]) == (median, p90)
    # Refreshing again changes nothing (the deltas are exact).
    assert report_services.rollup_refresh_tickets(ticket_ids=ids) == 0
    assert_rollups_match_raw()
    # A later change of a bulk-made ticket through the services keeps them exact too.
    ticket = Ticket.objects.filter(status="open").first()
    ticket_services.ticket_transition(ticket=ticket, actor=org.admin, to_status="resolved")
    assert_rollups_match_raw()


def test_batch_refresh_applies_changes_of_several_tickets_in_one_row(org, ticket, monday_10):
    """Two tickets in the same roll-up rows changed behind the services' back: one batch
    refresh sums their deltas per row and lands on the raw recomputation."""
    from tickets.models import Ticket

    other = ticket_services.ticket_create(
        requester=org.employee, service=org.service, title="Second", now=monday_10
    )
    Ticket.objects.filter(pk__in=[ticket.pk, other.pk]).update(priority="P1")
    assert report_services.rollup_refresh_tickets(ticket_ids=[other.pk, ticket.pk, ticket.pk]) == 2
    assert {r.priority: r.filed for r in DailyRollup.objects.all()} == {"P3": 0, "P1": 2}
    assert_rollups_match_raw()
