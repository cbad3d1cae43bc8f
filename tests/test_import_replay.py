"""The importer's clocks are the live engine's clocks.

The default engine replays an incident in memory through slas.rules; `engine="live"` calls
slas.services once per step with `now=` the step's instant, as live use would. Both must give
the same clocks field by field, on an office-hours calendar (the arithmetic that matters), for
finished incidents and for incidents cut short (running and paused clocks, pending ladder
levels).
"""

from __future__ import annotations

import pytest

from imports.replay import CLOCK_FIELDS, clock_snapshot
from slas.models import SlaClock
from slas.replay import replay_recorded
from tests.import_helpers import run_import, sample_rows, write_csv
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


def _stored() -> dict[str, dict]:
    clocks = {}
    for clock in SlaClock.objects.select_related("ticket").order_by("ticket_id", "metric"):
        clocks[(clock.ticket.source_key, clock.metric)] = clock_snapshot(clock)
    return clocks


def _planned(summary) -> dict[str, dict]:
    clocks = {}
    for plan, plan_clocks, _next in summary.plans:
        for clock in plan_clocks:
            clock.version_id = clock.version.pk
            clocks[(plan.source_key, clock.metric)] = clock_snapshot(clock)
    return clocks


@pytest.fixture
def office_standard(org):
    # tests/factories.build_org: "Standard" on a Berlin 09–17 weekday calendar.
    return org.standard


@pytest.fixture
def cut_sample(tmp_path):
    """Incidents cut short: up to their first wait for the caller, or without their last two
    rows, so tickets are left new, open or waiting."""
    header, rows = sample_rows()
    by_number: dict[str, list] = {}
    for row in rows:
        by_number.setdefault(row[0], []).append(row)
    kept = []
    for group in by_number.values():
        states = [row[1] for row in group]
        if "Awaiting User Info" in states:
            kept += group[: states.index("Awaiting User Info") + 1]
        else:
            kept += group[:-2]
    return write_csv(tmp_path / "cut.csv", header, kept)


@pytest.mark.parametrize("source", ["full", "cut"])
def test_pure_replay_equals_the_live_engine(office_standard, cut_sample, source):
    path = cut_sample if source == "cut" else None
    options = {"path": path} if path else {}
    planned = run_import(standard="Standard", dry_run=True, keep_plans=True, **options)

    run_import(standard="Standard", engine="live", **options)

    live = _stored()
    assert live, "the live engine wrote no clocks"
    assert _planned(planned) == live
    next_events = {plan.source_key: next_at for plan, _clocks, next_at in planned.plans}
    assert (
        dict(
            Ticket.objects.filter(source_key__in=next_events).values_list(
                "source_key", "next_sla_event_at"
            )
        )
        == next_events
    )
    if source == "cut":
        assert {c["status"] for c in live.values()} >= {"running", "paused", "stopped"}
        assert any(next_events.values())


@pytest.mark.parametrize("source", ["full", "cut"])
def test_live_and_replay_imports_store_the_same_clocks(office_standard, cut_sample, source):
    path = cut_sample if source == "cut" else None
    options = {"path": path} if path else {}
    run_import(standard="Standard", engine="live", **options)
    live = _stored()
    live_tickets = _ticket_sla_fields()
    Ticket.objects.filter(source_key__startswith="servicenow:").delete()

    run_import(standard="Standard", recheck=True, **options)

    assert _stored() == live
    assert _ticket_sla_fields() == live_tickets
    if source == "cut":
        assert any(sla_deadline for _next, sla_deadline, *_ in live_tickets.values())


def _ticket_sla_fields() -> dict[str, tuple]:
    return {
        key: rest
        for key, *rest in Ticket.objects.filter(source_key__startswith="servicenow:").values_list(
            "source_key", "next_sla_event_at", "sla_deadline", "priority", "status"
        )
    }


def test_imported_history_replays_to_the_stored_clocks(office_standard, cut_sample):
    # The what-if replay (slas.replay) rebuilds clocks from the recorded Events alone; on
    # imported tickets it must land exactly on what the importer stored.
    run_import(cut_sample, standard="Standard")
    tickets = list(Ticket.objects.filter(source_key__startswith="servicenow:"))
    replayed = replay_recorded(tickets)
    stored = {t.pk: list(t.clocks.order_by("pk")) for t in tickets}

    for ticket_id, clocks in replayed.items():
        assert len(clocks) == len(stored[ticket_id])
        for replayed_clock, stored_clock in zip(clocks, stored[ticket_id], strict=True):
            for name in CLOCK_FIELDS:
                if name == "version_id":
                    assert replayed_clock.version.version_id == stored_clock.version_id
                else:
                    assert getattr(replayed_clock, name) == getattr(stored_clock, name), name
