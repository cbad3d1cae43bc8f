"""Configuration use cases: versions, re-targeting open tickets, assignments, replay jobs."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from audit.models import AuditRecord
from slas import replay
from slas import services as sla_services
from slas.jobs import replay_whatif
from slas.models import ReplayJob, SlaClock
from tests.factories import DEFAULT_LADDER, DEFAULT_TARGETS, ServiceFactory, standard
from tickets import services
from tickets.models import Event

H = timedelta(hours=1)


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


def publish_stricter(org, **kwargs):
    return sla_services.standard_publish(
        standard=org.standard,
        name=org.standard.name,
        calendar=org.standard.current_version.calendar,
        targets={**DEFAULT_TARGETS, "P3": (2 * H, 8 * H)},
        ladder=DEFAULT_LADDER,
        actor=org.admin,
        **kwargs,
    )


def clocks(ticket):
    return {c.metric: c for c in SlaClock.objects.select_related("version").filter(ticket=ticket)}


def test_a_new_version_applies_to_tickets_filed_from_then_on(org, travel):
    travel(at(12, 10))
    before = services.ticket_create(requester=org.employee, service=org.service, title="a")
    travel(at(12, 11))
    publish_stricter(org)
    travel(at(12, 12))
    after = services.ticket_create(requester=org.employee, service=org.service, title="b")
    assert clocks(before)["first_response"].version.number == 1
    assert clocks(before)["first_response"].target == 4 * H
    assert clocks(after)["first_response"].version.number == 2
    assert clocks(after)["first_response"].target == 2 * H


def test_versions_are_kept(org, travel):
    travel(at(12, 11))
    publish_stricter(org, note="Stricter P3")
    numbers = list(org.standard.versions.order_by("number").values_list("number", "note"))
    assert numbers == [(1, ""), (2, "Stricter P3")]


def test_retarget_open_tickets_keeps_elapsed_and_writes_an_event(org, travel):
    travel(at(12, 10))
    ticket = services.ticket_create(requester=org.employee, service=org.service, title="a")
    travel(at(12, 11))
    publish_stricter(org)
    travel(at(12, 11.5))
    moved = sla_services.standard_retarget_open_tickets(standard=org.standard, actor=org.admin)
    assert moved == 1
    fr = clocks(ticket)["first_response"]
    assert fr.version.number == 2
    assert fr.target == 2 * H
    assert fr.elapsed == 1.5 * H  # kept: banked at the re-target instant
    assert fr.running_since == at(12, 11.5)
    assert fr.deadline == at(12, 12)  # 30 min left of the new 2 h
    event = Event.objects.get(ticket=ticket, kind="sla")
    assert event.field == "standard_version"
    assert event.before["number"] == 1 and event.after["number"] == 2
    assert event.actor == org.admin


def test_retarget_leaves_stopped_clocks_and_current_tickets_alone(org, travel):
    travel(at(12, 10))
    done = services.ticket_create(requester=org.employee, service=org.service, title="done")
    services.ticket_transition(ticket=done, actor=org.it_agent, to_status="open")
    services.ticket_transition(ticket=done, actor=org.it_agent, to_status="resolved")
    travel(at(12, 11))
    publish_stricter(org)
    current = services.ticket_create(requester=org.employee, service=org.service, title="new")
    moved = sla_services.standard_retarget_open_tickets(standard=org.standard, actor=org.admin)
    assert moved == 0
    assert {c.version.number for c in clocks(done).values()} == {1}
    assert not Event.objects.filter(ticket__in=[done, current], kind="sla").exists()


def test_retarget_that_exceeds_the_new_target_breaches_at_once(org, travel):
    travel(at(12, 9))
    ticket = services.ticket_create(requester=org.employee, service=org.service, title="a")
    travel(at(12, 12))
    publish_stricter(org)
    sla_services.standard_retarget_open_tickets(standard=org.standard, actor=org.admin)
    assert clocks(ticket)["first_response"].breached_at == at(12, 12)


def test_retarget_is_on_the_audit_trail(org, travel):
    travel(at(12, 10))
    services.ticket_create(requester=org.employee, service=org.service, title="a")
    publish_stricter(org)
    sla_services.standard_retarget_open_tickets(standard=org.standard, actor=org.admin)
    record = AuditRecord.objects.get(action="standard.retarget_open_tickets")
    assert record.actor == org.admin and record.after == {"version": 2, "tickets": 1}


def test_replay_after_retarget_still_equals_the_stored_clocks(org, travel):
    travel(at(12, 10))
    ticket = services.ticket_create(requester=org.employee, service=org.service, title="a")
    travel(at(12, 11))
    publish_stricter(org)
    travel(at(12, 11.5))
    sla_services.standard_retarget_open_tickets(standard=org.standard, actor=org.admin)
    travel(at(13, 10))
    services.ticket_comment(ticket=ticket, author=org.it_agent, body="done")
    (fr, res) = replay.replay_recorded([ticket])[ticket.pk]
    live = clocks(ticket)
    for clock in (fr, res):
        stored = live[clock.metric]
        assert (clock.status, clock.elapsed, clock.target, clock.breached_at) == (
            stored.status,
            stored.elapsed,
            stored.target,
            stored.breached_at,
        )
        assert clock.version.version_id == stored.version_id


def test_publishing_records_before_and_after_on_the_audit_trail(org, travel):
    publish_stricter(org)
    record = AuditRecord.objects.filter(action="standard.publish").latest("id")
    assert record.actor == org.admin
    assert record.before["version"] == 1 and record.after["version"] == 2
    assert record.after["targets"]["P3"] == ["2:00:00", "8:00:00"]


def test_assign_sets_services_and_department_defaults(org):
    new = standard(name="HR standard", department=org.hr)
    letters = org.hr_service
    sla_services.standard_assign(
        standard=new, services=[letters], departments=[org.hr], actor=org.admin
    )
    letters.refresh_from_db()
    org.hr.refresh_from_db()
    assert letters.standard == new and org.hr.default_standard == new
    actions = set(AuditRecord.objects.values_list("action", flat=True))
    assert {"standard.assign_service", "standard.assign_department"} <= actions


def test_assign_removes_what_is_no_longer_chosen(org):
    new = standard(name="HR standard", department=org.hr)
    sla_services.standard_assign(
        standard=new, services=[org.hr_service], departments=[org.hr], actor=org.admin
    )
    sla_services.standard_assign(standard=new, services=[], departments=[], actor=org.admin)
    org.hr_service.refresh_from_db()
    org.hr.refresh_from_db()
    assert org.hr_service.standard is None and org.hr.default_standard is None


def test_assign_outside_the_scope_is_refused(org):
    from servicedesk.errors import DomainError

    new = standard(name="IT standard", department=org.it)
    with pytest.raises(DomainError):
        sla_services.standard_assign(
            standard=new,
            services=[org.hr_service],
            departments=[],
            actor=org.it_lead,
            scope_department_ids={org.it.pk},
        )


def test_assign_within_scope_leaves_other_departments_untouched(org):
    new = standard(name="Shared", department=org.it)
    it_service = ServiceFactory(department=org.it, name="Printers")
    sla_services.standard_assign(
        standard=new, services=[org.hr_service, it_service], departments=[], actor=org.admin
    )
    sla_services.standard_assign(
        standard=new,
        services=[],
        departments=[],
        actor=org.it_lead,
        scope_department_ids={org.it.pk},
    )
    org.hr_service.refresh_from_db()
    it_service.refresh_from_db()
    assert org.hr_service.standard == new  # outside the lead's scope: kept
    assert it_service.standard is None


def proposal(org, **changes):
    version = org.standard.current_version
    result = replay.Proposal(
        standard_id=org.standard.pk,
        calendar_id=version.calendar_id,
        targets={t.priority: (t.first_response, t.resolution) for t in version.targets.all()},
        ladder=[],
        service_ids=[],
        department_ids=[],
        days=30,
    )
    for key, value in changes.items():
        setattr(result, key, value)
    return result


def test_replay_job_is_enqueued_on_commit(org, django_capture_on_commit_callbacks, monkeypatch):
    sent = []
    monkeypatch.setattr(sla_services, "replay_job_enqueue", lambda job_id: sent.append(job_id))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = sla_services.replay_job_create(
            proposal=proposal(org), actor=org.admin, standard=org.standard
        )
    assert len(callbacks) == 1 and sent == []
    callbacks[0]()
    assert sent == [job.pk]


def test_replay_task_runs_the_job_and_stores_result_and_progress(org, travel):
    travel(at(12, 10))
    for i in range(3):
        services.ticket_create(requester=org.employee, service=org.service, title=f"t{i}")
    travel(at(13, 10))
    job = sla_services.replay_job_create(proposal=proposal(org), actor=org.admin)
    assert replay_whatif(job.pk) == "done"
    job.refresh_from_db()
    assert job.status == ReplayJob.Status.DONE
    assert (job.done, job.total, job.percent) == (3, 3, 100)
    assert job.result["tickets"] == 3
    assert job.result["changed_count"] == 0


def test_replay_task_is_idempotent(org, travel):
    travel(at(12, 10))
    services.ticket_create(requester=org.employee, service=org.service, title="t")
    job = sla_services.replay_job_create(proposal=proposal(org), actor=org.admin)
    replay_whatif(job.pk)
    job.refresh_from_db()
    finished_at = job.finished_at
    assert replay_whatif(job.pk) == "done"
    job.refresh_from_db()
    assert job.finished_at == finished_at  # not run again


def test_replay_task_leaves_a_job_another_worker_runs(org, travel):
    travel(at(12, 10))
    job = sla_services.replay_job_create(proposal=proposal(org), actor=org.admin)
    ReplayJob.objects.filter(pk=job.pk).update(status="running", started_at=at(12, 10))
    assert replay_whatif(job.pk) == "running"
    travel(at(12, 12))  # two hours later the worker is presumed dead: run it again
    assert replay_whatif(job.pk) == "done"


def test_replay_task_for_a_missing_job_does_nothing(db):
    assert replay_whatif(999_999) == "gone"


def test_old_tickets_are_still_reported_against_the_version_they_were_filed_under(org, travel):
    """Issue 7 §3: a stricter version does not turn an old ticket's met target into a breach
    in the figures; the dashboards' selector and the metrics API count each ticket against
    the targets of its own version."""
    from tests.api_helpers import token_client

    travel(at(12, 10))
    old = services.ticket_create(requester=org.employee, service=org.service, title="old")
    travel(at(12, 13))  # answered after 3 business hours: met under v1 (4h)
    services.ticket_comment(ticket=old, author=org.it_agent, body="On it")
    travel(at(13, 9))
    publish_stricter(org)  # P3 first response now 2h
    travel(at(13, 10))
    new = services.ticket_create(requester=org.employee, service=org.service, title="new")
    travel(at(13, 13))  # answered after 3 business hours: breached under v2
    services.ticket_comment(ticket=new, author=org.it_agent, body="On it")
    travel(at(14, 9))

    assert (
        clocks(old)["first_response"].version.number,
        clocks(new)["first_response"].version.number,
    ) == (1, 2)
    from slas.selectors import clock_state

    now = at(14, 9)
    assert clock_state(clock=clocks(old)["first_response"], now=now) == "met"
    assert clock_state(clock=clocks(new)["first_response"], now=now) == "breached"
    body = (
        token_client(org.it_lead)
        .get("/api/v1/metrics/sla/?from=2026-01-12&to=2026-01-15&supplier_department=it")
        .json()
    )
    assert (body["first_response"]["met"], body["first_response"]["breached"]) == (1, 1)
