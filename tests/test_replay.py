"""The what-if replay agrees with the live engine, and a proposal flags the right tickets.

Tickets are built through the real ticket services with time travel; the org standard is
Mon–Fri 09:00–17:00 Europe/Berlin, P3 = 4 h first response / 16 h resolution, P1 = 30 min /
4 h. 2026-01-12 is a Monday (CET, UTC+1).
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from slas import replay
from slas import services as sla_services
from slas.models import SlaClock, StandardVersion
from tests.factories import DEFAULT_LADDER, DEFAULT_TARGETS, ServiceFactory, standard
from tickets import services

H = timedelta(hours=1)
CLOCK_FIELDS = ("status", "target", "elapsed", "running_since", "deadline", "stopped_at")


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


def file(org, travel, when, *, priority="P3", service=None, title="Request"):
    travel(when)
    return services.ticket_create(
        requester=org.employee, service=service or org.service, title=title, priority=priority
    )


def move(org, travel, ticket, when, status, actor=None):
    travel(when)
    return services.ticket_transition(ticket=ticket, actor=actor or org.it_agent, to_status=status)


def reply(travel, ticket, when, author, body="On it"):
    travel(when)
    return services.ticket_comment(ticket=ticket, author=author, body=body)


@pytest.fixture
def history(org, travel):
    """A fortnight of varied tickets, every SPEC §3 path at least once."""
    other_standard = standard(
        name="Fast lane", targets={p: (H / 4, 2 * H) for p in ("P1", "P2", "P3", "P4")}
    )
    fast_service = ServiceFactory(department=org.it, name="Password reset", standard=other_standard)
    tickets = {}

    t = tickets["answered_in_time"] = file(org, travel, at(12, 10))
    reply(travel, t, at(12, 11), org.it_agent)
    move(org, travel, t, at(12, 15), "resolved")

    t = tickets["resolved_late_without_reply"] = file(
        org,
        travel,
        at(
            12,
            10,
        ),
    )
    move(org, travel, t, at(12, 11), "open")
    move(org, travel, t, at(15, 12), "resolved")

    t = tickets["paused_and_answered"] = file(org, travel, at(12, 16))
    reply(travel, t, at(13, 9.5), org.it_agent)
    move(org, travel, t, at(13, 10), "waiting_on_customer")
    reply(travel, t, at(14, 15), org.employee, "Here you go")  # requester → open again
    move(org, travel, t, at(15, 11), "resolved")

    t = tickets["reopened"] = file(org, travel, at(13, 9))
    reply(travel, t, at(13, 9.25), org.it_lead)
    move(org, travel, t, at(13, 12), "resolved")
    move(org, travel, t, at(14, 10), "open", actor=org.employee)
    move(org, travel, t, at(16, 16), "resolved")

    t = tickets["cancelled"] = file(org, travel, at(13, 11))
    move(org, travel, t, at(13, 12), "cancelled", actor=org.employee)

    t = tickets["priority_raised"] = file(org, travel, at(14, 9))
    travel(at(14, 10))
    services.ticket_change_priority(ticket=t, actor=org.it_agent, priority="P1")
    reply(travel, t, at(14, 12), org.it_agent)

    t = tickets["moved_to_fast_lane"] = file(org, travel, at(14, 13))
    travel(at(14, 13.1))
    services.ticket_change_service(ticket=t, actor=org.it_agent, service=fast_service)
    reply(travel, t, at(14, 13.2), org.it_agent)

    tickets["filed_on_fast_lane"] = file(org, travel, at(15, 9), service=fast_service)

    t = tickets["internal_note_is_no_reply"] = file(org, travel, at(15, 10))
    travel(at(15, 11))
    services.ticket_comment(ticket=t, author=org.it_agent, body="hmm", internal=True)

    t = tickets["still_open"] = file(org, travel, at(19, 9), priority="P1")
    reply(travel, t, at(19, 9.25), org.it_agent)
    move(org, travel, t, at(19, 10), "waiting_on_customer")

    # A new version of the org standard: P3 gets 2 h / 8 h from Tuesday 20th on.
    travel(at(20, 8))
    sla_services.standard_publish(
        standard=org.standard,
        name=org.standard.name,
        calendar=org.standard.current_version.calendar,
        targets={**DEFAULT_TARGETS, "P3": (2 * H, 8 * H)},
        ladder=DEFAULT_LADDER,
    )
    t = tickets["under_v2"] = file(org, travel, at(20, 10))
    reply(travel, t, at(20, 13), org.it_agent)
    tickets["under_v2_late"] = file(org, travel, at(21, 9))
    tickets["under_v2_running"] = file(org, travel, at(22, 11))
    travel(at(22, 12))
    return tickets


def stored(ticket):
    return {c.metric: c for c in SlaClock.objects.filter(ticket=ticket)}


def test_replaying_the_recorded_versions_gives_exactly_the_stored_clocks(history):
    tickets = list(history.values())
    replayed = replay.replay_recorded(tickets)
    for name, ticket in history.items():
        live = stored(ticket)
        clocks = {c.metric: c for c in replayed[ticket.pk]}
        assert set(clocks) == set(live), name
        for metric, clock in clocks.items():
            for field in CLOCK_FIELDS:
                assert getattr(clock, field) == getattr(live[metric], field), (name, metric, field)
            assert clock.breached_at == live[metric].breached_at, (name, metric)
            assert clock.version.version_id == live[metric].version_id, (name, metric)


def test_history_paths_produce_every_state(history):
    from slas.rules import clock_state

    now = at(22, 12)
    states = {
        clock_state(c, now) for t in history.values() for c in SlaClock.objects.filter(ticket=t)
    }
    assert {"met", "breached", "paused", "cancelled", "running"} <= states


def test_version_is_chosen_by_filing_time(org, history):
    v1, v2 = StandardVersion.objects.filter(standard=org.standard).order_by("number")
    assert {c.version_id for c in SlaClock.objects.filter(ticket=history["reopened"])} == {v1.pk}
    assert {c.version_id for c in SlaClock.objects.filter(ticket=history["under_v2"])} == {v2.pk}
    replayed = replay.replay_recorded([history["reopened"], history["under_v2"]])
    assert replayed[history["under_v2"].pk][0].version.version_id == v2.pk
    assert replayed[history["reopened"].pk][0].version.version_id == v1.pk


def proposal_from_current(org, **changes) -> replay.Proposal:
    version = org.standard.current_version
    proposal = replay.Proposal(
        standard_id=org.standard.pk,
        calendar_id=version.calendar_id,
        targets={t.priority: (t.first_response, t.resolution) for t in version.targets.all()},
        ladder=[(lv.metric, lv.threshold, lv.actions) for lv in version.levels.all()],
        service_ids=[],
        department_ids=[],
        days=30,
    )
    for key, value in changes.items():
        setattr(proposal, key, value)
    return proposal


def test_whatif_with_the_current_standard_changes_nothing(org, travel):
    travel(at(12, 9))
    tickets = [file(org, travel, at(12, 9 + i), title=f"t{i}") for i in range(4)]
    reply(travel, tickets[0], at(12, 9.5), org.it_agent)
    move(org, travel, tickets[0], at(12, 16), "resolved")
    move(org, travel, tickets[1], at(12, 11.5), "open")
    move(org, travel, tickets[1], at(12, 12), "waiting_on_customer")
    move(org, travel, tickets[2], at(16, 11), "open")
    move(org, travel, tickets[2], at(16, 12), "resolved")
    now = at(19, 12)
    result = replay.run_whatif(proposal_from_current(org), now=now)
    assert result["tickets"] == 4
    assert result["changed_count"] == 0
    for per_priority in result["figures"].values():
        for per_metric in per_priority.values():
            assert per_metric["actual"] == per_metric["predicted"]


def test_whatif_with_a_stricter_standard_flags_exactly_the_tickets_that_would_breach(org, travel):
    fast = file(org, travel, at(12, 10), title="fast")
    reply(travel, fast, at(12, 10.25), org.it_agent)  # 15 min: met under both
    medium = file(org, travel, at(12, 11), title="medium")
    reply(travel, medium, at(12, 13), org.it_agent)  # 2 h: met now, breached under 1 h
    slow = file(org, travel, at(12, 12), title="slow")
    reply(travel, slow, at(13, 12), org.it_agent)  # 8 h: breached under both
    stricter = {**DEFAULT_TARGETS, "P3": (H, 16 * H)}
    result = replay.run_whatif(proposal_from_current(org, targets=stricter), now=at(19, 9))
    flagged = {row["reference"]: row for row in result["changed"]}
    assert set(flagged) == {medium.reference}
    assert flagged[medium.reference]["first_response"] == ["met", "breached"]
    p3 = result["figures"]["P3"]["first_response"]
    assert (p3["actual"]["met"], p3["actual"]["breached"]) == (2, 1)
    assert (p3["predicted"]["met"], p3["predicted"]["breached"]) == (1, 2)
    assert p3["actual"]["compliance"] == 66.7 and p3["predicted"]["compliance"] == 33.3


def test_whatif_covers_only_the_last_n_days_of_the_affected_services(org, travel):
    old = file(org, travel, at(2, 10), title="too old")
    recent = file(org, travel, at(12, 10), title="recent")
    file(org, travel, at(12, 10), service=org.hr_service, title="other department")
    proposal = proposal_from_current(org, days=7, standard_id=None, service_ids=[org.service.pk])
    queryset = replay.whatif_tickets(proposal, now=at(14, 10))
    assert list(queryset) == [recent]
    assert old not in queryset


def test_whatif_for_a_new_standard_replays_tickets_that_had_none(org, travel):
    bare = ServiceFactory(department=org.hr, name="Unmeasured", standard=None)
    org.hr.default_standard = None
    org.hr.save()
    ticket = file(org, travel, at(12, 10), service=bare)
    assert not SlaClock.objects.filter(ticket=ticket).exists()
    proposal = proposal_from_current(org, standard_id=None, department_ids=[org.hr.pk])
    result = replay.run_whatif(proposal, now=at(12, 16))
    assert result["changed"][0]["reference"] == ticket.reference
    assert result["changed"][0]["first_response"] == ["none", "breached"]


def test_whatif_reports_ladder_levels_that_would_fire(org, travel):
    ticket = file(org, travel, at(12, 10))
    reply(travel, ticket, at(12, 13.5), org.it_agent)  # 3.5 h of 4 h: past 75 %
    proposal = proposal_from_current(
        org, ladder=[("first_response", Decimal("0.75"), ["notify_assignee"])]
    )
    result = replay.run_whatif(proposal, now=at(13, 9))
    assert result["ladder"] == [
        {"metric": "first_response", "threshold": "0.75", "tickets": 1},
    ]


def test_whatif_reports_progress_per_batch(org, travel, monkeypatch):
    monkeypatch.setattr(replay, "BATCH_SIZE", 2)
    for i in range(5):
        file(org, travel, at(12, 10 + i / 10), title=f"t{i}")
    calls = []
    replay.run_whatif(
        proposal_from_current(org), now=at(13, 9), progress=lambda d, t: calls.append((d, t))
    )
    assert calls == [(0, 5), (2, 5), (4, 5), (5, 5)]


def test_proposal_round_trips_through_json(org):
    proposal = proposal_from_current(org, service_ids=[3], department_ids=[4])
    assert replay.Proposal.from_json(proposal.to_json()) == proposal


def test_replay_of_a_ticket_loads_in_bounded_queries(org, travel, django_assert_max_num_queries):
    tickets = [file(org, travel, at(12, 10), title=f"t{i}") for i in range(20)]
    for t in tickets:
        reply(travel, t, at(12, 11), org.it_agent)
    with django_assert_max_num_queries(12):
        replay.replay_recorded(tickets)
