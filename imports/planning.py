"""Turn one incident's source rows into a plan: the ticket, its events and its clock actions.

Pure Python: nothing here touches the database, so a whole incident is validated (and a
malformed row set aside) before anything is written, and `--dry-run` runs exactly this code.
"""

from __future__ import annotations

import functools
import hashlib
import string
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from imports.mapping import Mapping, StatusRule
from imports.reader import SourceRow
from slas.models import Metric
from tickets.models import ALLOWED_TRANSITIONS, Event, Status

TITLE_MAX = 200


@dataclass(slots=True)
class Problem:
    line: int
    number: str
    reason: str


@dataclass(slots=True)
class EventPlan:
    kind: str
    created_at: datetime
    field: str = ""
    before: object = None
    after: object = None
    actor: str | None = None  # raw source person (caller / assignee) or None
    row: str | None = None  # hash of the source row it comes from (None: the filing)


@dataclass
class IncidentPlan:
    number: str
    source_key: str
    fingerprint: str
    row_count: int
    opened_at: datetime
    caller: str
    location: str
    group: str
    category: str
    assignee: str | None
    title: str
    description: str
    filing_priority: str
    priority: str
    status: str = Status.NEW
    first_responded_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    resolution_count: int = 0
    reopen_count: int = 0
    updated_at: datetime | None = None
    made_sla: bool | None = None
    events: list[EventPlan] = field(default_factory=list)
    actions: list[tuple[str, datetime, object]] = field(default_factory=list)
    # (assignee, group) pairs seen on one row: the assignee is an agent of that group.
    memberships: set[tuple[str, str]] = field(default_factory=set)


class DateParser:
    """Read the source's zone-less dates as wall-clock time in `zone`; return aware UTC.

    A wall-clock time that occurs twice (clocks go back) is read as its first occurrence and
    one that never occurs (clocks go forward) with the offset before the change: Python's
    zoneinfo `fold=0` rule. The default zone is UTC, where neither happens.
    """

    def __init__(self, fmt: str, zone: str) -> None:
        self.fmt = fmt
        self.zone = ZoneInfo(zone)
        self.cache: dict[str, datetime] = {}
        self.fast = fmt == "%d/%m/%Y %H:%M"

    def __call__(self, text: str) -> datetime:
        value = self.cache.get(text)
        if value is None:
            naive = self._fast(text) if self.fast else datetime.strptime(text, self.fmt)
            value = naive.replace(tzinfo=self.zone).astimezone(UTC)
            if len(self.cache) > 500_000:
                self.cache.clear()
            self.cache[text] = value
        return value

    @staticmethod
    def _fast(text: str) -> datetime:
        # `d/m/Y H:M` by hand: strptime is ~10x slower and this runs for every row.
        try:
            day_part, time_part = text.split(" ")
            day, month, year = day_part.split("/")
            hour, minute = time_part.split(":")
            if len(year) != 4:
                raise ValueError
            return datetime(int(year), int(month), int(day), int(hour), int(minute))
        except ValueError:
            raise ValueError(f"unreadable date {text!r}") from None


@functools.cache
def _path(start: str, goal: str) -> tuple[str, ...] | None:
    """Shortest walk along the status graph (SPEC §2) from start to goal, without cancelling
    on the way; None when the graph does not allow it (e.g. back to `new`)."""
    if start == goal:
        return ()
    seen = {start}
    queue: deque[tuple[str, tuple[str, ...]]] = deque([(start, ())])
    while queue:
        status, walk = queue.popleft()
        for following in sorted(ALLOWED_TRANSITIONS[status]):
            if following in seen or (following == Status.CANCELLED and goal != Status.CANCELLED):
                continue
            if following == goal:
                return (*walk, following)
            seen.add(following)
            queue.append((following, [*walk, following]))
    return None


def _title(template: str, values: dict[str, str], fallback: str) -> str:
    """Fill the title template, leaving out empty parts with the separator before them."""
    out: list[str] = []
    for literal, name, _spec, _conv in string.Formatter().parse(template):
        value = values.get(name, "") if name else ""
        if name is None:
            if out:
                out.append(literal)
            continue
        if value:
            if out or not literal.strip(" /:-›|"):
                out.append(literal if out else literal.lstrip(" /:-›|"))
            out.append(value)
    text = "".join(out).strip(" /:-›|") if out else ""
    return (text or fallback)[:TITLE_MAX]


def row_hash(row: SourceRow) -> str:
    """A short stable hash of a row's mapped cells (its identity across re-imports)."""
    if row.hash is None:
        # Cells are in mapping order, so the keys need not be hashed along.
        text = "\x1f".join(row.values.values())
        row.hash = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:16]
    return row.hash


class Planner:
    """Validates rows and plans incidents for one mapping, time zone and options key."""

    def __init__(self, *, mapping: Mapping, timezone: str, options_key: str) -> None:
        self.mapping = mapping
        self.parse_date = DateParser(mapping.date_format, timezone)
        self.options_key = options_key
        self.empty = mapping.empty_values
        self.column_of = mapping.field_columns

    def _value(self, values: dict[str, str], name: str) -> str:
        value = values.get(name, "")
        return "" if value in self.empty else value

    def check_row(self, row: SourceRow) -> str | None:
        """Why this row cannot be used, or None when it is fine."""
        values = row.values
        if "__width__" in values:
            return f"wrong number of cells ({values['__width__']})"
        for name in ("state", "updated_at", "opened_at", "caller", "priority"):
            if not self._value(values, name):
                return f"empty {self.column_of[name]}"
        state = values["state"]
        if state not in self.mapping.status:
            return f"unknown {self.column_of['state']} {state!r}"
        priority = values["priority"]
        if priority not in self.mapping.priority:
            return f"unknown {self.column_of['priority']} {priority!r}"
        for name in ("updated_at", "opened_at"):
            try:
                self.parse_date(values[name])
            except ValueError:
                return f"unreadable {self.column_of[name]} {values[name]!r}"
        sequence = self._value(values, "sequence")
        if "sequence" in self.column_of and sequence:
            try:
                int(sequence)
            except ValueError:
                return f"unreadable {self.column_of['sequence']} {sequence!r}"
        return None

    def fingerprint(self, rows: list[SourceRow]) -> str:
        digest = hashlib.sha1(self.options_key.encode(), usedforsecurity=False)
        for values in sorted(row_hash(row) for row in rows):
            digest.update(values.encode())
        return digest.hexdigest()

    def plan(
        self, number: str, rows: list[SourceRow], fingerprint: str
    ) -> tuple[IncidentPlan | None, list[Problem]]:
        """Plan one incident from its rows; malformed rows come back as problems."""
        problems: list[Problem] = []
        good: list[SourceRow] = []
        for row in rows:
            reason = self.check_row(row)
            if reason:
                problems.append(Problem(line=row.line, number=number, reason=reason))
            else:
                good.append(row)
        if not good:
            return None, problems
        value = self._value

        def order(row: SourceRow) -> tuple[int, int]:
            sequence = value(row.values, "sequence")
            return (int(sequence) if sequence else 0, row.line)

        good.sort(key=order)
        first, last = good[0].values, good[-1].values
        mapping = self.mapping
        opened_at = self.parse_date(first["opened_at"])
        group = next(
            (value(r.values, "group") for r in reversed(good) if value(r.values, "group")),
            mapping.unassigned_group,
        )
        category = value(last, "category") or next(
            (value(r.values, "category") for r in reversed(good) if value(r.values, "category")),
            mapping.uncategorised,
        )
        parts = {
            "category": category if category != mapping.uncategorised else "",
            "subcategory": value(last, "subcategory"),
            "symptom": value(last, "symptom"),
        }
        title = _title(mapping.title, parts, f"Incident {number}")
        made_sla_raw = value(last, "made_sla")
        made_sla = (made_sla_raw in mapping.true_values) if made_sla_raw else None
        filing_priority = mapping.priority[first["priority"]]
        plan = IncidentPlan(
            number=number,
            source_key=f"{mapping.source}:{number}",
            fingerprint=fingerprint,
            row_count=len(good),
            opened_at=opened_at,
            caller=first["caller"],
            location=value(first, "location"),
            group=group,
            category=category,
            assignee=value(last, "assignee") or None,
            title=title,
            description=self._description(number, last, made_sla),
            filing_priority=filing_priority,
            priority=filing_priority,
            made_sla=made_sla,
        )
        plan.events.append(
            EventPlan(
                kind=Event.Kind.CREATED,
                created_at=opened_at,
                after={"status": Status.NEW, "priority": filing_priority, "service": category},
                actor=plan.caller,
            )
        )
        self._walk(plan, good)
        return plan, problems

    def _description(self, number: str, last: dict[str, str], made_sla: bool | None) -> str:
        value = self._value
        lines = [f"{self.mapping.source} incident {number}."]
        details = [
            (label, value(last, name))
            for label, name in (
                ("Contact", "contact_type"),
                ("Impact", "impact"),
                ("Urgency", "urgency"),
                ("Closed with", "closed_code"),
            )
        ]
        lines += [f"{label}: {text}." for label, text in details if text]
        if made_sla is not None:
            lines.append(
                "The source tool recorded the service level as "
                + ("met." if made_sla else "missed.")
            )
        if self.mapping.credit:
            lines += ["", self.mapping.credit]
        return "\n".join(lines)

    def _walk(self, plan: IncidentPlan, rows: list[SourceRow]) -> None:
        """Map the states onto the status graph, collecting events and clock actions."""
        value = self._value
        rules: list[StatusRule] = [self.mapping.status[r.values["state"]] for r in rows]
        # A Closed row followed by activity was closed and reopened in the source; our graph
        # only reopens resolved tickets, so such a close counts as a resolution.
        last_active = max(
            (i for i, rule in enumerate(rules) if rule.status != Status.CLOSED), default=-1
        )
        status = Status.NEW
        clock_at = plan.opened_at
        priority = plan.filing_priority
        assignee: str | None = None
        for index, (row, rule) in enumerate(zip(rows, rules, strict=True)):
            values = row.values
            at = self.parse_date(values["updated_at"])
            # The engine's clocks only move forward: an update stamped before the previous one
            # (or before filing) acts at the latest instant seen so far. The row's own event
            # keeps the row's timestamp; the changes derived from it (status, priority,
            # assignee) are stamped with the instant they act at, so the recorded history
            # replays (slas.replay) to exactly the stored clocks.
            clock_at = max(clock_at, at)
            target = rule.status
            note = rule.note
            if target == Status.CLOSED and index < last_active:
                target = Status.RESOLVED
                note = note or "closed in the source, reopened later"
            row_key = row_hash(row)
            after = {
                "line": row.line,
                "state": values["state"],
                "priority": values["priority"],
            }
            for name in ("sequence", "group", "assignee", "updated_by"):
                if value(values, name):
                    after[name] = value(values, name)
            if note:
                after["awaiting" if rule.note else "note"] = note
            walk = _path(status, target)
            if walk is None:
                after["note"] = f"{status} cannot become {target}; kept {status}"
                walk = ()
            plan.events.append(
                EventPlan(
                    kind=Event.Kind.IMPORT,
                    created_at=at,
                    field="awaiting" if rule.note else "update",
                    after=after,
                    row=row_key,
                )
            )
            row_group = value(values, "group")
            row_assignee = value(values, "assignee") or None
            if row_assignee and row_group:
                plan.memberships.add((row_assignee, row_group))
            elif row_assignee:
                plan.memberships.add((row_assignee, plan.group))
            if row_assignee != assignee:
                plan.events.append(
                    EventPlan(
                        kind=Event.Kind.ASSIGNED,
                        created_at=clock_at,
                        field="assignee",
                        before=assignee,
                        after=row_assignee,
                        row=row_key,
                    )
                )
                assignee = row_assignee
            row_priority = self.mapping.priority[values["priority"]]
            if row_priority != priority:
                plan.events.append(
                    EventPlan(
                        kind=Event.Kind.PRIORITY,
                        created_at=clock_at,
                        field="priority",
                        before=priority,
                        after=row_priority,
                        row=row_key,
                    )
                )
                plan.actions.append(("priority", clock_at, row_priority))
                priority = row_priority
            for following in walk:
                if status == Status.NEW and plan.first_responded_at is None:
                    # Leaving `new` is the supplier's first response (live: the first public
                    # reply moves a new ticket to open and stops the first-response clock).
                    plan.first_responded_at = clock_at
                    plan.actions.append(("stop", clock_at, Metric.FIRST_RESPONSE))
                if following == Status.RESOLVED:
                    plan.resolved_at = clock_at
                    plan.resolution_count += 1
                elif following == Status.CLOSED:
                    plan.closed_at = clock_at
                elif status == Status.RESOLVED and following == Status.OPEN:
                    plan.reopen_count += 1
                    plan.resolved_at = None
                plan.events.append(
                    EventPlan(
                        kind=Event.Kind.STATUS,
                        created_at=clock_at,
                        field="status",
                        before=status,
                        after=following,
                        actor=row_assignee,
                        row=row_key,
                    )
                )
                plan.actions.append(("status", clock_at, (status, following)))
                status = following
        plan.status = status
        plan.priority = priority
        plan.updated_at = max(clock_at, plan.opened_at)
