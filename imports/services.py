"""Import an incident history (e.g. a ServiceNow audit log) as tickets, events and SLA clocks.

`incidents_import` streams the file (see imports.reader), plans each incident in memory
(imports.planning: every row validated, malformed rows set aside with their line numbers),
computes its clocks by the live engine's rules (imports.replay) and writes incidents in
batches: one transaction per batch, `bulk_create` per table (events by COPY on PostgreSQL),
so an incident is either fully written or not at all. It is idempotent on
`Ticket.source_key`: an incident whose rows and options are unchanged is skipped, a changed
one is updated (new rows appended as events, ticket fields and clocks recomputed), never
duplicated.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import time as time_module
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone as dj_timezone
from django.utils.text import slugify

from departments.models import Department, Membership, Service, User
from imports.mapping import Mapping
from imports.models import ImportedIncident, ImportRun
from imports.planning import IncidentPlan, Planner, Problem
from imports.reader import SourceError, incidents, scan
from imports.replay import PureReplay, replay_live
from slas import services as sla_services
from slas.models import Metric, ServiceStandard, SlaClock, StandardVersion
from slas.selectors import clock_state
from tickets.models import Event, Ticket

DEFAULT_BATCH = 2_000
TICKET_UPDATE_FIELDS = [
    "title",
    "description",
    "service",
    "supplier_department",
    "customer_department",
    "requester",
    "assignee",
    "priority",
    "status",
    "created_at",
    "updated_at",
    "first_responded_at",
    "resolved_at",
    "closed_at",
    "resolution_count",
    "reopen_count",
    "next_sla_event_at",
    "reference",
    "number",
]


class ImportSetupError(ValueError):
    """The import cannot start (unknown standard, time zone or engine); the message says why."""


@dataclass
class ImportSummary:
    dry_run: bool = False
    rows_read: int = 0
    incidents_seen: int = 0
    incidents_created: int = 0
    incidents_updated: int = 0
    incidents_unchanged: int = 0
    events_created: int = 0
    clocks_written: int = 0
    departments_created: int = 0
    people_created: int = 0
    memberships_created: int = 0
    services_created: int = 0
    skipped_rows: list[Problem] = field(default_factory=list)
    skipped_incidents: list[Problem] = field(default_factory=list)
    # (priority, our resolution state, source made_sla) per planned incident, for the report.
    outcomes: list[tuple[str, str, bool | None]] = field(default_factory=list)
    contiguous: bool = True
    # With keep_plans: (plan, clocks, next_sla_event_at) per planned incident (tests).
    plans: list | None = None
    seconds: float = 0.0
    # Set when the same file was already imported with the same options (nothing was read).
    up_to_date_since: datetime | None = None
    write_seconds: float = 0.0  # of `seconds`, the time spent writing batches
    reports_seconds: float = 0.0  # of `seconds`, bringing the reporting roll-ups up to date
    standard: str = ""
    timezone: str = "UTC"

    def skipped_by_reason(self) -> dict[str, list[int]]:
        """Malformed rows grouped by reason → their line numbers."""
        grouped: dict[str, list[int]] = {}
        for problem in self.skipped_rows:
            grouped.setdefault(problem.reason, []).append(problem.line)
        return grouped


@dataclass
class _Existing:
    record_id: int
    ticket_id: int
    fingerprint: str
    timezone: str


def _file_sha256(path: str | Path) -> str:
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"{path} does not exist or is not a file")
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _summary_record(summary: ImportSummary) -> dict:
    return {
        "rows_read": summary.rows_read,
        "incidents_seen": summary.incidents_seen,
        "skipped_rows": [[p.line, p.number, p.reason] for p in summary.skipped_rows],
        "skipped_incidents": [[p.line, p.number, p.reason] for p in summary.skipped_incidents],
    }


def resolve_standard(name: str) -> StandardVersion:
    standard = ServiceStandard.objects.select_related("current_version").filter(name=name).first()
    if standard is None or standard.current_version is None:
        known = ", ".join(ServiceStandard.objects.values_list("name", flat=True)) or "none yet"
        raise ImportSetupError(
            f"no published service standard named {name!r} (standards: {known}); "
            "pass --standard with one of them"
        )
    return StandardVersion.objects.select_related("standard", "calendar").get(
        pk=standard.current_version_id
    )


def _department_code(name: str, taken: set[str]) -> str:
    words = re.findall(r"[A-Za-z]+|\d+", name)
    letters = "".join(w[0] for w in words if w[0].isalpha()).upper()[:3]
    digits = "".join(w for w in words if w.isdigit())
    base = (letters + digits)[:10] or "D"
    if not base[0].isalpha():
        base = ("D" + base)[:10]
    candidate, n = base, 2
    while candidate in taken:
        suffix = str(n)
        candidate = base[: 10 - len(suffix)] + suffix
        n += 1
    taken.add(candidate)
    return candidate


def _unique_slug(name: str, taken: set[str]) -> str:
    base = (slugify(name) or "department")[:55]
    candidate, n = base, 2
    while candidate in taken:
        candidate = f"{base}-{n}"
        n += 1
    taken.add(candidate)
    return candidate


class _Directory:
    """Departments, people, memberships and services by source name, created on demand.

    Loaded once; `flush` writes what is missing in bulk (inside the caller's transaction). In a
    dry run nothing is written and the counts say what would be created.
    """

    def __init__(self, *, source: str, version: StandardVersion, dry_run: bool) -> None:
        self.source = source
        self.version = version
        self.dry_run = dry_run
        self.departments: dict[str, int] = dict(Department.objects.values_list("name", "pk"))
        self.codes: set[str] = set(Department.objects.values_list("code", flat=True))
        self.slugs: set[str] = set(Department.objects.values_list("slug", flat=True))
        self.people: dict[str, int] = {}
        prefix = f"{source}-"
        for username, pk in User.objects.filter(username__startswith=prefix).values_list(
            "username", "pk"
        ):
            self.people[username] = pk
        self.memberships: set[tuple[int, int]] = set(
            Membership.objects.values_list("user_id", "department_id")
        )
        self.services: dict[tuple[int, str], int] = {
            (department_id, name): pk
            for pk, department_id, name in Service.objects.values_list(
                "pk", "department_id", "name"
            )
        }
        self._fake = -1  # ids handed out in a dry run
        self._usernames: dict[str, str] = {}
        self.created = Counter()

    def _fake_id(self) -> int:
        self._fake -= 1
        return self._fake

    def username(self, raw: str) -> str:
        name = self._usernames.get(raw)
        if name is None:
            name = self._usernames[raw] = f"{self.source}-{slugify(raw) or 'person'}"[:150]
        return name

    def prepare(self, plans: list[IncidentPlan]) -> None:
        """Create every department, person, membership and service the plans need."""
        # Departments: suppliers (assignment groups) and customers (locations).
        new_departments = []
        wanted: dict[str, bool] = {p.location: False for p in plans if p.location}
        wanted.update({p.group: True for p in plans})
        wanted.update({group: True for p in plans for _, group in p.memberships})
        for name, supplier in sorted(wanted.items()):
            if name in self.departments:
                continue
            department = Department(
                name=name[:120],
                slug=_unique_slug(name, self.slugs),
                code=_department_code(name, self.codes),
                calendar_id=self.version.calendar_id if supplier else None,
                default_standard_id=self.version.standard_id if supplier else None,
            )
            new_departments.append(department)
            self.departments[name] = self._fake_id() if self.dry_run else 0
        if new_departments and not self.dry_run:
            Department.objects.bulk_create(new_departments)
            for department in new_departments:
                self.departments[department.name] = department.pk
        self.created["departments"] += len(new_departments)
        # People: callers are employees of their location, assignees agents of their groups.
        new_people: dict[str, User] = {}
        for plan in plans:
            for raw, home in [(plan.caller, plan.location)] + [
                (assignee, group) for assignee, group in sorted(plan.memberships)
            ]:
                username = self.username(raw)
                if username in self.people or username in new_people:
                    continue
                new_people[username] = User(
                    username=username,
                    first_name=raw[:150],
                    # Historical people: accounts that exist for the record but cannot sign in.
                    is_active=False,
                    password=make_password(None),
                    home_department_id=self.departments.get(home) if home else None,
                )
        if new_people and not self.dry_run:
            User.objects.bulk_create(new_people.values())
            for username, user in new_people.items():
                self.people[username] = user.pk
        elif new_people:
            for username in new_people:
                self.people[username] = self._fake_id()
        self.created["people"] += len(new_people)
        new_memberships = []
        for plan in plans:
            for raw, group in plan.memberships:
                key = (self.people[self.username(raw)], self.departments[group])
                if key in self.memberships:
                    continue
                self.memberships.add(key)
                new_memberships.append(
                    Membership(user_id=key[0], department_id=key[1], role=Membership.Role.MEMBER)
                )
        if new_memberships and not self.dry_run:
            Membership.objects.bulk_create(new_memberships)
        self.created["memberships"] += len(new_memberships)
        new_services = []
        for plan in plans:
            key = (self.departments[plan.group], plan.category)
            if key in self.services:
                continue
            self.services[key] = self._fake_id() if self.dry_run else 0
            new_services.append(
                Service(
                    department_id=key[0],
                    name=plan.category[:160],
                    description=f"Imported {self.source} category.",
                    default_priority="P3",
                    standard_id=self.version.standard_id,
                )
            )
        if new_services and not self.dry_run:
            Service.objects.bulk_create(new_services)
            for service in new_services:
                self.services[(service.department_id, service.name)] = service.pk
        self.created["services"] += len(new_services)

    def person(self, raw: str | None) -> int | None:
        return self.people.get(self.username(raw)) if raw else None


def incidents_import(
    *,
    path: str | Path,
    mapping: Mapping,
    standard: str | None = None,
    timezone: str = "UTC",
    dry_run: bool = False,
    engine: str = "replay",
    batch_size: int = DEFAULT_BATCH,
    progress: Callable[[int, int], None] | None = None,
    keep_plans: bool = False,
    recheck: bool = False,
) -> ImportSummary:
    """Import (or, with dry_run, only check and measure) an incident log; return a summary.

    `engine="live"` computes clocks through slas.services ticket by ticket (slow; used to prove
    the default pure replay identical). `progress(rows_done, rows_total)` is called as rows are
    read. With `keep_plans` the summary carries the plans and their clocks (for tests).

    A file already imported with the same options (same sha256, mapping, zone and standard
    version) is not read again unless `recheck`: the run returns at once, so re-running
    `make run DEMO=incidents` costs a hash of the file.
    """
    started = time_module.monotonic()
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ImportSetupError(
            f"unknown time zone {timezone!r} (use an IANA name, e.g. UTC)"
        ) from None
    if engine not in ("replay", "live"):
        raise ImportSetupError(f"unknown engine {engine!r} (replay or live)")
    version = resolve_standard(standard or mapping.standard)
    replay = PureReplay.for_version(version)
    options_key = f"{mapping.describe()}|{timezone}|{version.pk}"
    planner = Planner(mapping=mapping, timezone=timezone, options_key=options_key)
    summary = ImportSummary(dry_run=dry_run, standard=version.standard.name, timezone=timezone)
    summary.plans = [] if keep_plans else None
    file_sha256 = _file_sha256(path)
    options_hash = hashlib.sha1(options_key.encode(), usedforsecurity=False).hexdigest()
    imported = ImportedIncident.objects.filter(source_key__startswith=f"{mapping.source}:")
    if not dry_run and not recheck and not keep_plans:
        last = (
            ImportRun.objects.filter(
                source=mapping.source, file_sha256=file_sha256, options_hash=options_hash
            )
            .order_by("-finished_at")
            .first()
        )
        # The count guards against imported tickets deleted since (they are then re-created).
        if last is not None and imported.count() == last.incidents:
            record = last.summary
            summary.up_to_date_since = last.finished_at
            summary.rows_read = record.get("rows_read", 0)
            summary.incidents_seen = record.get("incidents_seen", 0)
            summary.skipped_rows = [Problem(*p) for p in record.get("skipped_rows", [])]
            summary.skipped_incidents = [Problem(*p) for p in record.get("skipped_incidents", [])]
            summary.incidents_unchanged = summary.incidents_seen - len(summary.skipped_incidents)
            _refresh_reports(source=mapping.source, ticket_ids=set())
            summary.seconds = time_module.monotonic() - started
            return summary
    counted = scan(path, mapping)
    summary.contiguous = counted.contiguous
    existing: dict[str, _Existing] = {
        key: _Existing(record_id, ticket_id, fingerprint, zone)
        for key, record_id, ticket_id, fingerprint, zone in imported.values_list(
            "source_key", "pk", "ticket_id", "fingerprint", "timezone"
        )
    }
    directory = _Directory(source=mapping.source, version=version, dry_run=dry_run)
    writer = _Writer(
        directory=directory, version=version, summary=summary, dry_run=dry_run, engine=engine
    )
    batch: list[tuple[IncidentPlan, _Existing | None, list[SlaClock], datetime | None]] = []
    done = 0
    for number, rows in incidents(path, mapping, counted.rows_per_number):
        done += len(rows)
        summary.rows_read += len(rows)
        if progress:
            progress(done, counted.total_rows)
        if not number:
            summary.skipped_rows += [
                Problem(line=r.line, number="", reason="no incident number") for r in rows
            ]
            continue
        summary.incidents_seen += 1
        source_key = f"{mapping.source}:{number}"
        fingerprint = planner.fingerprint(rows)
        known = existing.get(source_key)
        if known and known.fingerprint == fingerprint:
            # Nothing changed since the last import; still report its malformed rows.
            for row in rows:
                reason = planner.check_row(row)
                if reason:
                    summary.skipped_rows.append(Problem(row.line, number, reason))
            summary.incidents_unchanged += 1
            continue
        plan, problems = planner.plan(number, rows, fingerprint)
        summary.skipped_rows += problems
        if plan is None:
            summary.skipped_incidents.append(
                Problem(rows[0].line, number, f"none of its {len(rows)} rows is usable")
            )
            continue
        if known and known.timezone != timezone:
            summary.skipped_incidents.append(
                Problem(
                    rows[0].line,
                    number,
                    f"imported earlier with --timezone {known.timezone}; events are "
                    "append-only, so it is not re-dated",
                )
            )
            continue
        clocks, next_at = replay.run(
            priority=plan.filing_priority, created_at=plan.opened_at, actions=plan.actions
        )
        resolution = next((c for c in clocks if c.metric == Metric.RESOLUTION), None)
        summary.outcomes.append(
            (
                plan.priority,
                clock_state(clock=resolution, now=dj_timezone.now()) if resolution else "none",
                plan.made_sla,
            )
        )
        if keep_plans:
            summary.plans.append((plan, clocks, next_at))
        batch.append((plan, known, clocks, next_at))
        if len(batch) >= batch_size:
            writer.write(batch)
            batch = []
    if batch:
        writer.write(batch)
    if not dry_run:
        reports_started = time_module.monotonic()
        _refresh_reports(source=mapping.source, ticket_ids=writer.touched)
        summary.reports_seconds = time_module.monotonic() - reports_started
    if not dry_run:
        ImportRun.objects.create(
            source=mapping.source,
            file_sha256=file_sha256,
            options_hash=options_hash,
            incidents=imported.count(),
            summary=_summary_record(summary),
            finished_at=dj_timezone.now(),
        )
    summary.departments_created = directory.created["departments"]
    summary.people_created = directory.created["people"]
    summary.memberships_created = directory.created["memberships"]
    summary.services_created = directory.created["services"]
    summary.seconds = time_module.monotonic() - started
    return summary


EVENT_COLUMNS = ("ticket", "actor", "kind", "field", "before", "after", "created_at")


def _insert_events(rows: list[tuple]) -> None:
    """Append events (tuples in EVENT_COLUMNS order, `internal` false) in bulk.

    On PostgreSQL with COPY: the events are most of the import (286,000 rows for the
    ServiceNow log) and building a model instance plus an INSERT parameter list per row was
    half of the import's time. Elsewhere (SQLite for `make run`) with bulk_create. Should the
    Event model grow a column this does not know, bulk_create is used everywhere.
    """
    if not rows:
        return
    known = {"id", "internal", *EVENT_COLUMNS}
    fields = {f.name for f in Event._meta.concrete_fields}
    if connection.vendor != "postgresql" or not fields <= known:
        Event.objects.bulk_create(
            (Event(**dict(zip(EVENT_COLUMNS, row, strict=True))) for row in rows),
            batch_size=5_000,
        )
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    dumps = json.dumps
    for ticket_id, actor_id, kind, field_name, before, after, created_at in rows:
        writer.writerow(
            (
                ticket_id,
                "" if actor_id is None else actor_id,
                kind,
                field_name,
                "" if before is None else dumps(before),
                "" if after is None else dumps(after),
                "f",
                created_at.isoformat(),
            )
        )
    buffer.seek(0)
    meta = Event._meta
    columns = ", ".join(
        connection.ops.quote_name(meta.get_field(name).column)
        for name in (*EVENT_COLUMNS[:6], "internal", "created_at")
    )
    with connection.cursor() as cursor:
        # Unquoted empty cells are NULL (actor, before, after); `field` is never NULL.
        cursor.copy_expert(
            f"COPY {connection.ops.quote_name(meta.db_table)} ({columns}) FROM STDIN "
            f"WITH (FORMAT csv, FORCE_NOT_NULL ({connection.ops.quote_name('field')}))",
            buffer,
        )


# Above this many imported tickets to bring into the reports, one rebuild from raw is cheaper
# than refreshing ticket by ticket (a rebuild of 25,000 tickets takes ~15 s).
REPORTS_REBUILD_THRESHOLD = 2_000


def _refresh_reports(*, source: str, ticket_ids: set[int]) -> None:
    """Bring the reporting roll-ups (reports app) up to date with the imported tickets.

    The ticket services refresh them in every use case; the importer writes in bulk, so it
    refreshes afterwards. Imported tickets with no fact yet (e.g. an earlier run stopped after
    its batches) are included, so re-running an import always repairs the reports.
    """
    from reports import services as report_services
    from reports.models import TicketFact

    missing = set(
        Ticket.objects.filter(source_key__startswith=f"{source}:")
        .exclude(pk__in=TicketFact.objects.values("ticket_id"))
        .values_list("pk", flat=True)
    )
    wanted = ticket_ids | missing
    if len(wanted) > REPORTS_REBUILD_THRESHOLD:
        report_services.rollup_rebuild()
    elif wanted:
        report_services.rollup_refresh_tickets(ticket_ids=wanted)


class _Writer:
    def __init__(self, *, directory, version, summary, dry_run, engine) -> None:
        self.touched: set[int] = set()
        self.directory = directory
        self.version = version
        self.summary = summary
        self.dry_run = dry_run
        self.engine = engine

    def write(self, batch) -> None:
        if self.dry_run:
            self.directory.prepare([plan for plan, *_ in batch])
            for plan, known, clocks, _next in batch:
                if known:
                    self.summary.incidents_updated += 1
                else:
                    self.summary.incidents_created += 1
                    self.summary.events_created += len(plan.events)
                self.summary.clocks_written += len(clocks)
            return
        started = time_module.monotonic()
        # One transaction per batch: a crash leaves whole incidents or none of a batch.
        with transaction.atomic():
            self._write(batch)
        self.summary.write_seconds += time_module.monotonic() - started

    def _write(self, batch) -> None:
        directory = self.directory
        directory.prepare([plan for plan, *_ in batch])
        now = dj_timezone.now()
        known_tickets = {
            t.pk: t
            for t in Ticket.objects.filter(
                pk__in=[known.ticket_id for _, known, *_ in batch if known]
            )
        }
        # Reference numbers: new tickets, and updated ones whose supplier changed, take the
        # next numbers of their supplier, reserved as a block under the Department row lock
        # (the same lock ticket_create takes), so live filings and the import never collide.
        needs_number: list[tuple[IncidentPlan, int]] = []
        for plan, known, *_ in batch:
            supplier_id = directory.departments[plan.group]
            ticket = known_tickets.get(known.ticket_id) if known else None
            if ticket is None or ticket.supplier_department_id != supplier_id:
                needs_number.append((plan, supplier_id))
        per_department = Counter(supplier_id for _, supplier_id in needs_number)
        next_number: dict[int, int] = {}
        codes: dict[int, str] = {}
        for department in (
            Department.objects.select_for_update().filter(pk__in=per_department).order_by("pk")
        ):
            next_number[department.pk] = department.last_ticket_number + 1
            codes[department.pk] = department.code
            Department.objects.filter(pk=department.pk).update(
                last_ticket_number=F("last_ticket_number") + per_department[department.pk]
            )
        numbers: dict[str, tuple[int, str]] = {}
        for plan, supplier_id in needs_number:
            number = next_number[supplier_id]
            next_number[supplier_id] += 1
            numbers[plan.source_key] = (number, f"{codes[supplier_id]}-{number}")
        new_tickets, changed_tickets = [], []
        ticket_for: dict[str, Ticket] = {}
        for plan, known, _clocks, next_at in batch:
            supplier_id = directory.departments[plan.group]
            ticket = known_tickets.get(known.ticket_id) if known else None
            if ticket is None:
                ticket = Ticket(source_key=plan.source_key, confidential=False)
                new_tickets.append(ticket)
            else:
                changed_tickets.append(ticket)
            if plan.source_key in numbers:
                ticket.number, ticket.reference = numbers[plan.source_key]
            live = self.engine == "live"
            ticket.title = plan.title
            ticket.description = plan.description
            ticket.service_id = directory.services[(supplier_id, plan.category)]
            ticket.supplier_department_id = supplier_id
            customer = directory.departments.get(plan.location) if plan.location else None
            requester_id = directory.person(plan.caller)
            ticket.customer_department_id = customer or (
                User.objects.filter(pk=requester_id)
                .values_list("home_department_id", flat=True)
                .first()
            )
            ticket.requester_id = requester_id
            ticket.assignee_id = directory.person(plan.assignee)
            ticket.priority = plan.filing_priority if live else plan.priority
            ticket.status = plan.status
            ticket.created_at = plan.opened_at
            ticket.updated_at = plan.updated_at
            ticket.first_responded_at = plan.first_responded_at
            ticket.resolved_at = plan.resolved_at
            ticket.closed_at = plan.closed_at
            ticket.resolution_count = plan.resolution_count
            ticket.reopen_count = plan.reopen_count
            ticket.next_sla_event_at = None if live else next_at
            ticket_for[plan.source_key] = ticket
        Ticket.objects.bulk_create(new_tickets)
        self.touched.update(t.pk for t in new_tickets)
        self.touched.update(t.pk for t in changed_tickets)
        if changed_tickets:
            Ticket.objects.bulk_update(changed_tickets, TICKET_UPDATE_FIELDS)
        # Events: everything for a new ticket; for an updated one, the rows not imported yet.
        imported_rows: dict[int, set[str]] = {}
        if changed_tickets:
            for ticket_id, after in Event.objects.filter(
                ticket_id__in=[t.pk for t in changed_tickets], kind=Event.Kind.IMPORT
            ).values_list("ticket_id", "after"):
                if isinstance(after, dict) and after.get("row"):
                    imported_rows.setdefault(ticket_id, set()).add(after["row"])
        events: list[tuple] = []
        records_new, records_changed = [], []
        for plan, known, _clocks, _next in batch:
            ticket = ticket_for[plan.source_key]
            seen_rows = imported_rows.get(ticket.pk, set()) if known else None
            added = 0
            for item in plan.events:
                if seen_rows is not None and (item.row is None or item.row in seen_rows):
                    continue
                after = item.after
                if item.kind == Event.Kind.IMPORT:
                    after = {**after, "row": item.row}
                if item.kind == Event.Kind.ASSIGNED:
                    before = directory.username(item.before) if item.before else None
                    after = directory.username(item.after) if item.after else None
                else:
                    before = item.before
                events.append(
                    (
                        ticket.pk,
                        directory.person(item.actor),
                        item.kind,
                        item.field,
                        before,
                        after,
                        item.created_at,
                    )
                )
                added += item.kind == Event.Kind.IMPORT
            if known:
                events.append(
                    (
                        ticket.pk,
                        None,
                        Event.Kind.IMPORT,
                        "reimport",
                        None,
                        {
                            "rows_added": added,
                            "standard": self.version.standard.name,
                            "at": now.isoformat(),
                        },
                        max(now, plan.updated_at),
                    )
                )
                records_changed.append(
                    ImportedIncident(
                        pk=known.record_id,
                        fingerprint=plan.fingerprint,
                        row_count=plan.row_count,
                        made_sla=plan.made_sla,
                        updated_at=now,
                    )
                )
                self.summary.incidents_updated += 1
            else:
                records_new.append(
                    ImportedIncident(
                        source_key=plan.source_key,
                        ticket_id=ticket.pk,
                        fingerprint=plan.fingerprint,
                        timezone=self.summary.timezone,
                        row_count=plan.row_count,
                        made_sla=plan.made_sla,
                        imported_at=now,
                        updated_at=now,
                    )
                )
                self.summary.incidents_created += 1
        _insert_events(events)
        self.summary.events_created += len(events)
        # Clocks: recomputed from the whole history.
        if changed_tickets:
            SlaClock.objects.filter(ticket_id__in=[t.pk for t in changed_tickets]).delete()
        if self.engine == "live":
            for plan, _known, _clocks, _next in batch:
                ticket = ticket_for[plan.source_key]
                replay_live(ticket=ticket, version=self.version, actions=plan.actions)
                self.summary.clocks_written += ticket.clocks.count()
        else:
            all_clocks = []
            for plan, _known, clocks, _next in batch:
                ticket = ticket_for[plan.source_key]
                for clock in clocks:
                    clock.ticket_id = ticket.pk
                    all_clocks.append(clock)
            SlaClock.objects.bulk_create(all_clocks, batch_size=5_000)
            self.summary.clocks_written += len(all_clocks)
        # The queue's sort key (Ticket.sla_deadline) follows the clocks written above: new
        # tickets without a running clock keep NULL, the others are recomputed.
        running = {
            ticket_for[plan.source_key].pk
            for plan, _known, clocks, _next in batch
            if any(c.status == SlaClock.Status.RUNNING for c in clocks)
        }
        if self.engine == "replay":  # the live engine keeps it itself
            sla_services.sla_refresh_deadlines(ticket_ids=running | {t.pk for t in changed_tickets})
        ImportedIncident.objects.bulk_create(records_new)
        if records_changed:
            ImportedIncident.objects.bulk_update(
                records_changed, ["fingerprint", "row_count", "made_sla", "updated_at"]
            )


def import_leads_set(*, source: str, username: str, count: int = 5) -> list[Department]:
    """Make `username` lead of the `count` busiest supplier departments imported from `source`.

    A demo convenience (`make run DEMO=incidents` signs the `lead` account in to dashboards
    over real imported groups); idempotent. Returns the departments.
    """
    from django.db.models import Count

    from departments.services import membership_set

    user = User.objects.filter(username=username).first()
    if user is None:
        raise ImportSetupError(f"no account named {username!r} to make lead")
    busiest = (
        Department.objects.filter(supplied_tickets__source_key__startswith=f"{source}:")
        .annotate(imported=Count("supplied_tickets"))
        .order_by("-imported", "name")[:count]
    )
    departments = list(busiest)
    for department in departments:
        membership_set(user=user, department=department, role=Membership.Role.LEAD)
    return departments
