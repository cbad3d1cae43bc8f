"""The incident importer on a committed cut of the real ServiceNow log (tests/data/)."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime

import pytest

from departments.models import Department, Membership, Service, User
from imports.models import ImportedIncident
from slas.models import SlaClock
from tests.import_helpers import (
    SAMPLE,
    TARGETS_24X7,
    run_import,
    sample_rows,
    standard_24x7,
    write_csv,
)
from tickets.models import Event, Ticket

pytestmark = pytest.mark.django_db

STATES = {
    "New",
    "Active",
    "Awaiting User Info",
    "Awaiting Problem",
    "Awaiting Vendor",
    "Awaiting Evidence",
    "Resolved",
    "Closed",
    "-100",
}


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def std(db):
    return standard_24x7()


def ticket(number: str) -> Ticket:
    return Ticket.objects.get(source_key=f"servicenow:{number}")


def statuses(number: str) -> list[tuple[str, str]]:
    return list(
        Event.objects.filter(ticket=ticket(number), kind=Event.Kind.STATUS)
        .order_by("created_at", "id")
        .values_list("before", "after")
    )


def clock(number: str, metric: str) -> SlaClock:
    return SlaClock.objects.get(ticket=ticket(number), metric=metric)


def test_sample_covers_every_state_a_reopen_and_malformed_rows():
    header, rows = sample_rows()
    state = header.index("incident_state")
    assert {row[state] for row in rows if len(row) == len(header)} == STATES
    assert any(len(row) != len(header) for row in rows)


def test_import_counts_incidents_events_and_skips_exactly(std):
    summary = run_import()

    assert summary.rows_read == 75
    assert summary.incidents_seen == 17
    assert summary.incidents_created == 16
    assert [p.number for p in summary.skipped_incidents] == ["INC0005690"]
    assert Ticket.objects.filter(source_key__startswith="servicenow:").count() == 16
    assert ImportedIncident.objects.count() == 16
    # 60 usable rows → one import event each; 16 filings; 54 status steps (13 tickets go
    # new→open→resolved→closed, three have five steps); 13 assignee changes; one priority change.
    assert _count_by_kind() == {
        "import": 60,
        "created": 16,
        "status": 54,
        "assigned": 13,
        "priority": 1,
    }
    assert summary.events_created == 144
    assert summary.clocks_written == 32
    assert SlaClock.objects.count() == 32


def _count_by_kind() -> dict[str, int]:
    counts: dict[str, int] = {}
    for kind in Event.objects.values_list("kind", flat=True):
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def test_malformed_rows_are_reported_with_their_line_numbers(std):
    summary = run_import()

    assert summary.skipped_by_reason() == {
        "empty caller_id": [24, 25, 26, 27, 28, 29, 30],
        "unknown incident_state '-100'": [46, 47, 58, 59, 60],
        "empty sys_updated_at": [74],
        "empty priority": [75],
        "wrong number of cells (3 cells, expected 36)": [76],
    }
    assert not Ticket.objects.filter(source_key="servicenow:INC0005690").exists()


def test_incident_with_malformed_rows_is_imported_from_its_other_rows(std):
    run_import()

    # INC0030413: 9 rows, three of them `-100`; the six others make the whole history.
    assert ImportedIncident.objects.get(source_key="servicenow:INC0030413").row_count == 6
    assert statuses("INC0030413") == [
        ("new", "open"),
        ("open", "resolved"),
        ("resolved", "closed"),
    ]


def test_status_history_of_a_reopened_incident(std):
    run_import()

    reopened = ticket("INC0011848")
    assert statuses("INC0011848") == [
        ("new", "open"),
        ("open", "resolved"),
        ("resolved", "open"),
        ("open", "resolved"),
        ("resolved", "closed"),
    ]
    assert (reopened.reopen_count, reopened.resolution_count) == (1, 2)
    assert reopened.status == "closed"
    assert reopened.resolved_at == utc(2016, 3, 29, 22, 52)
    assert reopened.closed_at == utc(2016, 4, 3, 22, 59)
    # Resolution ran 10:45 → 10:45 (resolved on filing), then 14:07 → 22:52 after the reopen.
    resolution = clock("INC0011848", "resolution")
    assert resolution.elapsed == utc(2016, 3, 29, 22, 52) - utc(2016, 3, 29, 14, 7)
    assert resolution.stopped_at == utc(2016, 3, 29, 22, 52)


def test_closed_then_active_in_the_source_counts_as_a_resolution_and_a_reopen(std):
    run_import()

    assert statuses("INC0103733") == [
        ("new", "open"),
        ("open", "resolved"),
        ("resolved", "open"),
        ("open", "resolved"),
        ("resolved", "closed"),
    ]
    note = Event.objects.get(
        ticket=ticket("INC0103733"),
        kind=Event.Kind.IMPORT,
        after__state="Closed",
        after__sequence="4",
    )
    assert note.after["note"] == "closed in the source, reopened later"
    assert ticket("INC0103733").reopen_count == 1


def test_awaiting_user_info_pauses_the_clocks(std):
    run_import()

    waited = ticket("INC0006672")
    assert statuses("INC0006672") == [
        ("new", "open"),
        ("open", "waiting_on_customer"),
        ("waiting_on_customer", "open"),
        ("open", "resolved"),
        ("resolved", "closed"),
    ]
    # Filed 14/3 12:12, first update (Active) 12:19, waiting 15:29 → 31/3 18:46, resolved
    # 18:47: 3 h 17 min + 1 min count; the 17 days waiting on the caller do not.
    resolution = clock("INC0006672", "resolution")
    assert resolution.elapsed == (utc(2016, 3, 14, 15, 29) - utc(2016, 3, 14, 12, 12)) + (
        utc(2016, 3, 31, 18, 47) - utc(2016, 3, 31, 18, 46)
    )
    assert resolution.status == "stopped" and resolution.breached_at is None
    first_response = clock("INC0006672", "first_response")
    assert first_response.elapsed == utc(2016, 3, 14, 12, 19) - utc(2016, 3, 14, 12, 12)
    assert waited.first_responded_at == utc(2016, 3, 14, 12, 19)


def test_other_awaiting_states_keep_the_ticket_open_with_a_note(std):
    run_import()

    assert statuses("INC0027621") == [
        ("new", "open"),
        ("open", "resolved"),
        ("resolved", "closed"),
    ]
    awaiting = Event.objects.get(ticket=ticket("INC0027621"), field="awaiting")
    assert awaiting.after["awaiting"] == "Awaiting Vendor"
    assert awaiting.created_at == utc(2016, 5, 9, 16, 38)
    # Waiting for a vendor is the supplier's problem: the clock ran all along, and breached.
    resolution = clock("INC0027621", "resolution")
    assert resolution.elapsed == utc(2016, 7, 7, 9, 32) - utc(2016, 5, 9, 16, 36)
    assert resolution.breached_at == utc(2016, 5, 10, 16, 36)


def test_every_update_row_becomes_an_event_at_its_own_timestamp(std):
    run_import()

    events = Event.objects.filter(ticket=ticket("INC0000045"), kind=Event.Kind.IMPORT).order_by(
        "created_at", "id"
    )
    assert [(e.created_at, e.after["state"]) for e in events] == [
        (utc(2016, 2, 29, 1, 23), "New"),
        (utc(2016, 2, 29, 8, 53), "Resolved"),
        (utc(2016, 2, 29, 11, 29), "Resolved"),
        (utc(2016, 3, 5, 12, 0), "Closed"),
    ]
    assert [e.after["line"] for e in events] == [2, 3, 4, 5]
    created = Event.objects.get(ticket=ticket("INC0000045"), kind=Event.Kind.CREATED)
    assert created.created_at == utc(2016, 2, 29, 1, 16)


def test_priority_change_retargets_the_clocks(std):
    run_import()

    changed = ticket("INC0030402")
    assert changed.priority == "P2"
    assert list(
        Event.objects.filter(ticket=changed, kind=Event.Kind.PRIORITY).values_list(
            "before", "after"
        )
    ) == [("P3", "P2")]
    resolution = clock("INC0030402", "resolution")
    assert resolution.target == TARGETS_24X7["P2"][1]
    assert resolution.elapsed == utc(2016, 5, 17, 14, 57) - utc(2016, 5, 17, 14, 31)


def test_priorities_map_to_p1_to_p4(std):
    run_import()

    assert {
        number: ticket(number).priority
        for number in ("INC0001549", "INC0000645", "INC0000045", "INC0000199")
    } == {"INC0001549": "P1", "INC0000645": "P2", "INC0000045": "P3", "INC0000199": "P4"}


def test_groups_become_supplier_departments_and_locations_customer_departments(std):
    run_import()

    first = ticket("INC0000045")
    assert first.supplier_department.name == "Group 56"
    assert first.supplier_department.code == "G56"
    assert first.reference == "G56-1"
    assert first.customer_department.name == "Location 143"
    assert first.requester.home_department == first.customer_department
    assert first.service.name == "Category 55"
    assert first.service.department == first.supplier_department
    assert first.title == "Category 55 / Subcategory 170: Symptom 72"
    assert "10.24432/C57S4H" in first.description
    assert ticket("INC0003450").supplier_department.name == "No assignment group"


def test_incident_without_location_or_category_still_imports(std):
    run_import()

    bare = ticket("INC0001766")
    assert bare.customer_department is None
    assert bare.service.name == "Uncategorised"
    assert bare.title == "Incident INC0001766"


def test_people_are_inactive_accounts_that_cannot_sign_in(std, client):
    run_import()

    caller = User.objects.get(username="servicenow-caller-2403")
    assert caller.first_name == "Caller 2403"
    assert not caller.is_active
    assert not caller.has_usable_password()
    assert not client.login(username=caller.username, password="")
    agent = User.objects.get(username="servicenow-resolver-17")
    assert Membership.objects.filter(user=agent, department__name="Group 70").exists()
    assert ticket("INC0011848").assignee.username == "servicenow-resolver-26"


@pytest.mark.parametrize("recheck", [False, True], ids=["same-file", "recheck"])
def test_reimport_changes_nothing_and_duplicates_nothing(std, recheck):
    run_import()
    counts = _table_counts()
    first_refs = dict(Ticket.objects.values_list("source_key", "reference"))

    again = run_import(recheck=recheck)

    assert (again.incidents_created, again.incidents_updated) == (0, 0)
    assert again.incidents_unchanged == 16
    assert again.events_created == 0
    assert len(again.skipped_rows) == 15
    assert (again.up_to_date_since is not None) == (not recheck)
    assert _table_counts() == counts
    assert dict(Ticket.objects.values_list("source_key", "reference")) == first_refs


def test_reimport_recreates_an_imported_ticket_deleted_since(std):
    run_import()
    ticket("INC0000045").delete()

    again = run_import()

    assert (again.incidents_created, again.incidents_unchanged) == (1, 15)
    assert ticket("INC0000045").status == "closed"
    assert Ticket.objects.filter(source_key__startswith="servicenow:").count() == 16


def test_reimport_of_a_longer_export_appends_only_the_new_rows(std, tmp_path):
    header, rows = sample_rows()
    # The first export ends before INC0000045 was closed (its Closed row is line 5).
    shorter = write_csv(tmp_path / "shorter.csv", header, rows[:3] + rows[4:])
    run_import(shorter)
    assert ticket("INC0000045").status == "resolved"
    events_before = Event.objects.count()
    reference = ticket("INC0000045").reference

    summary = run_import()

    assert (summary.incidents_created, summary.incidents_updated) == (0, 1)
    closed = ticket("INC0000045")
    assert closed.status == "closed"
    assert closed.reference == reference
    # The Closed row, its status step, and one note that the incident was re-imported.
    assert Event.objects.count() == events_before + 3
    assert statuses("INC0000045") == [
        ("new", "open"),
        ("open", "resolved"),
        ("resolved", "closed"),
    ]
    assert Ticket.objects.filter(source_key="servicenow:INC0000045").count() == 1
    assert SlaClock.objects.filter(ticket=closed).count() == 2


def test_reimport_under_another_standard_recomputes_the_clocks(std):
    run_import()
    from tests import factories

    factories.standard(
        name="Strict",
        calendar=std.current_version.calendar,
        targets={p: (t[0] / 4, t[1] / 4) for p, t in TARGETS_24X7.items()},
    )

    summary = run_import(standard="Strict")

    assert summary.incidents_updated == 16
    assert set(SlaClock.objects.values_list("version__standard__name", flat=True)) == {"Strict"}
    assert SlaClock.objects.count() == 32
    assert Ticket.objects.filter(source_key__startswith="servicenow:").count() == 16


def _table_counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (
            Ticket,
            Event,
            SlaClock,
            Department,
            User,
            Membership,
            Service,
            ImportedIncident,
        )
    }


def test_dry_run_writes_nothing(std):
    before = _table_counts()
    last_numbers = dict(Department.objects.values_list("pk", "last_ticket_number"))

    summary = run_import(dry_run=True)

    assert _table_counts() == before
    assert dict(Department.objects.values_list("pk", "last_ticket_number")) == last_numbers
    assert summary.dry_run
    assert summary.incidents_created == 16
    assert summary.events_created == 144
    assert summary.clocks_written == 32
    assert len(summary.skipped_rows) == 15


def test_dry_run_reports_what_a_real_import_creates(std):
    dry = run_import(dry_run=True)
    real = run_import()

    for name in (
        "incidents_created",
        "events_created",
        "clocks_written",
        "departments_created",
        "people_created",
        "memberships_created",
        "services_created",
    ):
        assert getattr(dry, name) == getattr(real, name), name
    assert dry.outcomes == real.outcomes


def test_zip_is_read_as_it_is(std, tmp_path):
    archive = tmp_path / "log.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as handle:
        handle.write(SAMPLE, arcname="incident_event_log.csv")

    summary = run_import(archive)

    assert summary.incidents_created == 16
    assert summary.rows_read == 75


def test_dates_are_read_in_the_zone_given(std):
    run_import(timezone="Europe/Berlin")

    # 29/2/2016 01:16 in Berlin (CET, UTC+1) is 00:16 UTC.
    assert ticket("INC0000045").created_at == utc(2016, 2, 29, 0, 16)
    assert ImportedIncident.objects.get(source_key="servicenow:INC0000045").timezone == (
        "Europe/Berlin"
    )


def test_reimport_in_another_zone_is_refused_per_incident(std):
    run_import()
    events = Event.objects.count()

    summary = run_import(timezone="Europe/Berlin")

    assert summary.incidents_updated == 0
    assert len(summary.skipped_incidents) == 17
    assert "imported earlier with --timezone UTC" in summary.skipped_incidents[-1].reason
    assert Event.objects.count() == events


def test_reference_numbers_continue_the_supplier_sequence(std):
    from tests import factories
    from tickets import services as ticket_services

    group = factories.DepartmentFactory(
        name="Group 70", slug="group-70", code="NET", default_standard=std
    )
    Department.objects.filter(pk=group.pk).update(last_ticket_number=41)

    run_import()

    assert sorted(
        Ticket.objects.filter(supplier_department=group).values_list("number", flat=True)
    ) == [42, 43, 44]
    service = Service.objects.get(department=group, name="Category 42")
    requester = factories.UserFactory()
    filed = ticket_services.ticket_create(requester=requester, service=service, title="Printer")
    assert filed.reference == "NET-45"


def test_import_queries_do_not_grow_per_row(std, django_assert_max_num_queries):
    # Batches, not rows, cost queries: the whole sample (72 rows) is one batch of bulk
    # statements, plus the per-ticket refresh of the reporting roll-ups (16 tickets × 4 roll-up
    # tables since the day × pair roll-up joined them).
    with django_assert_max_num_queries(220):
        run_import()
