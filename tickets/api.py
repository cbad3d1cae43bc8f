"""REST API v1 for tickets: thin viewsets over tickets.selectors and tickets.services.

Tickets are addressed by reference (`IT-42`), people by username, departments by slug. Every
response about one ticket carries an `ETag`; a write sent with `If-Match` that no longer
matches answers 412, so two clients cannot overwrite each other's changes unknowingly.
"""

from __future__ import annotations

import copy
import hashlib
from datetime import UTC, timedelta

import django_filters
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_filters.fields import IsoDateTimeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, PermissionDenied
from rest_framework.filters import OrderingFilter
from rest_framework.response import Response

from departments.models import Department, Priority, Service, User
from servicedesk import permissions
from servicedesk.api.filters import QuietDjangoFilterBackend
from servicedesk.api.pagination import CappedKeysetPagination
from servicedesk.api.schema import ERROR_RESPONSES, PRECONDITION_FAILED
from servicedesk.prepared import PreparedGet, PreparedQuery, prefetched
from slas import selectors as sla_selectors
from slas.models import Escalation, Metric
from tickets import api_rows, selectors, services
from tickets.models import Status, Ticket

TEXT_MAX = 50_000
SLA_STATES = ("running", "paused", "met", "breached", "cancelled")


class PreconditionFailed(APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = _(
        "This request was changed since you read it (If-Match does not match its ETag). "
        "Read it again and retry."
    )
    default_code = "precondition_failed"


def ticket_etag(ticket: Ticket) -> str:
    """A strong ETag: every service that changes a ticket moves its `updated_at`."""
    digest = hashlib.sha256(
        f"{ticket.pk}:{ticket.updated_at.isoformat()}:{ticket.status}".encode()
    ).hexdigest()
    return f'"{digest[:32]}"'


def _if_match_ok(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    candidates = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return etag in candidates


IF_MATCH = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description=_("The ETag you read; a stale one answers 412 instead of overwriting."),
)
WRITE_ERRORS = {**ERROR_RESPONSES, 412: PRECONDITION_FAILED}


# --- Serializers ----------------------------------------------------------------------------


class ClockSerializer(serializers.Serializer):
    metric = serializers.ChoiceField(choices=Metric.choices)
    target = serializers.DurationField()
    elapsed = serializers.DurationField(help_text=_("business time counted so far"))
    deadline = serializers.DateTimeField(allow_null=True)
    state = serializers.ChoiceField(choices=[(state, state) for state in SLA_STATES])
    breached_at = serializers.DateTimeField(allow_null=True)


class EscalationSerializer(serializers.Serializer):
    metric = serializers.ChoiceField(choices=Metric.choices)
    level = serializers.IntegerField(
        allow_null=True, help_text=_("1-based position in the metric's ladder, by threshold")
    )
    threshold = serializers.DecimalField(max_digits=4, decimal_places=2, coerce_to_string=False)
    fired_at = serializers.DateTimeField()


class FieldsBuiltOnce:
    """A ModelSerializer that builds its fields from the model once per class, not once per
    instance: they depend only on the class and its Meta, and building them (model field
    introspection) costs more than the rest of serialising one ticket. Each instance still
    gets its own copies (DRF binds fields to their parent serializer)."""

    _built_fields: dict | None = None

    def get_fields(self):
        cls = type(self)
        if cls.__dict__.get("_built_fields") is None:
            cls._built_fields = super().get_fields()
        return copy.deepcopy(cls._built_fields)


class TicketSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    """Output: one ticket, with its SLA clocks and fired escalations (`_attach_sla` first)."""

    service = serializers.PrimaryKeyRelatedField(read_only=True)
    supplier_department = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    customer_department = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True
    )
    requester = serializers.SlugRelatedField(slug_field="username", read_only=True)
    assignee = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    sla = ClockSerializer(source="api_sla", many=True, read_only=True)
    escalations = EscalationSerializer(source="api_escalations", many=True, read_only=True)

    class Meta:
        model = Ticket
        fields = [
            "reference",
            "title",
            "description",
            "service",
            "supplier_department",
            "customer_department",
            "requester",
            "assignee",
            "priority",
            "status",
            "confidential",
            "created_at",
            "updated_at",
            "sla",
            "escalations",
        ]
        read_only_fields = fields


class FilingServiceField(serializers.PrimaryKeyRelatedField):
    """A service by id, read with its standard's current version and calendar (filing then
    reads no configuration), by SQL compiled once per process (servicedesk/prepared.py)."""

    _services = PreparedGet(
        Service.objects.select_related(*sla_selectors.SERVICE_FILING_RELATED), "pk"
    )

    def __init__(self, **kwargs):
        super().__init__(queryset=self._services.queryset, **kwargs)

    def to_internal_value(self, data):
        # PrimaryKeyRelatedField.to_internal_value, with the prepared read.
        try:
            if isinstance(data, bool):
                raise TypeError
            return self._services.get(data)
        except Service.DoesNotExist:
            self.fail("does_not_exist", pk_value=data)
        except (TypeError, ValueError):
            self.fail("incorrect_type", data_type=type(data).__name__)


def ticket_representation(ticket: Ticket) -> dict:
    """`TicketSerializer(ticket).data`, from one serializer kept per process: its fields are
    bound once instead of deep-copied and bound for every response (most of the cost of
    serialising one ticket). It reads nothing from a request or context, and representing an
    object does not change a serializer, so sharing it is safe."""
    global _ticket_out
    if _ticket_out is None:
        _ticket_out = TicketSerializer()
    return _ticket_out.to_representation(ticket)


_ticket_out: TicketSerializer | None = None


class TicketCreateSerializer(serializers.Serializer):
    service = FilingServiceField()
    title = serializers.CharField(max_length=services.TITLE_MAX)
    description = serializers.CharField(max_length=TEXT_MAX, allow_blank=True, default="")
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)


class TicketUpdateSerializer(serializers.Serializer):
    """PATCH: each field given goes through its own service (all in one transaction)."""

    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    service = serializers.PrimaryKeyRelatedField(queryset=Service.objects.all(), required=False)
    assignee = serializers.SlugRelatedField(
        slug_field="username", queryset=User.objects.all(), required=False, allow_null=True
    )


class CommentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    author = serializers.CharField(source="author.username")
    body = serializers.CharField()
    internal = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class CommentPageSerializer(serializers.Serializer):
    """A page of comments, paginated like every list."""

    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = CommentSerializer(many=True)


class CommentInputSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=TEXT_MAX)
    internal = serializers.BooleanField(
        default=False, help_text=_("An internal note (supplier department only).")
    )


class TransitionSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Status.choices)
    note = serializers.CharField(
        max_length=TEXT_MAX,
        required=False,
        allow_blank=True,
        help_text=_("Posted as a comment with the change."),
    )
    internal = serializers.BooleanField(
        default=False, help_text=_("Post the note as an internal note.")
    )


class AssignSerializer(serializers.Serializer):
    assignee = serializers.SlugRelatedField(
        slug_field="username",
        queryset=User.objects.all(),
        allow_null=True,
        help_text=_("username, or null to unassign"),
    )


class PrioritySerializer(serializers.Serializer):
    priority = serializers.ChoiceField(choices=Priority.choices)


class RatingInputSerializer(serializers.Serializer):
    score = serializers.IntegerField(min_value=1, max_value=5)
    comment = serializers.CharField(max_length=TEXT_MAX, allow_blank=True, default="")


class RatingSerializer(serializers.Serializer):
    score = serializers.IntegerField(source="rating")
    comment = serializers.CharField()
    created_at = serializers.DateTimeField()


# --- SLA rows for a page of tickets ---------------------------------------------------------


def _sla_rows(clocks, *, lens: selectors.SlaLens) -> list[dict]:
    """ClockSerializer rows of one ticket's clocks as of `lens.now`."""
    return [
        api_rows.clock_row(clock, elapsed=lens.elapsed(clock), now=lens.now) for clock in clocks
    ]


def _attach_sla(tickets: list[Ticket], *, now) -> list[Ticket]:
    """Set `api_sla` and `api_escalations` on each ticket (clocks and escalations prefetched).

    Calendars are loaded once per distinct calendar (SlaLens) and ladders come from the
    version content cache, so a page costs the same number of queries at any size. The list
    page does the same from rows (api_rows).
    """
    lens = selectors.SlaLens(now=now)
    version_ids = {
        clock.version_id for t in tickets if t.escalations.all() for clock in t.clocks.all()
    }
    version_ids |= {e.level.version_id for t in tickets for e in t.escalations.all() if e.level}
    ladders = api_rows.ladder_thresholds(version_ids)
    for ticket in tickets:
        clocks = list(ticket.clocks.all())
        ticket.api_sla = _sla_rows(clocks, lens=lens)
        clock_versions = {clock.metric: clock.version_id for clock in clocks}
        ticket.api_escalations = [
            {
                "metric": escalation.metric,
                "level": api_rows.escalation_level(
                    ladders,
                    version_id=(
                        escalation.level.version_id
                        if escalation.level
                        else clock_versions.get(escalation.metric)
                    ),
                    metric=escalation.metric,
                    threshold=escalation.threshold,
                ),
                "threshold": escalation.threshold,
                "fired_at": escalation.fired_at,
            }
            for escalation in ticket.escalations.all()
        ]
    return tickets


# --- Filters --------------------------------------------------------------------------------


class UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 instant, normalised to UTC.

    ISO 8601 allows offsets (+20:50) and instants (year 1 at -12:00) that PostgreSQL or
    Python cannot hold; those are a 400 here instead of a database error.
    """

    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            parsed = parsed.astimezone(UTC)
            parsed + timedelta(days=2)  # room for the time zone conversions ahead
            parsed - timedelta(days=2)
        except (OverflowError, ValueError):
            raise ValidationError(_("Give an instant between the years 1 and 9999.")) from None
        return parsed


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


class TicketFilter(django_filters.FilterSet):
    supplier_department = django_filters.ModelChoiceFilter(
        queryset=Department.objects.all(), to_field_name="slug", help_text="department slug"
    )
    customer_department = django_filters.ModelChoiceFilter(
        queryset=Department.objects.all(), to_field_name="slug", help_text="department slug"
    )
    requester = django_filters.ModelChoiceFilter(
        queryset=User.objects.all(), to_field_name="username", help_text="username"
    )
    assignee = django_filters.ModelChoiceFilter(
        queryset=User.objects.all(), to_field_name="username", help_text="username"
    )
    service = django_filters.ModelChoiceFilter(queryset=Service.objects.all())
    status = django_filters.ChoiceFilter(choices=Status.choices)
    priority = django_filters.ChoiceFilter(choices=Priority.choices)
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Ticket
        fields = [
            "supplier_department",
            "customer_department",
            "requester",
            "assignee",
            "service",
            "status",
            "priority",
        ]


# --- Viewset --------------------------------------------------------------------------------


# A ticket's fired escalations as the API lists them.
_TICKET_ESCALATIONS = Escalation.objects.select_related("level").order_by(
    "fired_at", "metric", "threshold"
)
_escalations_of_ticket = PreparedQuery(_TICKET_ESCALATIONS, "ticket_id")


@extend_schema_view(
    list=extend_schema(summary=_("Tickets you may see")),
    retrieve=extend_schema(
        summary=_("A ticket, by reference"),
        responses={200: TicketSerializer, **ERROR_RESPONSES},
    ),
    create=extend_schema(
        summary=_("File a request (you are the requester)"),
        request=TicketCreateSerializer,
        responses={201: TicketSerializer, **ERROR_RESPONSES},
    ),
    partial_update=extend_schema(
        summary=_("Change priority, service or assignee (supplier department)"),
        request=TicketUpdateSerializer,
        parameters=[IF_MATCH],
        responses={200: TicketSerializer, **WRITE_ERRORS},
    ),
)
class TicketViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Requests between departments, with the same permissions as the browser UI."""

    serializer_class = TicketSerializer
    # Keyset pages, and a count that stops at 1,000 rows (issue 10): neither an OFFSET nor an
    # exact count may grow with the history.
    pagination_class = CappedKeysetPagination
    lookup_field = "reference"
    lookup_value_regex = r"[^/]+"
    # No FilterSet is built for a list asking for no filter (most requests).
    filter_backends = [QuietDjangoFilterBackend, OrderingFilter]
    filterset_class = TicketFilter
    ordering_fields = ["created_at", "updated_at", "priority", "status", "number"]
    ordering = ["-created_at", "-pk"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        return (
            selectors.ticket_list(user=self.request.user)
            .prefetch_related(Prefetch("escalations", queryset=_TICKET_ESCALATIONS))
            .order_by("-created_at", "-pk")
        )

    def get_object(self) -> Ticket:
        # The selector answers 404 for what the caller may not see (ids do not leak).
        ticket = selectors.ticket_get_for_user(
            user=self.request.user, reference=self.kwargs["reference"]
        )
        self.check_object_permissions(self.request, ticket)
        return ticket

    # Responses ---------------------------------------------------------------------------

    def _ticket_response(self, reference: str, *, code: int = status.HTTP_200_OK) -> Response:
        return self._represented(self.get_queryset().filter(reference=reference).get(), code=code)

    def _represented(self, ticket: Ticket, *, code: int = status.HTTP_200_OK) -> Response:
        _attach_sla([ticket], now=timezone.now())
        response = Response(ticket_representation(ticket), status=code)
        response["ETag"] = ticket_etag(ticket)
        return response

    # What a list request may carry and still be the whole list, not a filtered one.
    _LIST_POSITION_PARAMS = frozenset({"cursor", "page_size", "ordering"})

    def list(self, request, *args, **kwargs):
        # Read as rows, not model instances, and written without DRF's field objects: the
        # same JSON as TicketSerializer at a fraction of the CPU (tickets/api_rows.py).
        columns = api_rows.TICKET_COLUMNS
        shape = None
        if set(request.query_params) <= self._LIST_POSITION_PARAMS:
            # The whole list (nothing to filter): its SQL is compiled once per shape.
            shape = selectors.ticket_row_parts_shape(user=request.user)
        if shape is not None:
            rows = self.paginator.paginate_shaped(
                request, self, model=Ticket, shape=shape, columns=columns
            )
        else:
            parts = selectors.ticket_row_parts(
                user=request.user, queryset=self.filter_queryset(Ticket.objects.all())
            )
            rows = self.paginator.paginate_values(parts, request, self, columns=columns)
        return self.get_paginated_response(api_rows.ticket_page(rows, now=timezone.now()))

    def retrieve(self, request, *args, **kwargs):
        # The ticket the permission check read, clocks included, is the one represented: only
        # its escalations are left to read (it was read a second time before, issue 10).
        ticket = self.get_object()
        prefetched(ticket, "escalations", _escalations_of_ticket.list(ticket.pk))
        return self._represented(ticket)

    def create(self, request, *args, **kwargs):
        data = TicketCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ticket = services.ticket_create(requester=request.user, **data.validated_data)
        # The rows just committed are the representation, so nothing is read back: the
        # requester may always see their own request, the ticket carries its clocks and
        # related rows, and a request filed a moment ago has fired no escalation (levels fire
        # from workers, after the commit).
        ticket.api_sla = _sla_rows(ticket.clocks.all(), lens=selectors.SlaLens(now=timezone.now()))
        ticket.api_escalations = []
        response = Response(ticket_representation(ticket), status=status.HTTP_201_CREATED)
        response["ETag"] = ticket_etag(ticket)
        response["Location"] = request.build_absolute_uri(f"{ticket.reference}/")
        return response

    # Writes ------------------------------------------------------------------------------

    def _locked(self, request) -> Ticket:
        """The ticket under a row lock, after the visibility and If-Match checks.

        Call inside `transaction.atomic()`: the ETag compared is the one of the row we hold,
        so no change can slip in between the check and the write.
        """
        ticket = self.get_object()
        locked = Ticket.objects.select_for_update().get(pk=ticket.pk)
        header = request.headers.get("If-Match")
        if header is not None and not _if_match_ok(header, ticket_etag(locked)):
            raise PreconditionFailed()
        return locked

    def update(self, request, *args, **kwargs):
        # Only PATCH reaches here (no PUT in http_method_names): each field has its service.
        data = TicketUpdateSerializer(data=request.data)
        with transaction.atomic():
            # Visibility first: who may not see the ticket gets 404 whatever the body says.
            ticket = self._locked(request)
            data.is_valid(raise_exception=True)
            values = data.validated_data
            if values and not permissions.can_work_ticket(request.user, ticket):
                raise PermissionDenied(_("Only the supplier department changes this request."))
            if "service" in values:
                ticket = services.ticket_change_service(
                    ticket=ticket, actor=request.user, service=values["service"]
                )
            if "priority" in values:
                ticket = services.ticket_change_priority(
                    ticket=ticket, actor=request.user, priority=values["priority"]
                )
            if "assignee" in values:
                ticket = services.ticket_assign(
                    ticket=ticket, actor=request.user, assignee=values["assignee"]
                )
        return self._ticket_response(ticket.reference)

    @extend_schema(
        summary=_("Move the ticket along the status graph"),
        request=TransitionSerializer,
        parameters=[IF_MATCH],
        responses={200: TicketSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def transition(self, request, reference=None, format=None):
        data = TransitionSerializer(data=request.data)
        with transaction.atomic():
            ticket = self._locked(request)  # 404 before any 400: ids do not leak
            data.is_valid(raise_exception=True)
            values = data.validated_data
            note = (values.get("note") or "").strip()
            before = ticket.status
            if note:
                # The note goes first: closing or cancelling ends public replies.
                services.ticket_comment(
                    ticket=ticket, author=request.user, body=note, internal=values["internal"]
                )
                ticket.refresh_from_db()
            # A supplier's first public reply opens a new ticket by itself (and a requester's
            # answer reopens a waiting one): then the asked-for change has already happened.
            done_by_the_note = before != ticket.status == values["status"]
            if not done_by_the_note:
                services.ticket_transition(
                    ticket=ticket, actor=request.user, to_status=values["status"]
                )
        return self._ticket_response(ticket.reference)

    @extend_schema(
        summary=_("Assign to an agent of the supplier department (null unassigns)"),
        request=AssignSerializer,
        parameters=[IF_MATCH],
        responses={200: TicketSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def assign(self, request, reference=None, format=None):
        data = AssignSerializer(data=request.data)
        with transaction.atomic():
            ticket = self._locked(request)  # 404 before any 400: ids do not leak
            data.is_valid(raise_exception=True)
            if not permissions.can_work_ticket(request.user, ticket):
                raise PermissionDenied(_("Only the supplier department assigns this request."))
            services.ticket_assign(
                ticket=ticket, actor=request.user, assignee=data.validated_data["assignee"]
            )
        return self._ticket_response(ticket.reference)

    @extend_schema(
        summary=_("Change the priority (clocks are re-targeted, elapsed kept)"),
        request=PrioritySerializer,
        parameters=[IF_MATCH],
        responses={200: TicketSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def priority(self, request, reference=None, format=None):
        data = PrioritySerializer(data=request.data)
        with transaction.atomic():
            ticket = self._locked(request)  # 404 before any 400: ids do not leak
            data.is_valid(raise_exception=True)
            if not permissions.can_work_ticket(request.user, ticket):
                raise PermissionDenied(_("Only the supplier department changes the priority."))
            services.ticket_change_priority(
                ticket=ticket, actor=request.user, priority=data.validated_data["priority"]
            )
        return self._ticket_response(ticket.reference)

    @extend_schema(
        summary=_("Rate the resolution (the requester, once per resolution)"),
        request=RatingInputSerializer,
        parameters=[IF_MATCH],
        responses={201: RatingSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def rating(self, request, reference=None, format=None):
        data = RatingInputSerializer(data=request.data)
        with transaction.atomic():
            ticket = self._locked(request)  # 404 before any 400: ids do not leak
            data.is_valid(raise_exception=True)
            if not permissions.can_rate(request.user, ticket):
                raise PermissionDenied(_("Only the requester rates a request."))
            rating = services.ticket_rate(
                ticket=ticket,
                actor=request.user,
                rating=data.validated_data["score"],
                comment=data.validated_data["comment"],
            )
        return Response(RatingSerializer(rating).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        methods=["GET"],
        summary=_("The conversation (internal notes only for the supplier department)"),
        parameters=[
            OpenApiParameter("page", OpenApiTypes.INT, description=_("page number")),
            OpenApiParameter("page_size", OpenApiTypes.INT, description=_("up to 500")),
        ],
        responses={200: CommentPageSerializer, **ERROR_RESPONSES},
    )
    @extend_schema(
        methods=["POST"],
        summary=_("Reply, or add an internal note"),
        request=CommentInputSerializer,
        parameters=[IF_MATCH],
        responses={201: CommentSerializer, **WRITE_ERRORS},
    )
    @action(
        detail=True,
        methods=["get", "post"],
        filterset_class=None,
        ordering_fields=["created_at"],
        ordering=["created_at", "id"],
    )
    def comments(self, request, reference=None, format=None):
        if request.method == "GET":
            ticket = self.get_object()
            comments = selectors.ticket_comments_for_user(user=request.user, ticket=ticket)
            page = self.paginate_queryset(comments.order_by("created_at", "id"))
            return self.get_paginated_response(CommentSerializer(page, many=True).data)
        data = CommentInputSerializer(data=request.data)
        with transaction.atomic():
            ticket = self._locked(request)  # 404 before any 400: ids do not leak
            data.is_valid(raise_exception=True)
            if data.validated_data["internal"] and not permissions.can_see_internal_notes(
                request.user, ticket
            ):
                raise PermissionDenied(_("Only the supplier department adds internal notes."))
            comment = services.ticket_comment(
                ticket=ticket,
                author=request.user,
                body=data.validated_data["body"],
                internal=data.validated_data["internal"],
            )
        return Response(CommentSerializer(comment).data, status=status.HTTP_201_CREATED)
