"""Compare our resolution compliance with the source's own service-level verdict.

ServiceNow's `made_sla` was computed against targets that are not in the data, so this is a
sanity check of the import and of a chosen standard, not a target to hit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.utils import timezone

from imports.models import ImportedIncident
from slas.models import Metric, SlaClock
from slas.selectors import clock_state

PRIORITIES = ("P1", "P2", "P3", "P4")


@dataclass
class ComparisonRow:
    priority: str
    incidents: int = 0
    met: int = 0
    breached: int = 0
    source_known: int = 0
    source_met: int = 0
    agree: int = 0  # both met, or both missed

    @property
    def compliance(self) -> float | None:
        measured = self.met + self.breached
        return self.met / measured if measured else None

    @property
    def source_compliance(self) -> float | None:
        return self.source_met / self.source_known if self.source_known else None

    @property
    def agreement(self) -> float | None:
        both = self.source_known
        return self.agree / both if both else None


def compare(outcomes: Iterable[tuple[str, str, bool | None]]) -> list[ComparisonRow]:
    """Rows per priority (and a total) from (priority, our state, source made_sla) triples."""
    rows = {p: ComparisonRow(p) for p in PRIORITIES}
    total = ComparisonRow("all")
    for priority, state, made_sla in outcomes:
        for row in (rows.setdefault(priority, ComparisonRow(priority)), total):
            row.incidents += 1
            if state == "met":
                row.met += 1
            elif state == "breached":
                row.breached += 1
            if made_sla is not None:
                row.source_known += 1
                row.source_met += made_sla
                if state in ("met", "breached"):
                    row.agree += (state == "met") == made_sla
    return [*rows.values(), total]


def outcomes_from_database(source: str) -> list[tuple[str, str, bool | None]]:
    """(priority, resolution state, made_sla) for every incident imported from `source`."""
    now = timezone.now()
    made = dict(
        ImportedIncident.objects.filter(source_key__startswith=f"{source}:").values_list(
            "ticket_id", "made_sla"
        )
    )
    outcomes = []
    clocks = SlaClock.objects.filter(
        metric=Metric.RESOLUTION, ticket__import_record__source_key__startswith=f"{source}:"
    ).select_related("ticket")
    for clock in clocks.iterator(chunk_size=5_000):
        outcomes.append(
            (clock.ticket.priority, clock_state(clock=clock, now=now), made[clock.ticket_id])
        )
    return outcomes


def _pct(value: float | None) -> str:
    return "   –  " if value is None else f"{value * 100:5.1f}%"


def render(rows: list[ComparisonRow], *, standard: str) -> str:
    """A plain-text table (also pasted into the README)."""
    lines = [
        f"Resolution compliance under {standard!r} vs the source's made_sla",
        "priority  incidents   met  breached  ours    made_sla  agree",
    ]
    for row in rows:
        if not row.incidents and row.priority != "all":
            continue
        lines.append(
            f"{row.priority:<8}  {row.incidents:>9,}  {row.met:>5,}  {row.breached:>8,}  "
            f"{_pct(row.compliance)}  {_pct(row.source_compliance)}  {_pct(row.agreement)}"
        )
    lines.append(
        "ours = met / (met + breached) of our resolution clocks; made_sla = share the source "
        "marked as made; agree = share of incidents where both say the same."
    )
    return "\n".join(lines)
