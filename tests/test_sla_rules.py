"""SPEC §3, one rule per test, through the services, with time travel.

The organisation's standard: Mon–Fri 09:00–17:00 Europe/Berlin; P3 = first response 4 h,
resolution 16 h; ladder at 75 % and 100 % of each metric. 2026-01-12 is a Monday (CET, UTC+1).
"""

from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine

from slas import services as sla_services
from slas.models import Escalation, SlaClock
from slas.selectors import clock_state
from tests.factories import ServiceFactory, standard
from tickets import services

H = timedelta(hours=1)


def at(day: int, hour: float) -> datetime:
    """January 2026, Berlin wall-clock hour (CET = UTC+1) as an aware UTC instant."""
    return datetime(2026, 1, day, tzinfo=UTC) + timedelta(hours=hour - 1)


def clock(ticket, metric) -> SlaClock:
    return SlaClock.objects.get(ticket=ticket, metric=metric)


def state(ticket, metric, now) -> str:
    return clock_state(clock=clock(ticket, metric), now=now)


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
def filed(org, travel):
    """A P3 request filed Monday 10:00 Berlin."""
    travel(at(12, 10))
    return services.ticket_create(requester=org.employee, service=org.service, title="Laptop")


def test_clocks_start_when_ticket_is_created(filed):
    fr, res = clock(filed, "first_response"), clock(filed, "resolution")
    assert (fr.status, res.status) == ("running", "running")
    assert fr.running_since == res.running_since == at(12, 10)
    assert fr.deadline == at(12, 14)  # 4 business hours later, same day
    assert res.deadline == at(14, 10)  # 16 business hours = two working days


def test_only_business_time_counts_across_a_weekend(org, travel):
    travel(at(16, 16))  # Friday 16:00
    ticket = services.ticket_create(requester=org.employee, service=org.service, title="x")
    assert clock(ticket, "first_response").deadline == at(19, 12)  # Monday 12:00


def test_holidays_do_not_count(org, travel):
    from slas.services import calendar_save

    calendar = org.standard.current_version.calendar
    calendar_save(
        calendar=calendar,
        name=calendar.name,
        timezone_name="Europe/Berlin",
        week={d: [(time(9), time(17))] for d in range(5)},
        holidays={datetime(2026, 1, 13).date(): "Closed"},
    )
    travel(at(12, 16))  # Monday 16:00; Tuesday is a holiday
    ticket = services.ticket_create(requester=org.employee, service=org.service, title="x")
    assert clock(ticket, "first_response").deadline == at(14, 12)  # Wednesday 12:00


def test_24x7_calendar_counts_all_time(org, travel):
    from slas.services import calendar_save

    always = calendar_save(name="Always", timezone_name="UTC", always_open=True)
    service = ServiceFactory(department=org.it, standard=standard(name="24x7", calendar=always))
    travel(at(17, 23))  # Saturday night
    ticket = services.ticket_create(requester=org.employee, service=service, title="x")
    assert clock(ticket, "first_response").deadline == at(17, 23) + 4 * H


def test_waiting_on_customer_pauses_both_clocks(org, filed, travel):
    travel(at(12, 11))
    services.ticket_transition(ticket=filed, actor=org.it_agent, to_status="open")
    travel(at(12, 12))
    services.ticket_transition(ticket=filed, actor=org.it_agent, to_status="waiting_on_customer")
    for metric in ("first_response", "resolution"):
        paused = clock(filed, metric)
        assert paused.status == "paused"
        assert paused.elapsed == 2 * H
        assert paused.deadline is None
    assert state(filed, "resolution", at(20, 12)) == "paused"  # a week later: still paused


def test_resume_after_pause_keeps_elapsed_and_moves_deadline(org, filed, travel):
    travel(at(12, 11))
    services.ticket_transition(ticket=filed, actor=org.it_agent, to_status="open")
    travel(at(12, 12))
    services.ticket_transition(ticket=filed, actor=org.it_agent, to_status="waiting_on_customer")
    travel(at(13, 9))  # Tuesday 09:00: the customer answers
    services.ticket_comment(ticket=filed, author=org.employee, body="Here you go")
    fr = clock(filed, "first_response")
    assert fr.status == "running"
    assert fr.elapsed == 2 * H
    assert fr.deadline == at(13, 11)  # 2 h left


def test_first_response_stops_at_first_public_reply_by_supplier(org, filed, travel):
    travel(
        at(
            12,
            11,
        )
    )
    services.ticket_comment(ticket=filed, author=org.it_agent, body="On it")
    fr = clock(filed, "first_response")
    assert fr.status == "stopped"
    assert fr.elapsed == H
    assert state(filed, "first_response", at(12, 11)) == "met"
    assert clock(filed, "resolution").status == "running"


def test_internal_note_does_not_stop_first_response(org, filed, travel):
    travel(at(12, 11))
    services.ticket_comment(ticket=filed, author=org.it_agent, body="hmm", internal=True)
    assert clock(filed, "first_response").status == "running"


def test_requester_reply_does_not_stop_first_response(org, filed, travel):
    travel(at(12, 11))
    services.ticket_comment(ticket=filed, author=org.employee, body="any news?")
    assert clock(filed, "first_response").status == "running"


def test_public_reply_by_an_agent_of_another_department_does_not_stop_first_response(
    org, filed, travel
):
    # An HR agent watching the request is no member of the supplier (IT): no first response.
    services.ticket_set_watcher(ticket=filed, actor=org.it_agent, user=org.hr_agent)
    travel(at(12, 11))
    services.ticket_comment(ticket=filed, author=org.hr_agent, body="Same here")
    assert clock(filed, "first_response").status == "running"
    travel(at(12, 12))
    services.ticket_comment(ticket=filed, author=org.it_lead, body="Looking")
    fr = clock(filed, "first_response")
    assert (fr.status, fr.elapsed) == ("stopped", 2 * H)


def test_resolving_without_reply_stops_first_response(org, filed, travel):
    travel(at(12, 11))
    services.ticket_transition(ticket=filed, actor=org.it_agent, to_status="open")
    travel(at(12, 13))
    services.ticket_transition(ticket=filed, actor=org.it_agent, to_status="resolved")
    fr, res = clock(filed, "first_response"), clock(filed, "resolution")
    assert (fr.status, fr.elapsed) == ("stopped", 3 * H)
    assert (res.status, res.elapsed) == ("stopped", 3 * H)


def test_reopen_resumes_resolution_keeping_time(org, filed, travel):
    travel(at(12, 11))
    services.ticket_comment(ticket=filed, author=org.it_agent, body="Fixed?")
    travel(at(12, 13))
    services.ticket_transition(ticket=filed, actor=org.it_agent, to_status="resolved")
    travel(at(13, 9))
    services.ticket_transition(ticket=filed, actor=org.employee, to_status="open")
    res = clock(filed, "resolution")
    assert (res.status, res.elapsed, res.running_since) == ("running", 3 * H, at(13, 9))
    assert res.deadline == at(14, 14)  # 13 h left: Tue 9–17 (8 h) + Wed 9–14
    assert clock(filed, "first_response").status == "stopped"  # first response stays stopped


def test_cancel_stops_both_clocks_as_cancelled(org, filed, travel):
    travel(at(12, 12))
    services.ticket_transition(ticket=filed, actor=org.employee, to_status="cancelled")
    for metric in ("first_response", "resolution"):
        assert clock(filed, metric).status == "cancelled"
        assert state(filed, metric, at(30, 12)) == "cancelled"
    assert filed.__class__.objects.get(pk=filed.pk).next_sla_event_at is None


def test_stopped_exactly_at_target_is_met(org, filed, travel):
    travel(at(12, 14))  # exactly 4 business hours
    services.ticket_comment(ticket=filed, author=org.it_agent, body="Answer")
    assert state(filed, "first_response", at(12, 14)) == "met"
    assert clock(filed, "first_response").breached_at is None


def test_breached_as_soon_as_elapsed_exceeds_target(org, filed, travel):
    assert state(filed, "first_response", at(12, 14)) == "running"
    assert state(filed, "first_response", at(12, 14) + timedelta(microseconds=1)) == "breached"


def test_stopping_after_deadline_records_breach(org, filed, travel):
    travel(at(12, 15))
    services.ticket_comment(ticket=filed, author=org.it_agent, body="Late answer")
    fr = clock(filed, "first_response")
    assert fr.breached_at == at(12, 14)
    assert state(filed, "first_response", at(12, 15)) == "breached"


def test_breach_is_never_undone_by_a_looser_target(org, filed, travel):
    travel(at(12, 15))
    services.ticket_transition(ticket=filed, actor=org.it_agent, to_status="open")
    services.ticket_change_priority(ticket=filed, actor=org.it_agent, priority="P4")  # 8 h
    fr = clock(filed, "first_response")
    assert fr.target == 8 * H
    assert fr.breached_at is not None
    travel(at(12, 16))
    services.ticket_comment(ticket=filed, author=org.it_agent, body="answer")
    assert state(filed, "first_response", at(12, 16)) == "breached"


def test_paused_clock_past_target_stays_breached(org, filed, travel):
    travel(at(12, 15))
    services.ticket_transition(ticket=filed, actor=org.it_agent, to_status="open")
    services.ticket_transition(ticket=filed, actor=org.it_agent, to_status="waiting_on_customer")
    assert state(filed, "first_response", at(12, 15)) == "breached"


def test_priority_change_retargets_keeping_elapsed(org, filed, travel):
    travel(at(12, 11))
    services.ticket_change_priority(ticket=filed, actor=org.it_agent, priority="P1")
    fr = clock(filed, "first_response")
    assert fr.target == H / 2
    assert fr.elapsed == H  # banked, then runs on
    assert fr.breached_at == at(12, 11)  # 1 h already counted > 30 min target
    res = clock(filed, "resolution")
    assert (res.target, res.elapsed) == (4 * H, H)
    assert res.deadline == at(12, 14)


def test_service_change_retargets_to_the_new_services_standard(org, filed, travel):
    faster = standard(
        name="Faster",
        targets={p: (H, 2 * H) for p in ("P1", "P2", "P3", "P4")},
    )
    other = ServiceFactory(department=org.it, standard=faster)
    travel(
        at(
            12,
            10,
        )
        + H / 2
    )
    services.ticket_change_service(ticket=filed, actor=org.it_agent, service=other)
    fr = clock(filed, "first_response")
    assert (fr.target, fr.elapsed) == (H, H / 2)
    assert fr.deadline == at(12, 11)


def test_next_sla_event_is_first_ladder_threshold_after_filing(filed):
    # 75 % of 4 h first response = 3 h → 13:00; earlier than any deadline.
    assert filed.__class__.objects.get(pk=filed.pk).next_sla_event_at == at(12, 13)


def test_next_sla_event_is_cleared_while_paused_and_restored_on_resume(org, filed, travel):
    Ticket = filed.__class__
    travel(at(12, 11))
    services.ticket_transition(ticket=filed, actor=org.it_agent, to_status="open")
    services.ticket_transition(ticket=filed, actor=org.it_agent, to_status="waiting_on_customer")
    assert Ticket.objects.get(pk=filed.pk).next_sla_event_at is None
    travel(at(13, 9))
    services.ticket_transition(ticket=filed, actor=org.employee, to_status="open")
    # 1 h counted; 75 % threshold at 3 h → 2 h more → Tuesday 11:00.
    assert Ticket.objects.get(pk=filed.pk).next_sla_event_at == at(13, 11)


def test_next_sla_event_moves_to_resolution_after_first_response(org, filed, travel):
    travel(at(12, 11))
    services.ticket_comment(ticket=filed, author=org.it_agent, body="On it")
    # Resolution 75 % of 16 h = 12 h business → Tuesday 14:00.
    assert filed.__class__.objects.get(pk=filed.pk).next_sla_event_at == at(13, 14)


def test_next_sla_event_skips_fired_levels(org, filed, travel):
    Escalation.objects.create(
        ticket=filed,
        metric="first_response",
        threshold="0.75",
        due_at=at(12, 13),
        fired_at=at(12, 13),
        actions=[],
    )
    sla_services.sla_refresh_next_event(ticket=filed)
    # Next: the 100 % first-response level and deadline at 14:00.
    assert filed.__class__.objects.get(pk=filed.pk).next_sla_event_at == at(12, 14)


def test_next_sla_event_is_cleared_when_resolved(org, filed, travel):
    travel(at(12, 11))
    services.ticket_transition(ticket=filed, actor=org.it_agent, to_status="open")
    services.ticket_transition(ticket=filed, actor=org.it_agent, to_status="resolved")
    assert filed.__class__.objects.get(pk=filed.pk).next_sla_event_at is None


def test_next_sla_event_after_priority_change(org, filed, travel):
    travel(at(12, 10) + H / 4)
    services.ticket_change_priority(ticket=filed, actor=org.it_agent, priority="P2")
    # P2 first response 1 h; 15 min counted; 75 % = 45 min → 30 min more → 10:45.
    assert filed.__class__.objects.get(pk=filed.pk).next_sla_event_at == at(12, 10) + 3 * H / 4


def test_next_sla_event_after_service_change(org, filed, travel):
    faster = standard(name="Faster", targets={p: (H, 2 * H) for p in ("P1", "P2", "P3", "P4")})
    other = ServiceFactory(department=org.it, standard=faster)
    travel(at(12, 10) + H / 2)
    services.ticket_change_service(ticket=filed, actor=org.it_agent, service=other)
    # New first response target 1 h; 30 min counted; 75 % = 45 min → 15 min more → 10:45.
    assert filed.__class__.objects.get(pk=filed.pk).next_sla_event_at == at(12, 10) + 3 * H / 4


def test_next_sla_event_after_cancel_is_cleared(org, filed, travel):
    travel(at(12, 11))
    services.ticket_transition(ticket=filed, actor=org.employee, to_status="cancelled")
    assert filed.__class__.objects.get(pk=filed.pk).next_sla_event_at is None


def test_next_sla_event_after_reopen_follows_the_resumed_resolution_clock(org, filed, travel):
    travel(at(12, 11))
    services.ticket_comment(ticket=filed, author=org.it_agent, body="Fixed?")
    travel(at(12, 13))
    services.ticket_transition(ticket=filed, actor=org.it_agent, to_status="resolved")
    assert filed.__class__.objects.get(pk=filed.pk).next_sla_event_at is None
    travel(at(13, 9))
    services.ticket_transition(ticket=filed, actor=org.employee, to_status="open")
    # Resolution 75 % of 16 h = 12 h; 3 h counted → 9 h more: Tue 9–17 + Wed 9–10.
    assert filed.__class__.objects.get(pk=filed.pk).next_sla_event_at == at(14, 10)


def test_next_sla_event_after_an_internal_note_is_unchanged(org, filed, travel):
    travel(at(12, 11))
    services.ticket_comment(ticket=filed, author=org.it_agent, body="hmm", internal=True)
    assert filed.__class__.objects.get(pk=filed.pk).next_sla_event_at == at(12, 13)


def test_working_day_stays_eight_hours_on_a_dst_day(org, travel):
    from slas.services import calendar_save

    sunday_shift = calendar_save(
        name="Sundays",
        timezone_name="Europe/Berlin",
        week={6: [(time(9), time(17))]},
    )
    service = ServiceFactory(
        department=org.it,
        standard=standard(
            name="Sunday",
            calendar=sunday_shift,
            targets={p: (8 * H, 16 * H) for p in ("P1", "P2", "P3", "P4")},
        ),
    )
    # 2026-03-29 is the spring-forward Sunday in Berlin (CET → CEST at 02:00).
    travel(datetime(2026, 3, 29, 7, 0, tzinfo=UTC))  # 09:00 CEST
    ticket = services.ticket_create(requester=org.employee, service=service, title="x")
    assert clock(ticket, "first_response").deadline == datetime(2026, 3, 29, 15, 0, tzinfo=UTC)
