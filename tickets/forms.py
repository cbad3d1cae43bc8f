from django import forms
from django.utils.translation import gettext_lazy as _

from departments.models import Priority, Service
from tickets.models import Status


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data]
        return [single(data, initial)] if data else []


class TicketCreateForm(forms.Form):
    service = forms.ModelChoiceField(
        label=_("Service"),
        queryset=Service.objects.filter(active=True, department__active=True).select_related(
            "department"
        ),
    )
    title = forms.CharField(label=_("Title"), max_length=200)
    description = forms.CharField(
        label=_("Description"),
        widget=forms.Textarea(attrs={"rows": 8}),
        required=False,
        help_text=_("Markdown is supported."),
    )
    priority = forms.ChoiceField(
        label=_("Priority"),
        choices=[("", _("Service default")), *Priority.choices],
        required=False,
    )
    attachments = MultipleFileField(label=_("Attachments"), required=False)


class CommentForm(forms.Form):
    body = forms.CharField(label=_("Message"), widget=forms.Textarea(attrs={"rows": 5}))
    internal = forms.BooleanField(
        label=_("Internal note (not shown to the requester)"), required=False
    )
    attachments = MultipleFileField(label=_("Attachments"), required=False)


class TransitionForm(forms.Form):
    to_status = forms.ChoiceField(choices=Status.choices)


class RatingForm(forms.Form):
    rating = forms.TypedChoiceField(
        label=_("Rating"),
        coerce=int,
        choices=[(i, str(i)) for i in range(1, 6)],
        widget=forms.RadioSelect,
    )
    comment = forms.CharField(
        label=_("Comment"), widget=forms.Textarea(attrs={"rows": 3}), required=False
    )
