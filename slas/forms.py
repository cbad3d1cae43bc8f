"""Forms of the configuration pages: calendars and service standards (issue 7).

They validate and translate input into the plain values the services take; they never save.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import date, time, timedelta
from decimal import Decimal
from functools import lru_cache

import holidays as holidays_lib
from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from departments.models import Department, Priority, Service
from slas.clock import BusinessCalendar
from slas.durations import DurationError, format_duration, parse_duration
from slas.models import Calendar, LadderAction, Metric, WorkingInterval

WEEKDAYS = list(WorkingInterval.Weekday.choices)  # [(0, "Monday"), …]
PRIORITIES = [value for value, _label in Priority.choices]
_INTERVAL = re.compile(r"^\s*(\d{1,2})(?::(\d{2}))?\s*[-–]\s*(\d{1,2})(?::(\d{2}))?\s*$")
_HOLIDAY = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})\s*(.*)$")

DURATION_MESSAGES = {
    "empty": _("Enter a duration such as 4h, 30m or 2 business days."),
    "syntax": _("“%(text)s” is not a duration. Use e.g. 4h, 30m, 1h30m or 2 business days."),
    "unit": _("Unknown unit “%(unit)s”. Use s, m, h or business days."),
    "days": _(
        "Say “%(number)s business days” (counted in the calendar's working day) or give "
        "hours, e.g. %(hours)sh."
    ),
    "repeated": _("Each unit may appear only once."),
    "negative": _("A duration cannot be negative."),
    "zero": _("A target must be longer than zero."),
    "too_long": _("A target must be shorter than ten years."),
    "no_working_day": _("Business days need a calendar with working hours; give hours instead."),
}


def duration_message(error: DurationError) -> str:
    template = DURATION_MESSAGES.get(error.code)
    if template is None:
        return str(error)
    return str(template) % error.params if error.params else str(template)


@lru_cache(maxsize=1)
def time_zone_names() -> list[str]:
    return sorted(zoneinfo.available_timezones())


@lru_cache(maxsize=1)
def holiday_countries() -> list[tuple[str, str]]:
    """(ISO alpha-2 code, readable name) of every country the holidays package knows."""
    from holidays.registry import COUNTRIES

    supported = holidays_lib.list_supported_countries()
    names = {}
    for module, spec in COUNTRIES.items():
        code = spec[1]
        if code in supported:
            names[code] = module.replace("_", " ").title()
    return sorted(((code, f"{name} ({code})") for code, name in names.items()), key=lambda c: c[1])


def parse_intervals(text: str, weekday_label: str) -> list[tuple[time, time]]:
    """Read "09:00-12:30, 13:30-17:30" (24:00 or 00:00 as an end = midnight)."""
    intervals: list[tuple[time, time]] = []
    for part in [p for p in re.split(r"[,;]", text or "") if p.strip()]:
        match = _INTERVAL.match(part)
        if not match:
            raise forms.ValidationError(
                gettext("%(day)s: “%(part)s” is not an interval like 09:00-17:00.")
                % {"day": weekday_label, "part": part.strip()}
            )
        h1, m1, h2, m2 = (int(g or 0) for g in match.groups())
        if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
            raise forms.ValidationError(
                gettext("%(day)s: “%(part)s” is not a time of day.")
                % {"day": weekday_label, "part": part.strip()}
            )
        start, end = time(h1, m1), time(0) if h2 == 24 else time(h2, m2)
        if end != time(0) and end <= start:
            raise forms.ValidationError(
                gettext("%(day)s: %(start)s-%(end)s ends before it starts.")
                % {"day": weekday_label, "start": f"{start:%H:%M}", "end": f"{end:%H:%M}"}
            )
        intervals.append((start, end))
    ordered = sorted(intervals, key=lambda pair: pair[0])
    for (s1, e1), (s2, e2) in zip(ordered, ordered[1:], strict=False):
        if e1 == time(0) or s2 < e1:
            raise forms.ValidationError(
                gettext("%(day)s: %(first)s overlaps %(second)s.")
                % {
                    "day": weekday_label,
                    "first": f"{s1:%H:%M}-{'24:00' if e1 == time(0) else f'{e1:%H:%M}'}",
                    "second": f"{s2:%H:%M}-{'24:00' if e2 == time(0) else f'{e2:%H:%M}'}",
                }
            )
    return ordered


def format_intervals(intervals) -> str:
    return ", ".join(
        f"{start:%H:%M}-{'24:00' if end == time(0) else f'{end:%H:%M}'}" for start, end in intervals
    )


class CalendarForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120)
    timezone = forms.CharField(
        label=_("Time zone"),
        max_length=64,
        initial="Europe/Berlin",
        help_text=_("An IANA name such as Europe/Berlin; start typing to pick one."),
        widget=forms.TextInput(attrs={"list": "time-zones", "autocomplete": "off"}),
    )
    always_open = forms.BooleanField(
        label=_("24×7 (always open; working hours and holidays are ignored)"), required=False
    )
    holidays = forms.CharField(
        label=_("Holidays"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("One per line: date and an optional name, e.g. 2026-12-24 Christmas Eve."),
    )
    holiday_country = forms.ChoiceField(label=_("Holiday preset: country"), required=False)
    holiday_subdivision = forms.CharField(
        label=_("Holiday preset: subdivision"),
        max_length=10,
        required=False,
        help_text=_("Optional region code, e.g. BY for Bavaria."),
    )

    def __init__(self, *args, calendar: Calendar | None = None, **kwargs):
        self.calendar = calendar
        super().__init__(*args, **kwargs)
        self.fields["holiday_country"].choices = [("", _("None")), *holiday_countries()]
        for weekday, label in WEEKDAYS:
            self.fields[f"day_{weekday}"] = forms.CharField(
                label=label,
                required=False,
                help_text=_("e.g. 09:00-12:30, 13:30-17:30; empty = closed"),
            )
        order = ["name", "timezone", "always_open"] + [f"day_{d}" for d, _l in WEEKDAYS]
        self.order_fields(order + ["holidays", "holiday_country", "holiday_subdivision"])

    @classmethod
    def initial_for(cls, calendar: Calendar) -> dict:
        initial = {
            "name": calendar.name,
            "timezone": calendar.timezone,
            "always_open": calendar.always_open,
            "holiday_country": calendar.holiday_country,
            "holiday_subdivision": calendar.holiday_subdivision,
            "holidays": "\n".join(
                f"{h.date:%Y-%m-%d} {h.name}".strip() for h in calendar.holidays.all()
            ),
        }
        week: dict[int, list] = {}
        for interval in calendar.intervals.all():
            week.setdefault(interval.weekday, []).append((interval.start, interval.end))
        for weekday, _label in WEEKDAYS:
            initial[f"day_{weekday}"] = format_intervals(week.get(weekday, []))
        return initial

    def day_fields(self):
        return [self[f"day_{weekday}"] for weekday, _label in WEEKDAYS]

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        clash = Calendar.objects.filter(name__iexact=name)
        if self.calendar is not None:
            clash = clash.exclude(pk=self.calendar.pk)
        if clash.exists():
            raise forms.ValidationError(gettext("A calendar with this name already exists."))
        return name

    def clean_timezone(self):
        value = self.cleaned_data["timezone"].strip()
        if value not in set(time_zone_names()):
            raise forms.ValidationError(
                gettext("Unknown time zone “%(zone)s”. Pick one from the list, e.g. Europe/Berlin.")
                % {"zone": value}
            )
        return value

    def clean_holidays(self):
        result: dict[date, str] = {}
        for number, line in enumerate((self.cleaned_data["holidays"] or "").splitlines(), 1):
            if not line.strip():
                continue
            match = _HOLIDAY.match(line)
            try:
                day = date.fromisoformat(match.group(1)) if match else None
            except ValueError:
                day = None
            if day is None:
                raise forms.ValidationError(
                    gettext("Line %(n)d: “%(line)s” does not start with a date like 2026-12-24.")
                    % {"n": number, "line": line.strip()[:40]}
                )
            if day in result:
                raise forms.ValidationError(
                    gettext("Line %(n)d: %(date)s is listed twice.")
                    % {"n": number, "date": day.isoformat()}
                )
            result[day] = match.group(2).strip()[:120]
        return result

    def clean(self):
        cleaned = super().clean()
        week: dict[int, list[tuple[time, time]]] = {}
        for weekday, label in WEEKDAYS:
            try:
                intervals = parse_intervals(cleaned.get(f"day_{weekday}", ""), str(label))
            except forms.ValidationError as error:
                self.add_error(f"day_{weekday}", error)
                continue
            if intervals:
                week[weekday] = intervals
        cleaned["week"] = week
        country = cleaned.get("holiday_country") or ""
        subdivision = (cleaned.get("holiday_subdivision") or "").strip().upper()
        cleaned["holiday_subdivision"] = subdivision
        if subdivision and not country:
            self.add_error(
                "holiday_subdivision", gettext("Choose the country of this subdivision first.")
            )
        elif subdivision:
            known = holidays_lib.list_supported_countries().get(country, [])
            if subdivision not in known:
                self.add_error(
                    "holiday_subdivision",
                    gettext("%(country)s has no subdivision “%(sub)s”. Known: %(known)s.")
                    % {
                        "country": country,
                        "sub": subdivision,
                        "known": ", ".join(known) or gettext("none"),
                    },
                )
        day_errors = any(self.has_error(f"day_{d}") for d, _l in WEEKDAYS)
        if not cleaned.get("always_open") and not week and not day_errors:
            raise forms.ValidationError(
                gettext("Give at least one working interval, or tick 24×7.")
            )
        return cleaned

    def business_calendar(self) -> BusinessCalendar:
        """The calendar as entered (valid form), for the preview before saving."""
        from slas.selectors import preset_holidays

        data = self.cleaned_data
        if data["always_open"]:
            return BusinessCalendar.always_open(data["timezone"])
        this_year = date.today().year
        dates = set(data["holidays"]) | set(
            preset_holidays(
                country=data["holiday_country"],
                subdivision=data["holiday_subdivision"],
                years=range(this_year - 1, this_year + 3),
            )
        )
        return BusinessCalendar(timezone=data["timezone"], week=data["week"], holidays=dates)


class PreviewForm(forms.Form):
    """The "filed now → due at" duration on the calendar page."""

    duration = forms.CharField(
        label=_("Duration"),
        max_length=40,
        initial="4h",
        help_text=_("e.g. 4h, 1h30m or 2 business days"),
    )

    def __init__(self, *args, working_day: timedelta | None = None, **kwargs):
        self.working_day = working_day
        super().__init__(*args, **kwargs)

    def clean_duration(self):
        try:
            return parse_duration(self.cleaned_data["duration"], working_day=self.working_day)
        except DurationError as error:
            raise forms.ValidationError(duration_message(error)) from None


class StandardForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120)
    department = forms.ModelChoiceField(
        label=_("Owning department"),
        queryset=Department.objects.none(),
        required=False,
        help_text=_("Leads of this department may edit it when the department allows them."),
    )
    calendar = forms.ModelChoiceField(label=_("Calendar"), queryset=Calendar.objects.all())
    note = forms.CharField(
        label=_("What changes (kept with the version)"), max_length=200, required=False
    )
    services = forms.ModelMultipleChoiceField(
        label=_("Services that use it"),
        queryset=Service.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    departments = forms.ModelMultipleChoiceField(
        label=_("Departments that use it by default"),
        queryset=Department.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Their services without a standard of their own use this one."),
    )
    days = forms.IntegerField(
        label=_("What-if: replay the last … days"), min_value=1, max_value=730, initial=90
    )

    def __init__(
        self, *args, standard=None, scope_department_ids: set[int] | None = None, **kwargs
    ):
        self.standard = standard
        super().__init__(*args, **kwargs)
        departments = Department.objects.filter(active=True)
        services = Service.objects.select_related("department").filter(active=True)
        if scope_department_ids is not None:
            departments = departments.filter(pk__in=scope_department_ids)
            services = services.filter(department_id__in=scope_department_ids)
            self.fields["department"].required = True
        self.fields["department"].queryset = departments
        self.fields["departments"].queryset = departments
        self.fields["services"].queryset = services.order_by("department__name", "name")
        for priority in PRIORITIES:
            for metric, label in (
                ("first_response", _("first response")),
                ("resolution", _("resolution")),
            ):
                self.fields[f"{priority}_{metric}"] = forms.CharField(
                    label=f"{priority} {label}",
                    required=False,
                    max_length=40,
                    widget=forms.TextInput(attrs={"size": 12}),
                )

    @staticmethod
    def initial_for(standard, *, services, departments) -> dict:
        version = standard.current_version
        initial = {
            "name": standard.name,
            "department": standard.department_id,
            "calendar": version.calendar_id if version else None,
            "services": [s.pk for s in services],
            "departments": [d.pk for d in departments],
            "days": 90,
        }
        if version is not None:
            for target in version.targets.all():
                initial[f"{target.priority}_first_response"] = format_duration(
                    target.first_response
                )
                initial[f"{target.priority}_resolution"] = format_duration(target.resolution)
        return initial

    def target_rows(self):
        return [
            (priority, label, self[f"{priority}_first_response"], self[f"{priority}_resolution"])
            for priority, label in Priority.choices
        ]

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        from slas.models import ServiceStandard

        clash = ServiceStandard.objects.filter(name__iexact=name)
        if self.standard is not None:
            clash = clash.exclude(pk=self.standard.pk)
        if clash.exists():
            raise forms.ValidationError(gettext("A standard with this name already exists."))
        return name

    def clean(self):
        cleaned = super().clean()
        calendar = cleaned.get("calendar")
        working_day = None
        if calendar is not None:
            from slas.selectors import business_calendar

            working_day = business_calendar(calendar.pk).typical_working_day()
        targets: dict[str, tuple[timedelta, timedelta]] = {}
        for priority in PRIORITIES:
            values = {}
            for metric in ("first_response", "resolution"):
                name = f"{priority}_{metric}"
                text = (cleaned.get(name) or "").strip()
                if not text:
                    values[metric] = None
                    continue
                try:
                    values[metric] = parse_duration(text, working_day=working_day)
                except DurationError as error:
                    self.add_error(name, duration_message(error))
                    values[metric] = False
            first, resolution = values["first_response"], values["resolution"]
            if first is False or resolution is False:
                continue
            if first is None and resolution is None:
                continue
            if first is None or resolution is None:
                missing = "first_response" if first is None else "resolution"
                self.add_error(
                    f"{priority}_{missing}",
                    gettext("%(priority)s: give both targets, or leave both empty.")
                    % {"priority": priority},
                )
                continue
            if resolution < first:
                self.add_error(
                    f"{priority}_resolution",
                    gettext(
                        "%(priority)s: resolution (%(resolution)s) must not be shorter than "
                        "first response (%(first)s)."
                    )
                    % {
                        "priority": priority,
                        "resolution": format_duration(resolution),
                        "first": format_duration(first),
                    },
                )
                continue
            targets[priority] = (first, resolution)
        if not targets and not any(self.has_error(f"{p}_first_response") for p in PRIORITIES):
            raise forms.ValidationError(gettext("Give the targets of at least one priority."))
        cleaned["targets"] = targets
        return cleaned


class LadderLevelForm(forms.Form):
    metric = forms.ChoiceField(
        label=_("Metric"), choices=[("", "—"), *Metric.choices], required=False
    )
    threshold = forms.DecimalField(
        label=_("Threshold (% of the target)"),
        min_value=Decimal("1"),
        max_value=Decimal("1000"),
        decimal_places=0,
        required=False,
        widget=forms.NumberInput(attrs={"size": 5, "step": 1}),
    )
    actions = forms.MultipleChoiceField(
        label=_("Actions"),
        choices=LadderAction.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def clean(self):
        cleaned = super().clean()
        metric, threshold, actions = (
            cleaned.get("metric"),
            cleaned.get("threshold"),
            cleaned.get("actions"),
        )
        if not metric and threshold is None and not actions:
            cleaned["empty"] = True
            return cleaned
        cleaned["empty"] = False
        if not metric:
            self.add_error("metric", gettext("Choose the metric of this level."))
        if threshold is None and not self.has_error("threshold"):
            self.add_error("threshold", gettext("Give the threshold in percent, e.g. 75."))
        if not actions:
            self.add_error("actions", gettext("Choose at least one action."))
        return cleaned


class BaseLadderFormSet(forms.BaseFormSet):
    def get_form_kwargs(self, index):
        # Validate every row, even an extra row equal to its initial value (the current
        # ladder is shown as initial rows): an empty row is recognised in the form's clean.
        return {**super().get_form_kwargs(index), "empty_permitted": False}

    def clean(self):
        if any(self.errors):
            return
        self.levels: list[tuple[str, Decimal, list[str]]] = []
        last: dict[str, Decimal] = {}
        for form in self.forms:
            data = form.cleaned_data
            if not data or data.get("empty"):
                continue
            metric, percent = data["metric"], data["threshold"]
            if metric in last and percent <= last[metric]:
                raise forms.ValidationError(
                    gettext(
                        "%(metric)s levels must have increasing thresholds: %(this)s %% comes "
                        "after %(previous)s %%."
                    )
                    % {
                        "metric": Metric(metric).label.capitalize(),
                        "this": percent,
                        "previous": last[metric],
                    }
                )
            last[metric] = percent
            self.levels.append((metric, (percent / 100).quantize(Decimal("0.01")), data["actions"]))
        if not any(threshold == Decimal("1.00") for _m, threshold, _a in self.levels):
            raise forms.ValidationError(
                gettext("The ladder needs at least one level at 100 % (the breach).")
            )


LadderFormSet = forms.formset_factory(
    LadderLevelForm, formset=BaseLadderFormSet, extra=2, max_num=20, validate_max=True
)


def ladder_initial(version) -> list[dict]:
    if version is None:
        return [
            {"metric": "first_response", "threshold": 100, "actions": ["notify_supplier_lead"]},
            {"metric": "resolution", "threshold": 100, "actions": ["notify_supplier_lead"]},
        ]
    return [
        {
            "metric": level.metric,
            "threshold": (level.threshold * 100).quantize(Decimal("1")),
            "actions": list(level.actions),
        }
        for level in version.levels.order_by("metric", "threshold")
    ]


class RetargetForm(forms.Form):
    confirm = forms.BooleanField(
        label=_("Yes, move these open tickets to the current version (elapsed time is kept)."),
        error_messages={"required": _("Tick the box to confirm.")},
    )
