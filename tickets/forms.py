"""Browser forms. They parse and validate input only; every rule about what may happen lives in
tickets/services.py and servicedesk/permissions.py, whose DomainErrors land next to the field
they name."""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from departments.models import Department, Priority, Service, User
from tickets.models import Status
from tickets.selectors import QUEUE_SORTS

MARKDOWN_HELP = _(
    "Markdown works: **bold**, *italic*, lists with -, `code`, [links](https://…). "
    "Use Preview to check it."
)


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one input; size and type limits are enforced by the services."""

    def __init__(self, *args, **kwargs):
        limit_mb = settings.ATTACHMENT_MAX_BYTES // (1024 * 1024)
        kwargs.setdefault(
            "widget",
            MultipleFileInput(
                attrs={
                    "accept": ",".join(settings.ATTACHMENT_ALLOWED_TYPES),
                    "data-max-bytes": settings.ATTACHMENT_MAX_BYTES,
                    "data-allowed-types": " ".join(settings.ATTACHMENT_ALLOWED_TYPES),
                }
            ),
        )
        kwargs.setdefault(
            "help_text",
            _("Up to %(mb)d MB per file: PDF, images, text, CSV, ZIP, Word or Excel.")
            % {"mb": limit_mb},
        )
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data]
        return [single(data, initial)] if data else []


class ServiceSelect(forms.Select):
    """Each option says whether requesters may pick the priority and, when the view supplies
    `promises`, what the service promises (both read by static/js/app.js)."""

    promises: dict[str, dict] | None = None

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        instance = getattr(value, "instance", None)
        if instance is not None:
            option["attrs"]["data-default-priority"] = instance.default_priority
            option["attrs"]["data-priority-choice"] = (
                "1" if instance.requester_may_set_priority else "0"
            )
            promise = (self.promises or {}).get(str(instance.pk))
            if promise:
                option["attrs"]["data-promise-department"] = promise["department"]
                option["attrs"]["data-promise-first"] = promise["first"]
                option["attrs"]["data-promise-resolution"] = promise["resolution"]
        return option


class ServiceChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Service) -> str:
        return f"{obj.department.name} · {obj.name}"


def active_services():
    return Service.objects.filter(active=True, department__active=True).select_related("department")


class TicketCreateForm(forms.Form):
    service = ServiceChoiceField(
        label=_("Service"),
        queryset=active_services(),
        empty_label=_("Choose a service…"),
        widget=ServiceSelect,
        help_text=_("The department and service that should handle your request."),
    )
    title = forms.CharField(
        label=_("Title"),
        max_length=200,
        help_text=_("One line that says what you need, e.g. “Laptop does not start”."),
    )
    description = forms.CharField(
        label=_("Description"),
        widget=forms.Textarea(attrs={"rows": 8, "data-preview": "1"}),
        required=False,
        help_text=MARKDOWN_HELP,
    )
    priority = forms.ChoiceField(
        label=_("Priority"),
        choices=[("", _("Service default")), *Priority.choices],
        required=False,
        help_text=_("Some services set the priority themselves."),
    )
    attachments = MultipleFileField(label=_("Attachments"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["service"].queryset = active_services().order_by("department__name", "name")


class CommentForm(forms.Form):
    PUBLIC, INTERNAL = "public", "internal"

    body = forms.CharField(
        label=_("Message"),
        widget=forms.Textarea(attrs={"rows": 5, "data-preview": "1"}),
        help_text=MARKDOWN_HELP,
    )
    visibility = forms.ChoiceField(
        label=_("Who sees it"),
        choices=[
            (PUBLIC, _("Public reply – the requester sees it")),
            (INTERNAL, _("Internal note – only the supplier department sees it")),
        ],
        initial=PUBLIC,
        widget=forms.RadioSelect(attrs={"class": "visibility-choice"}),
    )
    attachments = MultipleFileField(label=_("Attachments"), required=False)

    def __init__(self, *args, can_work: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if not can_work:
            # Requesters only ever write public replies.
            del self.fields["visibility"]

    @property
    def internal(self) -> bool:
        return self.cleaned_data.get("visibility") == self.INTERNAL


class TransitionForm(forms.Form):
    to_status = forms.ChoiceField(choices=Status.choices)


class AssignForm(forms.Form):
    assignee = forms.CharField(label=_("Assign to"), required=False, max_length=150)

    def clean_assignee(self) -> User | None:
        username = self.cleaned_data["assignee"]
        if not username:
            return None
        try:
            return User.objects.get(username=username)
        except User.DoesNotExist:
            raise forms.ValidationError(
                _("There is nobody called %(name)s."), params={"name": username}
            ) from None


class PriorityForm(forms.Form):
    priority = forms.ChoiceField(label=_("Priority"), choices=Priority.choices)


class _ListedChoiceIterator(forms.models.ModelChoiceIterator):
    """A model choice field's options from rows already read, in their order."""

    def __init__(self, field: forms.ModelChoiceField, objs: list):
        super().__init__(field)
        self.objs = objs

    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        for obj in self.objs:
            yield self.choice(obj)

    def __len__(self) -> int:
        return len(self.objs) + (1 if self.field.empty_label is not None else 0)

    def __bool__(self) -> bool:
        return self.field.empty_label is not None or bool(self.objs)


class ServiceChangeForm(forms.Form):
    service = forms.ModelChoiceField(label=_("Service"), queryset=Service.objects.none())

    def __init__(self, *args, department_id: int, shown: list[Service] | None = None, **kwargs):
        """`shown`: for an unbound form, the rows of the queryset below, already read (the
        ticket page reads them with compiled SQL). The widget lists them; the queryset, which
        only validation needs, is not built (it cost more than reading the rows)."""
        super().__init__(*args, **kwargs)
        field = self.fields["service"]
        if shown is not None and not self.is_bound:
            field.widget.choices = _ListedChoiceIterator(field, shown)
            return
        field.queryset = (
            Service.objects.filter(department_id=department_id, active=True)
            .select_related("department")  # str(service) shows the department code
            .order_by("name")
        )


class WatcherForm(forms.Form):
    ADD, REMOVE = "add", "remove"

    username = forms.CharField(label=_("Username"), max_length=150)
    action = forms.ChoiceField(choices=[(ADD, ADD), (REMOVE, REMOVE)], initial=ADD)

    def clean_username(self) -> User:
        username = self.cleaned_data["username"].strip()
        try:
            return User.objects.get(username=username, is_active=True)
        except User.DoesNotExist:
            raise forms.ValidationError(
                _("There is nobody called %(name)s."), params={"name": username}
            ) from None


class LinkRequestForm(forms.Form):
    service = ServiceChoiceField(
        label=_("Service of the other department"),
        queryset=Service.objects.none(),
        empty_label=_("Choose a service…"),
    )
    title = forms.CharField(label=_("Title"), max_length=200)
    description = forms.CharField(
        label=_("What you need from them"),
        widget=forms.Textarea(attrs={"rows": 4, "data-preview": "1"}),
        required=False,
        help_text=MARKDOWN_HELP,
    )
    priority = forms.ChoiceField(
        label=_("Priority"),
        choices=[("", _("Service default")), *Priority.choices],
        required=False,
    )

    def __init__(self, *args, exclude_department_id: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["service"].queryset = (
            active_services()
            .exclude(department_id=exclude_department_id)
            .order_by("department__name", "name")
        )


class RatingForm(forms.Form):
    rating = forms.TypedChoiceField(
        label=_("How well was your request handled?"),
        coerce=int,
        choices=[
            (5, _("5 – excellent")),
            (4, _("4 – good")),
            (3, _("3 – acceptable")),
            (2, _("2 – poor")),
            (1, _("1 – very poor")),
        ],
        widget=forms.RadioSelect(attrs={"class": "rating-choice"}),
    )
    comment = forms.CharField(
        label=_("Anything to add?"),
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=2000,
    )


SLA_FILTER_CHOICES = [
    ("", _("Any")),
    ("at_risk", _("At risk")),
    ("breached", _("Breached")),
]
SORT_CHOICES = [
    ("deadline", _("Next deadline first")),
    ("priority", _("Priority")),
    ("newest", _("Newest first")),
    ("oldest", _("Oldest first")),
    ("updated", _("Recently updated")),
]
assert {key for key, _label in SORT_CHOICES} == set(QUEUE_SORTS)
STATUS_FILTER_CHOICES = [("", _("Active (new, open, waiting)")), ("all", _("All")), *Status.choices]


class _FilterForm(forms.Form):
    """GET filters. Invalid values are reported and ignored, never a 500."""

    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    status = forms.ChoiceField(label=_("Status"), choices=STATUS_FILTER_CHOICES, required=False)
    sla = forms.ChoiceField(label=_("Service standard"), choices=SLA_FILTER_CHOICES, required=False)
    sort = forms.ChoiceField(label=_("Sort by"), choices=SORT_CHOICES, required=False)

    def filters(self) -> dict:
        if not self.is_bound:
            return {}
        if self.is_valid():
            return {k: v for k, v in self.cleaned_data.items() if v not in (None, "")}
        return {
            name: self.cleaned_data[name]
            for name in self.fields
            if name not in self.errors and self.cleaned_data.get(name) not in (None, "")
        }

    def active_count(self) -> int:
        return len([k for k in self.filters() if k not in ("sort", "scope")])


def _id_choice(queryset, label_attr="name"):
    return [("", _("Any"))] + [(str(obj.pk), getattr(obj, label_attr)) for obj in queryset]


@dataclass(frozen=True, slots=True)
class AgentOption:
    """An agent as the queue's filters and bulk bar offer them."""

    pk: int
    username: str
    name: str


class QueueFilterForm(_FilterForm):
    priority = forms.ChoiceField(
        label=_("Priority"), choices=[("", _("Any")), *Priority.choices], required=False
    )
    assignee = forms.ChoiceField(label=_("Assignee"), required=False)
    service = forms.TypedChoiceField(
        label=_("Service"), coerce=int, required=False, empty_value=None
    )
    customer_department = forms.TypedChoiceField(
        label=_("Customer department"), coerce=int, required=False, empty_value=None
    )
    field_order = [
        "q",
        "status",
        "priority",
        "sla",
        "assignee",
        "service",
        "customer_department",
        "sort",
    ]

    def __init__(
        self,
        *args,
        agents: list[AgentOption],
        services: list[tuple[str, str]],
        departments: list[tuple[str, str]],
        **kwargs,
    ):
        """`services` and `departments`: (id, label) choices in their order."""
        super().__init__(*args, **kwargs)
        self.agents = agents
        self.fields["assignee"].choices = [
            ("", _("Anybody")),
            ("me", _("Me")),
            ("none", _("Nobody (unassigned)")),
        ] + [(str(agent.pk), agent.name) for agent in agents]
        self.fields["service"].choices = [("", _("Any")), *services]
        self.fields["customer_department"].choices = [("", _("Any")), *departments]


class MyRequestsFilterForm(_FilterForm):
    scope = forms.ChoiceField(
        label=_("Show"),
        choices=[("", _("Requests I filed")), ("watching", _("Requests I watch"))],
        required=False,
    )
    supplier_department = forms.TypedChoiceField(
        label=_("Supplier department"), coerce=int, required=False, empty_value=None
    )
    field_order = ["scope", "q", "status", "supplier_department", "sla", "sort"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["supplier_department"].choices = _id_choice(
            Department.objects.filter(active=True).only("pk", "name")
        )


class BulkForm(forms.Form):
    ASSIGN_ME, ASSIGN, UNASSIGN, STATUS = "assign_me", "assign", "unassign", "status"

    tickets = forms.MultipleChoiceField(label=_("Tickets"), required=True)
    action = forms.ChoiceField(
        label=_("With the selected tickets"),
        choices=[
            (ASSIGN_ME, _("Assign to me")),
            (ASSIGN, _("Assign to…")),
            (UNASSIGN, _("Unassign")),
            (STATUS, _("Change status to…")),
        ],
    )
    assignee = forms.CharField(label=_("Assignee"), required=False, max_length=150)
    to_status = forms.ChoiceField(
        label=_("New status"), choices=[("", "—"), *Status.choices], required=False
    )

    def __init__(self, *args, references=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tickets"].choices = [(ref, ref) for ref in references]
        self.fields["tickets"].error_messages["required"] = _("Select at least one ticket.")

    def clean(self):
        data = super().clean()
        if data.get("action") == self.ASSIGN and not data.get("assignee"):
            self.add_error("assignee", _("Choose who to assign the tickets to."))
        if data.get("action") == self.STATUS and not data.get("to_status"):
            self.add_error("to_status", _("Choose the new status."))
        return data


class PreviewForm(forms.Form):
    text = forms.CharField(required=False, max_length=100_000, strip=False)
