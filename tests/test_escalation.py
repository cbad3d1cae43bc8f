"""Firing the escalation ladder (SPEC §3 ladder levels, SPEC §4), in-process, with time travel.

The organisation's standard: Mon–Fri 09:00–17:00 Europe/Berlin; P3 = first response 4 h,
resolution 16 h; ladder: first response 75 % → assignee, 100 % → supplier lead; resolution
75 % → assignee, 100 % → supplier lead + customer lead. 2026-01-12 is a Monday (CET, UTC+1).
Tasks are called directly; what they enqueue is read from kombu's in-memory broker.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from departments.models import Membership
from slas import escalation
from slas.models import Escalation, SlaClock
from slas.tasks import sla_fire_ticket, sla_sweep
from tests.escalation_helpers import celery_broker, drain
from tests.factories import MembershipFactory, ServiceFactory, UserFactory, standard
from tickets import services
from tickets.models import Event, Notification, Ticket

H = timedelta(hours=1)
S = timedelta(seconds=1)


def at(day: int, hour: float) -> datetime:
    """January 2026, Berlin wall-clock hour (CET = UTC+1) as an aware UTC instant."""
    return datetime(2026, 1, day, tzinfo=UTC) + timedelta(hours=hour - 1)


@pytest.fixture
def travel():
    travellers = []

    def go(instant):
        traveller = time_machine.travel(instant, tick=False)
        traveller.start()
        travellers.append(traveller)

    yield go
    for traveller in reversed(travellers):
        traveller.stop()


@pytest.fixture
def broker():
    """This process publishes to kombu's in-memory broker for the test."""
    with celery_broker("memory://"):
        drain()
        yield
        drain()


@pytest.fixture
def filed(org, travel):
    """A P3 request filed Monday 10:00 Berlin, assigned to the IT agent."""
    travel(at(12, 10))
    ticket = services.ticket_create(requester=org.employee, service=org.service, title="Laptop")
    return services.ticket_assign(ticket=ticket, actor=org.it_lead, assignee=org.it_agent)


def escalations(ticket) -> list[tuple[str, str]]:
    return [
        (e.metric, f"{e.threshold:.2f}")
        for e in Escalation.objects.filter(ticket=ticket).order_by("due_at", "threshold")
    ]


def notified(ticket) -> list[str]:
    return sorted(n.recipient.username for n in Notification.objects.filter(ticket=ticket))


def ticket_with_ladder(org, travel, ladder, *, priority="P3", name="Custom"):
    service = ServiceFactory(department=org.it, standard=standard(name=name, ladder=ladder))
    travel(at(12, 10))
    ticket = services.ticket_create(
        requester=org.employee, service=service, title="Printer", priority=priority
    )
    return services.ticket_assign(ticket=ticket, actor=org.it_lead, assignee=org.it_agent)


# --- Firing -----------------------------------------------------------------------------------


def test_level_fires_when_elapsed_reaches_threshold_times_target(org, filed, broker):
    outcome = escalation.sla_escalate(ticket_id=filed.pk, now=at(12, 13) + S)
    assert escalations(filed) == [("first_response", "0.75")]
    fired = Escalation.objects.get(ticket=filed)
    assert fired.due_at == at(12, 13)  # 3 business hours = 75 % of 4 h
    assert fired.fired_at == at(12, 13) + S
    assert fired.actions == [{"action": "notify_assignee", "recipients": ["itagent"]}]
    assert [e.pk for e in outcome.fired] == [fired.pk]


def test_level_does_not_fire_before_its_instant(org, filed, broker):
    outcome = escalation.sla_escalate(ticket_id=filed.pk, now=at(12, 13) - S)
    assert not outcome.due
    assert escalations(filed) == []


def test_each_level_fires_exactly_once_when_called_again(org, filed, broker):
    escalation.sla_escalate(ticket_id=filed.pk, now=at(12, 13) + S)
    again = escalation.sla_escalate(ticket_id=filed.pk, now=at(12, 13) + 2 * S)
    assert again.fired == []
    assert escalations(filed) == [("first_response", "0.75")]
    assert notified(filed) == ["itagent"]
    assert Event.objects.filter(ticket=filed, kind=Event.Kind.ESCALATION).count() == 1


def test_next_sla_event_moves_to_the_next_level_after_firing(org, filed, broker):
    escalation.sla_escalate(ticket_id=filed.pk, now=at(12, 13) + S)
    assert Ticket.objects.get(pk=filed.pk).next_sla_event_at == at(12, 14)


def test_late_firing_records_every_passed_level_with_its_own_instant(org, filed, broker):
    escalation.sla_escalate(ticket_id=filed.pk, now=at(12, 14) + 5 * S)
    rows = list(Escalation.objects.filter(ticket=filed).order_by("threshold"))
    assert [(r.threshold, r.due_at) for r in rows] == [
        (Decimal("0.75"), at(12, 13)),
        (Decimal("1.00"), at(12, 14)),
    ]


def test_breach_is_recorded_at_the_deadline(org, filed, broker):
    escalation.sla_escalate(ticket_id=filed.pk, now=at(12, 14) + S)
    clock = SlaClock.objects.get(ticket=filed, metric="first_response")
    assert clock.breached_at == at(12, 14)


def test_paused_clock_does_not_fire(org, filed, travel, broker):
    travel(at(12, 11))
    services.ticket_transition(ticket=filed, actor=org.it_agent, to_status="open")
    services.ticket_transition(ticket=filed, actor=org.it_agent, to_status="waiting_on_customer")
    outcome = escalation.sla_escalate(ticket_id=filed.pk, now=at(12, 16))
    assert not outcome.due
    assert escalations(filed) == []


def test_escalation_writes_an_audit_event(org, filed, broker):
    escalation.sla_escalate(ticket_id=filed.pk, now=at(12, 13) + S)
    event = Event.objects.get(ticket=filed, kind=Event.Kind.ESCALATION)
    assert event.actor is None
    assert event.after["metric"] == "first_response"
    assert event.after["threshold"] == "0.75"
    assert event.after["actions"] == ["notify_assignee"]


# --- Actions ----------------------------------------------------------------------------------


def test_breach_notifies_the_supplier_lead(org, filed, broker):
    escalation.sla_escalate(ticket_id=filed.pk, now=at(12, 14) + S)
    assert notified(filed) == ["itagent", "itlead"]


def test_resolution_breach_notifies_the_customer_department_lead(org, filed, broker):
    services.ticket_comment(ticket=filed, author=org.it_agent, body="On it", now=at(12, 10))
    escalation.sla_escalate(ticket_id=filed.pk, now=at(14, 10) + S)  # 16 business hours later
    assert set(notified(filed)) == {"itagent", "itlead", "finlead"}


def test_notify_parent_department_lead(org, travel, broker):
    exec_lead = UserFactory(username="execlead", home_department=org.exec)
    MembershipFactory(user=exec_lead, department=org.exec, role=Membership.Role.LEAD)
    ticket = ticket_with_ladder(
        org, travel, [("first_response", 0.5, ["notify_parent_lead"])], name="Parent"
    )
    escalation.sla_escalate(ticket_id=ticket.pk, now=at(12, 12) + S)
    assert notified(ticket) == ["execlead"]


def test_unassigned_ticket_notifies_no_assignee(org, travel, broker):
    travel(at(12, 10))
    ticket = services.ticket_create(requester=org.employee, service=org.service, title="x")
    escalation.sla_escalate(ticket_id=ticket.pk, now=at(12, 13) + S)
    assert escalations(ticket) == [("first_response", "0.75")]
    assert notified(ticket) == []


def test_raise_priority_goes_one_step_up_and_retargets_the_clocks(org, travel, broker):
    ticket = ticket_with_ladder(org, travel, [("first_response", 0.25, ["raise_priority"])])
    escalation.sla_escalate(ticket_id=ticket.pk, now=at(12, 11) + S)
    ticket.refresh_from_db()
    assert ticket.priority == "P2"
    event = Event.objects.get(ticket=ticket, kind=Event.Kind.PRIORITY)
    assert (event.actor, event.before, event.after) == (None, "P3", "P2")
    clock = SlaClock.objects.get(ticket=ticket, metric="first_response")
    assert clock.target == H  # the P2 target of the version the ticket was filed under
    assert clock.elapsed == H + S  # elapsed is kept (banked at the firing instant)


def test_raise_priority_never_goes_above_p1(org, travel, broker):
    ticket = ticket_with_ladder(
        org, travel, [("first_response", 0.25, ["raise_priority"])], priority="P1"
    )
    escalation.sla_escalate(ticket_id=ticket.pk, now=at(12, 10) + 8 * 60 * S)
    ticket.refresh_from_db()
    assert ticket.priority == "P1"
    assert Escalation.objects.get(ticket=ticket).actions == [
        {"action": "raise_priority", "skipped": "already the highest priority"}
    ]


def test_levels_made_due_by_a_raised_priority_fire_in_the_same_run(org, travel, broker):
    # 25 % of P3's 4 h = 1 h → P2; now 1 h of P2's 1 h target: 100 % is due at once.
    ticket = ticket_with_ladder(
        org,
        travel,
        [("first_response", 0.25, ["raise_priority"]), ("first_response", 1.0, [])],
    )
    escalation.sla_escalate(ticket_id=ticket.pk, now=at(12, 11) + S)
    assert escalations(ticket) == [("first_response", "0.25"), ("first_response", "1.00")]


def test_reassign_to_lead_hands_the_ticket_to_the_supplier_lead(org, travel, broker):
    ticket = ticket_with_ladder(
        org, travel, [("first_response", 0.5, ["reassign_to_lead", "notify_assignee"])]
    )
    escalation.sla_escalate(ticket_id=ticket.pk, now=at(12, 12) + S)
    ticket.refresh_from_db()
    assert ticket.assignee == org.it_lead
    event = Event.objects.get(ticket=ticket, kind=Event.Kind.ASSIGNED, actor=None)
    assert (event.before, event.after) == ("itagent", "itlead")
    # Reassignment runs first, so "notify the assignee" reaches the lead.
    assert notified(ticket) == ["itlead"]


# --- Batches ----------------------------------------------------------------------------------

NOTIFY_ONLY = [
    ("first_response", 0.5, ["notify_assignee", "notify_supplier_lead"]),
    ("first_response", 1.0, ["notify_customer_lead"]),
]
# Every action, a breach, and a raised priority that makes the next level due in a second round.
EVERY_ACTION = [
    (
        "first_response",
        0.5,
        ["notify_assignee", "notify_supplier_lead", "notify_parent_lead", "notify_customer_lead"],
    ),
    ("first_response", 0.75, ["raise_priority"]),
    ("first_response", 1.0, ["reassign_to_lead", "notify_assignee"]),
]


@pytest.mark.parametrize("ladder", [NOTIFY_ONLY, EVERY_ACTION], ids=["notify", "every-action"])
def test_a_batch_of_fifty_due_tickets_takes_as_many_queries_as_a_batch_of_one(
    org, travel, broker, ladder, django_assert_max_num_queries
):
    exec_lead = UserFactory(username="execlead", home_department=org.exec)
    MembershipFactory(user=exec_lead, department=org.exec, role=Membership.Role.LEAD)
    service = ServiceFactory(department=org.it, standard=standard(name="Batch", ladder=ladder))

    def file(count: int) -> list[Ticket]:
        travel(at(12, 10))
        made = []
        for _ in range(count):
            ticket = services.ticket_create(requester=org.employee, service=service, title="x")
            made.append(
                services.ticket_assign(ticket=ticket, actor=org.it_lead, assignee=org.it_agent)
            )
        return made

    now = at(12, 15)  # every level of every ticket is due
    file(1)
    escalation.sla_fire_due(now=now)  # warm-up: per-process caches (calendars)
    [one] = file(1)
    with CaptureQueriesContext(connection) as single:
        assert list(escalation.sla_fire_due(now=now)) == [one.pk]
    fifty = file(50)
    with django_assert_max_num_queries(len(single.captured_queries)):
        fired = escalation.sla_fire_due(now=now, limit=50)
    assert sorted(fired) == sorted(t.pk for t in fifty)
    expected = [("first_response", f"{threshold:.2f}") for _metric, threshold, _a in ladder]
    assert all(escalations(t) == expected for t in [one, *fifty])
    assert Event.objects.filter(kind=Event.Kind.ESCALATION).count() == 52 * len(ladder)
    assert not Ticket.objects.filter(next_sla_event_at__lte=now).exists()


def test_batch_notifies_each_person_once_per_level_even_when_named_twice(org, travel, broker):
    # The IT lead leads the customer department too: supplier and customer lead are one person.
    MembershipFactory(user=org.it_lead, department=org.finance, role=Membership.Role.LEAD)
    ticket = ticket_with_ladder(
        org, travel, [("first_response", 0.5, ["notify_supplier_lead", "notify_customer_lead"])]
    )
    escalation.sla_escalate(ticket_id=ticket.pk, now=at(12, 12) + S)
    assert escalations(ticket) == [("first_response", "0.50")]
    assert notified(ticket) == ["finlead", "itlead"]


def test_a_level_recorded_by_another_writer_is_neither_recorded_nor_acted_on_again(
    org, filed, broker, monkeypatch
):
    """The unique constraint decides: a planned row the INSERT finds recorded (by a writer
    that did not take the ticket row lock) makes the batch re-read and plan again."""
    from slas.models import LadderLevel

    level = LadderLevel.objects.get(
        version=org.standard.current_version, metric="first_response", threshold="0.75"
    )
    reads = []
    original = escalation._Batch.__init__

    def racing(self, ticket_ids, now):
        original(self, ticket_ids, now)
        reads.append(len(self.recorded.get(filed.pk, ())))
        if len(reads) == 1:  # recorded just after our read, as if by someone else
            Escalation.objects.create(
                ticket=filed, metric="first_response", threshold=level.threshold, level=level,
                due_at=at(12, 13), fired_at=at(12, 13), actions=[],
            )  # fmt: skip

    monkeypatch.setattr(escalation._Batch, "__init__", racing)
    outcome = escalation.sla_escalate(ticket_id=filed.pk, now=at(12, 14) + S)
    assert reads == [0, 1]
    assert escalations(filed) == [("first_response", "0.75"), ("first_response", "1.00")]
    assert [(e.metric, f"{e.threshold:.2f}") for e in outcome.fired] == [("first_response", "1.00")]
    # Only the 100 % level notified (the supplier lead); the 75 % level's assignee was not.
    assert notified(filed) == ["itlead"]
    assert Event.objects.filter(ticket=filed, kind=Event.Kind.ESCALATION).count() == 1


# --- Sweep ------------------------------------------------------------------------------------


def test_sweep_fires_every_due_ticket_and_leaves_the_rest(org, travel, broker):
    travel(at(12, 10))
    early = services.ticket_create(requester=org.employee, service=org.service, title="a")
    travel(at(12, 11))
    late = services.ticket_create(requester=org.employee, service=org.service, title="b")
    outcome = escalation.sla_sweep(now=at(12, 13) + S, schedule=False)
    assert outcome.fired == 1
    assert escalations(early) == [("first_response", "0.75")]
    assert escalations(late) == []


def test_sweep_reads_due_tickets_in_batches_until_none_is_due(org, travel, broker):
    tickets = []
    for minute in range(5):
        travel(at(12, 10) + minute * 60 * S)
        tickets.append(
            services.ticket_create(requester=org.employee, service=org.service, title="x")
        )
    outcome = escalation.sla_sweep(now=at(12, 13) + 10 * 60 * S, batch=2, schedule=False)
    assert outcome.fired == 5
    assert all(escalations(t) == [("first_response", "0.75")] for t in tickets)


def test_sweep_query_count_grows_with_due_tickets_not_open_ones(
    org, travel, broker, django_assert_max_num_queries
):
    travel(at(12, 10))
    for _ in range(30):
        services.ticket_create(requester=org.employee, service=org.service, title="open")
    with django_assert_max_num_queries(1):
        assert escalation.due_ticket_ids(now=at(12, 12), limit=100) == []


def test_sweep_skips_a_ticket_another_transaction_holds(org, filed, broker, transactional_db):
    """A locked row is left to its holder: no wait, no duplicate (SKIP LOCKED)."""
    locked = threading.Event()
    release = threading.Event()

    def hold():
        with transaction.atomic():
            Ticket.objects.select_for_update().get(pk=filed.pk)
            locked.set()
            release.wait(10)
        connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        outcome = escalation.sla_sweep(now=at(12, 13) + S, schedule=False)
    finally:
        release.set()
        holder.join()
    assert outcome.skipped_locked == 1
    assert escalations(filed) == []
    assert escalation.sla_sweep(now=at(12, 13) + S, schedule=False).fired == 1


def test_concurrent_sweeps_fire_each_level_once(org, travel, broker, transactional_db):
    tickets = []
    for minute in range(12):
        travel(at(12, 10) + minute * 60 * S)
        tickets.append(
            services.ticket_create(requester=org.employee, service=org.service, title="x")
        )
    results, errors = [], []
    start = threading.Barrier(4)

    def sweep():
        try:
            start.wait(10)
            now = at(12, 14) + 12 * 60 * S  # every 75 % and 100 % first-response level
            results.append(escalation.sla_sweep(now=now, batch=3, schedule=False))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(r.fired for r in results) == 12 * 2  # 75 % and 100 % of first response
    assert Escalation.objects.count() == 24
    assert Event.objects.filter(kind=Event.Kind.ESCALATION).count() == 24


def test_sweep_queues_one_drain_per_slot_of_near_instants_once(org, travel, broker, settings):
    settings.SLA_SCHEDULE_HORIZON_SECONDS = 3600
    settings.SLA_SLOT_SECONDS = 1
    for offset in (0, 0.2, 0.4, 5):  # three instants in one second, one in another
        travel(at(12, 10) + offset * S)
        services.ticket_create(requester=org.employee, service=org.service, title="x")
    drain()
    travel(at(12, 12) + 30 * S)
    escalation.sla_sweep(now=at(12, 12) + 30 * S)
    published = drain()
    assert [(p.task, p.eta, p.args) for p in published] == [
        # 13:00 Berlin = 12:00 UTC: starts at the slot's first instant, drains to its end.
        (
            "slas.tasks.sla_drain_slot",
            "2026-01-12T12:00:00+00:00",
            ["2026-01-12T12:00:01+00:00"],
        ),
        (
            "slas.tasks.sla_drain_slot",
            "2026-01-12T12:00:05+00:00",
            ["2026-01-12T12:00:06+00:00"],
        ),
    ]
    escalation.sla_sweep(now=at(12, 12) + 45 * S)  # the watermark: nothing twice
    assert drain() == []


def test_drain_fires_each_ticket_when_it_falls_due_within_its_slot(org, travel, broker):
    tickets = []
    for offset in (0, 0.2, 0.4):
        travel(at(12, 10) + offset * S)
        tickets.append(
            services.ticket_create(requester=org.employee, service=org.service, title="x")
        )
    travel(at(12, 13) + 0.5 * S)  # all three are due
    outcome = escalation.sla_drain(until=at(12, 13) + S)
    assert outcome.fired == 3
    assert all(escalations(t) == [("first_response", "0.75")] for t in tickets)


def test_drain_sleeps_until_the_next_instant_of_its_slot(org, broker):
    from slas.services import calendar_save

    always = calendar_save(name="Always", timezone_name="UTC", always_open=True)
    service = ServiceFactory(department=org.it, standard=standard(name="24x7", calendar=always))
    # The real clock: the 75 % level (3 h of P3's 4 h) falls due 0.3 s from now.
    due_at = timezone.now() + 0.3 * S
    ticket = services.ticket_create(
        requester=org.employee, service=service, title="soon", now=due_at - 3 * H
    )
    escalation.sla_drain(until=due_at + S)
    fired = Escalation.objects.get(ticket=ticket)
    assert (fired.metric, fired.due_at) == ("first_response", due_at)
    assert fired.fired_at >= due_at


def test_drain_queues_one_email_task_for_all_it_fired(
    org, travel, broker, django_capture_on_commit_callbacks, transactional_db
):
    for offset in (0, 0.2, 0.4):
        travel(at(12, 10) + offset * S)
        ticket = services.ticket_create(requester=org.employee, service=org.service, title="x")
        services.ticket_assign(ticket=ticket, actor=org.it_lead, assignee=org.it_agent)
    drain()
    travel(at(12, 13) + 0.5 * S)
    escalation.sla_drain(until=at(12, 13) + S)
    [published] = drain()
    assert published.task == "tickets.tasks.notification_send_emails"
    assert sorted(published.args[0]) == sorted(Notification.objects.values_list("pk", flat=True))
    assert len(published.args[0]) == 3


# --- Tasks ------------------------------------------------------------------------------------


def test_fire_task_returns_early_when_the_ticket_was_answered(org, filed, travel, broker):
    travel(at(12, 12))
    services.ticket_comment(ticket=filed, author=org.it_agent, body="On it")
    travel(at(12, 13) + S)
    assert sla_fire_ticket.run(filed.pk, at(12, 13).isoformat()) == "moved on"
    assert escalations(filed) == []


def test_fire_task_fires_a_due_ticket_and_is_idempotent(org, filed, travel, broker):
    travel(at(12, 13) + S)
    assert sla_fire_ticket.run(filed.pk, at(12, 13).isoformat()) == "fired 1"
    assert sla_fire_ticket.run(filed.pk, at(12, 13).isoformat()) == "moved on"
    assert escalations(filed) == [("first_response", "0.75")]


def test_fire_task_delivered_early_comes_back_at_its_instant(org, filed, travel, broker):
    drain()
    travel(at(12, 13) - S)
    assert sla_fire_ticket.run(filed.pk, at(12, 13).isoformat()) == "early"
    [again] = drain()
    assert again.args[0] == filed.pk
    assert again.eta.startswith("2026-01-12T12:00:00")


def test_sweep_task_fires_due_work(org, filed, travel, broker):
    travel(at(12, 13) + S)
    assert sla_sweep.run()["fired"] == 1


# --- Enqueueing on commit ---------------------------------------------------------------------


def test_near_instant_is_scheduled_on_commit(org, travel, broker, settings, transactional_db):
    settings.SLA_SCHEDULE_HORIZON_SECONDS = 4 * 3600
    travel(at(12, 10))
    ticket = services.ticket_create(requester=org.employee, service=org.service, title="x")
    [published] = drain()
    assert (published.task, published.args) == (
        "slas.tasks.sla_fire_ticket",
        [ticket.pk, at(12, 13).isoformat()],
    )


def test_far_instant_is_left_to_the_sweep(org, travel, broker, transactional_db):
    travel(at(12, 10))
    services.ticket_create(requester=org.employee, service=org.service, title="x")
    assert drain() == []  # 13:00 is three hours away, beyond the 120 s horizon


def test_firing_queues_the_emails_on_commit(org, filed, broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        escalation.sla_escalate(ticket_id=filed.pk, now=at(12, 13) + S)
    assert len(callbacks) == 1
    [published] = drain()
    notification = Notification.objects.get(ticket=filed)
    assert (published.task, published.args) == (
        "tickets.tasks.notification_send_emails",
        [[notification.pk]],
    )


def test_rolled_back_firing_notifies_nobody(org, filed, broker, django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        escalation.sla_escalate(ticket_id=filed.pk, now=at(12, 14) + S)
        raise RuntimeError("the surrounding change fails")
    assert callbacks == []
    assert drain() == []
    assert Notification.objects.count() == 0
    assert Escalation.objects.count() == 0


def test_ticket_change_succeeds_while_the_broker_is_down(org, travel, settings, transactional_db):
    settings.SLA_SCHEDULE_HORIZON_SECONDS = 4 * 3600  # so the change tries to publish
    travel(at(12, 10))
    with celery_broker("redis://127.0.0.1:1/0"):  # nothing listens on port 1
        ticket = services.ticket_create(requester=org.employee, service=org.service, title="x")
        services.ticket_transition(ticket=ticket, actor=org.it_agent, to_status="open")
    ticket.refresh_from_db()
    assert ticket.status == "open"
    assert ticket.next_sla_event_at == at(12, 13)  # the sweep will find it there


def test_breach_and_priority_reach_the_dashboards_roll_ups(org, travel, broker):
    from reports.models import TicketFact

    ticket = ticket_with_ladder(org, travel, [("first_response", 1.0, ["raise_priority"])])
    escalation.sla_escalate(ticket_id=ticket.pk, now=at(12, 14) + S)
    fact = TicketFact.objects.get(ticket=ticket)
    assert fact.fr_outcome == "breached"
    assert fact.priority == "P2"


def test_a_failing_roll_up_refresh_does_not_stop_the_escalation(
    org, filed, broker, monkeypatch, caplog
):
    from django.db import IntegrityError

    from reports import services as report_services

    def broken(*, ticket_ids):
        Ticket.objects.filter(pk__in=ticket_ids).update(title="changed inside the savepoint")
        raise IntegrityError("a roll-up row refused")

    monkeypatch.setattr(report_services, "rollup_refresh_tickets", broken)
    escalation.sla_escalate(ticket_id=filed.pk, now=at(12, 14) + S)  # breach: refresh runs
    assert escalations(filed) == [("first_response", "0.75"), ("first_response", "1.00")]
    assert Ticket.objects.get(pk=filed.pk).title == "Laptop"  # its savepoint rolled back
    assert "roll-up refresh failed" in caplog.text
