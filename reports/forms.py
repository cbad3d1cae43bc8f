from __future__ import annotations

from datetime import date, timedelta

from django import forms
from django.utils.translation import gettext_lazy as _

from departments.models import Department, Priority
from reports import buckets
from reports.selectors import Period, preset_period, reporting_today

MAX_DAYS = 3 * 366


class PeriodForm(forms.Form):
    """The period of a dashboard: a preset or custom whole days (both ends included)."""

    PRESETS = [
        ("week", _("This week")),
        ("30", _("Last 30 days")),
        ("90", _("Last 90 days")),
        ("custom", _("Custom")),
    ]
    period = forms.ChoiceField(label=_("Period"), choices=PRESETS, required=False)
    start = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("Until (included)"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def _reasonable(self, value):
        # Day arithmetic (the day after "until") must stay inside Python's date range.
        if value is not None and not 1900 <= value.year <= 9000:
            raise forms.ValidationError(_("Give a day between the years 1900 and 9000."))
        return value

    def clean_start(self):
        return self._reasonable(self.cleaned_data.get("start"))

    def clean_until(self):
        return self._reasonable(self.cleaned_data.get("until"))

    def clean(self):
        data = super().clean()
        if data.get("period") == "custom":
            start, until = data.get("start"), data.get("until")
            if start is None:
                self.add_error("start", _("Give the first day."))
            if until is None:
                self.add_error("until", _("Give the last day."))
            if start and until:
                if until < start:
                    self.add_error("until", _("The last day cannot be before the first."))
                elif (until - start).days >= MAX_DAYS:
                    self.add_error("start", _("Choose at most three years."))
        return data

    def get_period(self, today: date | None = None) -> Period:
        """The chosen period; the last 30 days when the form is invalid or empty."""
        today = today or reporting_today()
        if not self.is_valid():
            return preset_period("30", today=today)
        key = self.cleaned_data.get("period") or "30"
        if key == "custom":
            return Period(
                self.cleaned_data["start"],
                self.cleaned_data["until"] + timedelta(days=1),
                "custom",
            )
        return preset_period(key, today=today)


STATES = [
    ("", _("any")),
    ("open", _("open now")),
    ("at_risk", _("at risk now")),
    ("breached_now", _("breached now")),
    ("cancelled", _("cancelled")),
    ("fr_met", _("first response met")),
    ("fr_breached", _("first response breached")),
    ("fr_stopped", _("first response stopped")),
    ("fr_counted", _("first response met or breached")),
    ("res_met", _("resolution met")),
    ("res_breached", _("resolution breached")),
    ("res_stopped", _("resolution stopped")),
    ("res_counted", _("resolution met or breached")),
    ("rated", _("rated")),
    ("low_rated", _("rated 1 or 2")),
    *[(f"rating_{n}", _("rated %(n)d") % {"n": n}) for n in range(1, 6)],
]


class TicketFilterForm(forms.Form):
    """Filters of the list behind a dashboard figure."""

    supplier = forms.SlugField(label=_("Supplier department"), required=False)
    customer = forms.SlugField(label=_("Customer department"), required=False)
    either = forms.SlugField(required=False, widget=forms.HiddenInput)
    not_supplier = forms.SlugField(required=False, widget=forms.HiddenInput)
    service = forms.IntegerField(label=_("Service"), required=False, min_value=1)
    priority = forms.ChoiceField(
        label=_("Priority"), choices=[("", _("any")), *Priority.choices], required=False
    )
    assignee = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)
    filed_from = forms.DateField(
        label=_("Filed from"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    filed_before = forms.DateField(
        label=_("Filed before"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    state = forms.ChoiceField(label=_("State"), choices=STATES, required=False)
    # One bar of the "time to stop" histogram: with state fr_stopped or res_stopped.
    bucket = forms.IntegerField(
        required=False, min_value=0, max_value=buckets.COUNT - 1, widget=forms.HiddenInput
    )

    def clean(self):
        data = super().clean()
        if data.get("bucket") is not None and data.get("state") not in (
            "fr_stopped",
            "res_stopped",
        ):
            self.add_error("bucket", _("A time bucket needs a stopped-clock state."))
        for name in ("supplier", "customer", "either", "not_supplier"):
            slug = data.get(name)
            if slug:
                department = Department.objects.filter(slug=slug).first()
                if department is None:
                    self.add_error(name, _("No such department."))
                data[f"{name}_department"] = department
        start, end = data.get("filed_from"), data.get("filed_before")
        if start and end and end <= start:
            self.add_error("filed_before", _("Must come after “filed from”."))
        return data
