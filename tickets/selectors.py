"""Reads of tickets shared by the UI and the API; permission filtering happens here, once."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connections
from django.db.models import (
    Exists,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
)
from django.http import Http404

from departments.models import User
from servicedesk import permissions
from servicedesk.prepared import (
    PreparedByIds,
    PreparedGet,
    PreparedQuery,
    PreparedShapes,
    prefetched,
)
from slas import selectors as sla_selectors
from slas.clock import BusinessCalendar
from slas.models import SlaClock
from tickets.models import ACTIVE_STATUSES, Attachment, Comment, Event, SatisfactionRating, Ticket

TICKET_RELATED = ("service", "supplier_department", "customer_department", "requester", "assignee")


def _clocks_prefetch() -> Prefetch:
    # A page of tickets shares a few calendars, which one query per calendar serves cheaper
    # than a row per clock (one ticket's clocks come with theirs: _clocks_of_ticket).
    return Prefetch(
        "clocks", queryset=SlaClock.objects.select_related("version").order_by("metric")
    )


def ticket_base_queryset() -> QuerySet[Ticket]:
    return Ticket.objects.select_related(*TICKET_RELATED).prefetch_related(_clocks_prefetch())


# The ticket page and the API's ticket reads start with this six-table join: its SQL is
# compiled once per process (servicedesk/prepared.py), the clocks are prefetched after.
_ticket_by_reference = PreparedGet(Ticket.objects.select_related(*TICKET_RELATED), "reference")


def ticket_list(*, user, filters: dict | None = None) -> QuerySet[Ticket]:
    """Tickets `user` may see, optionally narrowed by simple field filters."""
    queryset = permissions.visible_tickets(ticket_base_queryset(), user)
    for field, value in (filters or {}).items():
        if value in (None, ""):
            continue
        queryset = queryset.filter(**{field: value})
    return queryset


def ticket_rows(*, user) -> QuerySet[Ticket]:
    """Tickets `user` may see, with no related rows or prefetches: for reads that take the
    values() they need (the API list, tickets/api_rows.py)."""
    return permissions.visible_tickets(Ticket.objects.all(), user)


def ticket_row_parts(*, user, queryset: QuerySet[Ticket]) -> list[QuerySet[Ticket]]:
    """`queryset` (unrestricted tickets, filtered) as far as `user` may see, in parts whose
    union it is, each read on its own (permissions.visible_ticket_parts says when)."""
    if not connections[queryset.db].features.supports_slicing_ordering_in_compound:
        # SQLite (the embedded mode) cannot limit the parts of a UNION: one query.
        return [permissions.visible_tickets(queryset, user)]
    return permissions.visible_ticket_parts(queryset, user)


def ticket_row_parts_shape(*, user):
    """`ticket_row_parts(user=user, queryset=Ticket.objects.all())` as
    permissions.visible_ticket_parts_shape describes it, or None where the list is one query
    (SQLite) or the person is not signed in."""
    if not connections[Ticket.objects.db].features.supports_slicing_ordering_in_compound:
        return None
    return permissions.visible_ticket_parts_shape(user)


def ticket_get_for_user(*, user, reference: str, lock: bool = False) -> Ticket:
    """Return the ticket if `user` may see it, otherwise raise Http404 (ids do not leak)."""
    try:
        if lock:
            ticket = Ticket.objects.select_for_update().get(reference=reference)
        else:
            ticket = _ticket_by_reference.get(reference)
            _attach_clocks(ticket)
    except Ticket.DoesNotExist:
        raise Http404 from None
    if not permissions.can_view_ticket(user, ticket):
        if ticket.confidential and getattr(user, "is_authenticated", False):
            _audit_confidential(user=user, ticket=ticket, action="ticket.read_denied")
        raise Http404
    if ticket.confidential:
        # Issue 9: every read of a confidential request is on the audit trail.
        _audit_confidential(user=user, ticket=ticket, action="ticket.read")
    return ticket


# One ticket's clocks come with their version's calendar row (the calendar cache's freshness
# check, so the SLA lens reads no calendar), by SQL compiled once per process.
_clocks_of_ticket = PreparedQuery(
    SlaClock.objects.select_related("version__calendar").order_by("metric"), "ticket_id"
)


def _attach_clocks(ticket: Ticket) -> None:
    """`ticket.clocks.all()` from one compiled query, as the clocks prefetch would give it."""
    clocks = _clocks_of_ticket.list(ticket.pk)
    for clock in clocks:
        SlaClock.ticket.field.set_cached_value(clock, ticket)
    prefetched(ticket, "clocks", clocks)


def _audit_confidential(*, user, ticket: Ticket, action: str) -> None:
    from audit.services import audit_record

    audit_record(actor=user, action=action, target=ticket, target_repr=ticket.reference)


def ticket_comments_for_user(*, user, ticket: Ticket) -> QuerySet[Comment]:
    """The conversation; internal notes only for those allowed to see them."""
    comments = ticket.comments.select_related("author").prefetch_related("attachments")
    if not permissions.can_see_internal_notes(user, ticket):
        comments = comments.filter(internal=False)
    return comments


# The ticket page's reads, compiled once per process (issue 10: compiling these querysets cost
# more CPU than running them). Keyed by whether internal rows are visible.
_page_comments = {
    True: PreparedQuery(Comment.objects.select_related("author"), "ticket_id"),
    False: PreparedQuery(
        Comment.objects.select_related("author").filter(internal=False), "ticket_id"
    ),
}
_page_events = {
    True: PreparedQuery(Event.objects.select_related("actor"), "ticket_id"),
    False: PreparedQuery(Event.objects.select_related("actor").filter(internal=False), "ticket_id"),
}
_page_attachments = PreparedQuery(Attachment.objects.all(), "ticket_id")
_page_ratings = PreparedQuery(SatisfactionRating.objects.all(), "ticket_id")
_page_watchers = PreparedQuery(User.objects.all(), "watched_tickets")
_page_downstream = PreparedQuery(
    Ticket.objects.select_related("supplier_department"), "linked_from_id"
)


def ticket_conversation(*, user, ticket: Ticket) -> tuple[list[Comment], list[Attachment]]:
    """The ticket page's conversation (ticket_comments_for_user, each comment's
    `attachments.all()` filled) and the files filed with the request itself: two queries.
    Files of comments `user` may not see are dropped with their comments."""
    comments = _page_comments[permissions.can_see_internal_notes(user, ticket)].list(ticket.pk)
    by_comment: dict[int, list[Attachment]] = {comment.pk: [] for comment in comments}
    own = []
    for attachment in _page_attachments.list(ticket.pk):
        if attachment.comment_id is None:
            own.append(attachment)
        elif attachment.comment_id in by_comment:
            by_comment[attachment.comment_id].append(attachment)
    for comment in comments:
        prefetched(comment, "attachments", by_comment[comment.pk])
    return comments, own


def ticket_events_for_user(*, user, ticket: Ticket) -> list[Event]:
    """The history; internal events only for those allowed to see internal notes."""
    return _page_events[permissions.can_see_internal_notes(user, ticket)].list(ticket.pk)


def ticket_watcher_list(*, ticket: Ticket) -> list[User]:
    """`ticket.watchers.all()`, read by compiled SQL."""
    return _page_watchers.list(ticket.pk)


def ticket_rating_list(*, ticket: Ticket) -> list[SatisfactionRating]:
    """`ticket.ratings.all()`, read by compiled SQL."""
    return _page_ratings.list(ticket.pk)


def ticket_chain(*, user, ticket: Ticket) -> dict:
    """The chain of internal suppliers: where this request came from and what it opened."""
    upstream = []
    current = ticket
    seen = {ticket.pk}
    while current.linked_from_id and current.linked_from_id not in seen:
        current = Ticket.objects.select_related("supplier_department").get(
            pk=current.linked_from_id
        )
        seen.add(current.pk)
        upstream.append(current)
    downstream = _page_downstream.list(ticket.pk)
    visible = lambda t: permissions.can_view_ticket(user, t)  # noqa: E731
    return {
        "upstream": [(t, visible(t)) for t in reversed(upstream)],
        "downstream": [(t, visible(t)) for t in downstream],
    }


# --- SLA at a glance -------------------------------------------------------------------------
#
# "At risk" (exact rule, used by the queue filter and by every badge alike):
#   a running clock that is not yet breached (deadline still ahead) and has used at least its
#   *warning fraction* of the target in business time. The warning fraction is the lowest
#   ladder threshold below 1.0 for that clock's metric in the clock's standard version, or
#   AT_RISK_DEFAULT_FRACTION (0.75) when the ladder has no warning level.
# Business time left until the deadline is `target - elapsed`, so "elapsed ≥ f × target" is
# "business time left ≤ target - f × target", which in stored fields is
#   deadline ≤ calendar.add(now, target - f × target)
# because `calendar.add` is monotonic. That is exact, and it needs one calendar sum per
# distinct (standard version, metric, target) – a handful – never one per ticket.

AT_RISK_DEFAULT_FRACTION = Decimal("0.75")
SLA_STATES = ("breached", "at_risk", "on_track", "paused", "met", "cancelled")
# The worst state of a ticket's clocks is the ticket's SLA state.
_SEVERITY = {state: rank for rank, state in enumerate(SLA_STATES)}


class SlaLens:
    """SLA state of clocks as of `now`, loading each calendar and ladder once per request."""

    def __init__(self, *, now: datetime):
        self.now = now
        self._calendars: dict[int, BusinessCalendar] = {}
        self._fractions: dict[tuple[int, str], Decimal] = {}
        self._loaded_versions: set[int] = set()
        self._limits: dict[tuple[int, str, timedelta], datetime] = {}
        self._labels: dict[str, str] = {}

    def metric_label(self, metric: str) -> str:
        """The metric's name in the active language, translated once per request (a queue
        page names up to four clocks per row)."""
        label = self._labels.get(metric)
        if label is None:
            label = self._labels[metric] = sla_selectors.metric_label(metric)
        return label

    def calendar(self, calendar_id: int) -> BusinessCalendar:
        if calendar_id not in self._calendars:
            self._calendars[calendar_id] = sla_selectors.business_calendar(calendar_id)
        return self._calendars[calendar_id]

    def load_ladders(self, version_ids) -> None:
        """The warning thresholds of these standard versions, from the per-process cache of
        version content (a published version never changes: no query once it is warm)."""
        missing = set(version_ids) - self._loaded_versions
        for version_id in missing:
            for level in sla_selectors.version_content(version_id).levels:
                if level.threshold < 1:
                    key = (version_id, level.metric)
                    self._fractions[key] = min(
                        self._fractions.get(key, level.threshold), level.threshold
                    )
        self._loaded_versions |= missing

    def warning_fraction(self, version_id: int, metric: str) -> Decimal:
        self.load_ladders([version_id])
        return self._fractions.get((version_id, metric), AT_RISK_DEFAULT_FRACTION)

    def at_risk_limit(
        self, *, version_id: int, calendar_id: int, metric: str, target: timedelta
    ) -> datetime:
        """A running clock of this kind is at risk once its deadline is at or before this."""
        key = (version_id, metric, target)
        if key not in self._limits:
            fraction = self.warning_fraction(version_id, metric)
            warn_at = sla_selectors.threshold_duration(target=target, threshold=fraction)
            left = max(target - warn_at, timedelta(0))
            self._limits[key] = self.calendar(calendar_id).add(self.now, left)
        return self._limits[key]

    def prime(self, tickets) -> None:
        """Load ladders and calendars for every clock of these tickets (clocks prefetched)."""
        versions = {clock.version_id: clock.version for t in tickets for clock in t.clocks.all()}
        self.load_ladders(versions)
        for version in versions.values():
            if version.calendar_id not in self._calendars:
                # No query when the version came with its Calendar row.
                self._calendars[version.calendar_id] = sla_selectors.version_calendar(version)

    def prime_rows(self, clocks) -> None:
        """Calendars of these CLOCK_ROW_COLUMNS rows, from the freshness key they carry."""
        for clock in clocks:
            if clock.version__calendar_id not in self._calendars:
                self._calendars[clock.version__calendar_id] = sla_selectors.business_calendar_at(
                    clock.version__calendar_id, clock.version__calendar__updated_at
                )

    def clock_state(self, clock: SlaClock) -> str:
        """breached, at_risk, on_track, paused, met or cancelled."""
        base = sla_selectors.clock_state(clock=clock, now=self.now)
        if base != "running":
            return base
        if clock.deadline is None:
            return "on_track"
        limit = self.at_risk_limit(
            version_id=clock.version_id,
            calendar_id=_calendar_id(clock),
            metric=clock.metric,
            target=clock.target,
        )
        return "at_risk" if clock.deadline <= limit else "on_track"

    def elapsed(self, clock: SlaClock) -> timedelta:
        version = clock.version
        if version.calendar_id not in self._calendars:
            # No query when the version came with its Calendar row (a ticket just filed).
            self._calendars[version.calendar_id] = sla_selectors.version_calendar(version)
        return sla_selectors.clock_elapsed(
            clock=clock, calendar=self._calendars[version.calendar_id], now=self.now
        )

    def summary(self, ticket: Ticket) -> dict | None:
        """The ticket's worst clock state and the next deadline of a running clock."""
        return self.summary_of(list(ticket.clocks.all()))

    def summary_of(self, clocks: list) -> dict | None:
        """`summary` of one ticket's clocks (model instances or CLOCK_ROW_COLUMNS rows)."""
        if not clocks:
            return None
        states = [(self.clock_state(clock), clock) for clock in clocks]
        state, worst = min(states, key=lambda pair: _SEVERITY[pair[0]])
        running = [
            clock
            for clock in clocks
            if clock.status == SlaClock.Status.RUNNING and clock.deadline is not None
        ]
        nearest = min(running, key=lambda clock: clock.deadline) if running else None
        return {
            "state": state,
            "metric": worst.metric,
            "metric_label": self.metric_label(worst.metric),
            "deadline": nearest.deadline if nearest else None,
            "deadline_metric_label": (self.metric_label(nearest.metric) if nearest else ""),
            "clocks": [
                {
                    "metric": clock.metric,
                    "label": self.metric_label(clock.metric),
                    "state": clock_state,
                    "deadline": clock.deadline,
                }
                for clock_state, clock in states
            ],
        }

    def rows(self, ticket: Ticket) -> list[dict]:
        """Per clock: target, elapsed, deadline and state, for the ticket page."""
        rows = []
        for clock in ticket.clocks.all():
            rows.append(
                {
                    "metric": clock.metric,
                    "label": self.metric_label(clock.metric),
                    "target": clock.target,
                    "calendar": self.calendar(clock.version.calendar_id),
                    "elapsed": self.elapsed(clock),
                    "deadline": clock.deadline,
                    "stopped_at": clock.stopped_at,
                    "state": self.clock_state(clock),
                    "running": clock.status == SlaClock.Status.RUNNING,
                }
            )
        return rows


# What SlaLens and the SLA rules read of a clock (slas.rules.clock_state, live_elapsed), with
# its calendar and the calendar cache's freshness key (so that needs no query of its own).
CLOCK_ROW_COLUMNS = (
    "ticket_id",
    "metric",
    "version_id",
    "version__calendar_id",
    "version__calendar__updated_at",
    "target",
    "status",
    "elapsed",
    "running_since",
    "deadline",
    "breached_at",
)
_page_clock_rows = PreparedByIds(
    SlaClock.objects.order_by("metric"), "ticket_id", CLOCK_ROW_COLUMNS
)


def page_clocks(ticket_ids: list[int]) -> dict[int, list]:
    """The clocks of a page of tickets as CLOCK_ROW_COLUMNS rows, by ticket, in metric order;
    one query (none for no ticket)."""
    clocks: dict[int, list] = defaultdict(list)
    if ticket_ids:
        for clock in _page_clock_rows.rows(ticket_ids):
            clocks[clock.ticket_id].append(clock)
    return clocks


def _calendar_id(clock) -> int:
    # A model clock comes with its version row; a row of CLOCK_ROW_COLUMNS names the calendar.
    return clock.version.calendar_id if isinstance(clock, SlaClock) else clock.version__calendar_id


def _running_clocks(now: datetime) -> QuerySet[SlaClock]:
    return SlaClock.objects.filter(
        status=SlaClock.Status.RUNNING, breached_at__isnull=True, deadline__gt=now
    )


def sla_breached_q(*, now: datetime) -> Q:
    """Tickets with a breached clock (SPEC §3: a clock past its deadline is breached)."""
    breached = (
        SlaClock.objects.filter(ticket_id=OuterRef("pk"))
        .exclude(status=SlaClock.Status.CANCELLED)
        .filter(
            Q(breached_at__isnull=False)
            | Q(status=SlaClock.Status.RUNNING, deadline__lte=now)
            | Q(status=SlaClock.Status.STOPPED, elapsed__gt=F("target"))
        )
    )
    return Q(Exists(breached))


def sla_at_risk_q(*, lens: SlaLens, scope: QuerySet[Ticket]) -> Q:
    """Tickets of `scope` with an at-risk clock (the rule above), as a Q.

    One query finds the distinct (version, metric, target) kinds of running clocks in scope;
    each kind gets its limit from the calendar, and the filter compares stored deadlines.
    """
    now = lens.now
    kinds = list(
        _running_clocks(now)
        .filter(ticket__in=scope.order_by().values("pk"))
        .values_list("version_id", "version__calendar_id", "metric", "target")
        .distinct()
    )
    if not kinds:
        return Q(pk__in=[])
    lens.load_ladders({version_id for version_id, *_ in kinds})
    match = Q()
    for version_id, calendar_id, metric, target in kinds:
        limit = lens.at_risk_limit(
            version_id=version_id, calendar_id=calendar_id, metric=metric, target=target
        )
        match |= Q(version_id=version_id, metric=metric, target=target, deadline__lte=limit)
    return Q(Exists(_running_clocks(now).filter(match, ticket_id=OuterRef("pk"))))


def _next_deadline() -> F:
    # The nearest deadline of a running clock (past deadlines first: overdue work is most
    # urgent); paused and stopped clocks have none. Stored on the ticket by the SLA services
    # (Ticket.sla_deadline) so the queue order comes from an index, not a per-row subquery.
    return F("sla_deadline")


QUEUE_SORTS = {
    "deadline": (F("next_deadline").asc(nulls_last=True), "priority", "created_at", "pk"),
    "priority": ("priority", F("next_deadline").asc(nulls_last=True), "created_at", "pk"),
    "newest": ("-created_at", "-pk"),
    "oldest": ("created_at", "pk"),
    "updated": ("-updated_at", "-pk"),
}


def queue_order_is_indexed(filters: dict) -> bool:
    """Whether an index reads the queue in order (`ticket_queue_deadline`: active tickets by
    deadline), so that the capped count may walk it; any other order is a sort."""
    return (filters.get("sort") or "deadline") == "deadline" and (filters.get("status") or "") in (
        "",
        *ACTIVE_STATUSES,
    )


def ticket_filter(
    queryset: QuerySet[Ticket], *, filters: dict, user_pk: int, lens: SlaLens | None
) -> QuerySet[Ticket]:
    """Narrow a ticket queryset by the queue / my-requests filters.

    filters (all optional): status ("" = active, "all", or a status), priority, assignee
    ("me", "none" or a user id), service (id), supplier_department (id), customer_department
    (id), sla ("at_risk" or "breached"), q (reference or words of the title), sort (a key of
    QUEUE_SORTS; deadline first by default).
    """
    status = filters.get("status") or ""
    if status == "all":
        pass
    elif status:
        queryset = queryset.filter(status=status)
    else:
        queryset = queryset.filter(status__in=ACTIVE_STATUSES)
    if filters.get("priority"):
        queryset = queryset.filter(priority=filters["priority"])
    assignee = filters.get("assignee")
    if assignee == "me":
        queryset = queryset.filter(assignee_id=user_pk)
    elif assignee == "none":
        queryset = queryset.filter(assignee__isnull=True)
    elif assignee:
        queryset = queryset.filter(assignee_id=assignee)
    for field in ("service", "supplier_department", "customer_department"):
        if filters.get(field):
            queryset = queryset.filter(**{f"{field}_id": filters[field]})
    q = (filters.get("q") or "").strip()
    if q:
        queryset = queryset.filter(Q(reference__iexact=q) | Q(title__icontains=q))
    sla = filters.get("sla")
    if sla == "breached":
        queryset = queryset.filter(sla_breached_q(now=lens.now))
    elif sla == "at_risk":
        queryset = queryset.filter(sla_at_risk_q(lens=lens, scope=queryset))
    sort = filters.get("sort") or "deadline"
    ordering = QUEUE_SORTS.get(sort, QUEUE_SORTS["deadline"])
    return queryset.annotate(next_deadline=_next_deadline()).order_by(*ordering)


def ticket_queue(*, user, filters: dict, lens: SlaLens) -> QuerySet[Ticket]:
    """The supplier-department queue of `user` (all departments for an admin), filtered; rows
    without related objects, for the values the tables read (tickets/table_rows.py)."""
    visible = (
        Q()
        if permissions.is_admin(user)
        else permissions.department_tickets_filter(user, permissions.agent_department_ids(user))
    )
    return _queue_of(visible=visible, user_pk=user.pk, filters=filters, lens=lens)


def _queue_of(*, visible: Q, user_pk: int | None, filters: dict, lens: SlaLens | None):
    """The queue's tickets: those `visible` selects, filtered (ticket_queue and its shapes)."""
    return ticket_filter(
        Ticket.objects.filter(visible), filters=filters, user_pk=user_pk, lens=lens
    )


# The queue filters whose values are ids (the rest are choices, part of a shape's key).
_QUEUE_ID_FILTERS = ("service", "customer_department")
# The filters a queue shape knows (tickets.forms.QueueFilterForm's).
_QUEUE_SHAPED_FILTERS = frozenset(
    {"q", "status", "priority", "sla", "assignee", *_QUEUE_ID_FILTERS, "sort"}
)
_QUEUE_SHAPES = PreparedShapes()


def ticket_queue_first_ids(*, user, filters: dict, limit: int) -> list[int] | None:
    """The ids of the first `limit` tickets of `ticket_queue(user=user, filters=filters, …)`,
    in order, by SQL compiled once per shape (servicedesk.prepared.PreparedShapes): building
    the queue's query and compiling it cost more than running it. None when the filters hold
    what a shape cannot (words to search, an SLA state, which depends on the clock)."""
    if filters.get("q") or filters.get("sla") or not set(filters) <= _QUEUE_SHAPED_FILTERS:
        return None
    admin = permissions.is_admin(user)
    departments = () if admin else tuple(sorted(permissions.agent_department_ids(user)))
    if not admin and not departments:
        return None  # not an agent: no queue
    assignee = filters.get("assignee") or ""
    by_id = [name for name in _QUEUE_ID_FILTERS if filters.get(name)]
    try:
        ids = [int(filters[name]) for name in by_id]
        if assignee not in ("", "me", "none"):
            ids.append(int(assignee))
    except (TypeError, ValueError):
        return None
    key = (
        ("admin",) if admin else ("agent", len(departments)),
        filters.get("status") or "",
        filters.get("priority") or "",
        assignee if assignee in ("", "me", "none") else "id",
        tuple(by_id),
        filters.get("sort") or "deadline",
        limit,
        Ticket.objects.db,
    )
    # The person's id where the SQL has it: an agent's visibility, or "assigned to me".
    person = (user.pk,) if not admin or assignee == "me" else ()
    values = (*person, *departments, *ids)

    def build(probes):
        user_pk, rest = (probes[0], probes[1:]) if person else (None, probes)
        shaped = dict(filters)
        shaped.update(zip(by_id, rest[len(departments) :], strict=False))
        if assignee not in ("", "me", "none"):
            shaped["assignee"] = rest[-1]
        visible = (
            Q()
            if admin
            else permissions.department_tickets_filter_of(user_pk, rest[: len(departments)])
        )
        queryset = _queue_of(visible=visible, user_pk=user_pk, filters=shaped, lens=None)
        return queryset.values_list("pk", flat=True)[:limit].query.sql_with_params()

    found = _QUEUE_SHAPES.statement(key, values, build)
    if found is None:
        return None
    statement, params = found
    connection = connections[Ticket.objects.db]
    with connection.cursor() as cursor:
        statement.execute(cursor, connection, params)
        return [row[0] for row in cursor.fetchall()]


def ticket_requested_by(*, user, filters: dict, lens: SlaLens) -> QuerySet[Ticket]:
    """Requests `user` filed ("mine") or watches ("watching"), filtered; rows without related
    objects, as ticket_queue."""
    queryset = ticket_rows(user=user)
    if filters.get("scope") == "watching":
        queryset = queryset.filter(watchers=user)
    else:
        queryset = queryset.filter(requester=user)
    return ticket_filter(queryset, filters=filters, user_pk=user.pk, lens=lens)
