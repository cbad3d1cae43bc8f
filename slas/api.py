"""REST API v1 for calendars, service standards and the SLA metrics.

Calendars are written through `slas.services.calendar_save`; a standard is never edited in
place: every create, PUT or PATCH publishes a new immutable version through
`slas.services.standard_publish`.
"""

from __future__ import annotations

import functools
import zoneinfo
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import django_filters
import holidays as holidays_lib
from django.db.models import Prefetch
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from departments.models import Department, Priority
from servicedesk import permissions
from servicedesk.api.schema import ERROR_RESPONSES
from slas import services
from slas.clock import BusinessCalendar
from slas.models import (
    Calendar,
    LadderAction,
    LadderLevel,
    Metric,
    ServiceStandard,
    StandardTarget,
)

MAX_INTERVALS_PER_DAY = 24
MAX_HOLIDAYS = 1000
MAX_TARGET = timedelta(days=366)
MAX_METRICS_RANGE = timedelta(days=3 * 366)
WEEKDAYS = [str(day) for day in range(7)]
# A time of day; "24:00" only ends an interval (midnight at the end of the day).
TIME_PATTERN = r"^(([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?|24:00(:00)?)$"


# --- Calendars ------------------------------------------------------------------------------


def _format_time(value: time, *, end: bool) -> str:
    if end and value == time(0):
        return "24:00"  # an interval ending at midnight ends at the end of the day
    return value.strftime("%H:%M:%S" if value.second else "%H:%M")


def _parse_time(text: str, *, end: bool) -> time:
    if end and text in ("24:00", "24:00:00"):
        return time(0)
    for pattern in ("%H:%M", "%H:%M:%S"):
        try:
            return datetime.strptime(text, pattern).time()
        except ValueError:
            continue
    raise serializers.ValidationError(
        _("“%(value)s” is not a time of day like 09:00 or 17:30.") % {"value": text[:20]}
    )


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@functools.cache
def _holiday_countries() -> dict[str, list[str]]:
    return holidays_lib.list_supported_countries()


IntervalField = serializers.ListField(
    child=serializers.CharField(max_length=8), min_length=2, max_length=2
)


@extend_schema_field(
    {
        "type": "object",
        "description": "Working intervals per weekday (0 = Monday … 6 = Sunday) as "
        '[["09:00", "17:00"], …]; "24:00" ends an interval at midnight.',
        "properties": {
            day: {
                "type": "array",
                "items": {
                    "type": "array",
                    "items": {"type": "string", "pattern": TIME_PATTERN},
                    "minItems": 2,
                    "maxItems": 2,
                },
                "maxItems": MAX_INTERVALS_PER_DAY,
            }
            for day in WEEKDAYS
        },
        "additionalProperties": False,
    }
)
class WeekField(serializers.Field):
    """{"0": [["09:00", "17:00"]], …} ⇄ {0: [(time, time)], …}."""

    default_error_messages = {
        "invalid": _('Give the week as {{"0": [["09:00", "17:00"]], …}} with 0 = Monday.'),
        "weekday": _("Weekdays are 0 (Monday) to 6 (Sunday), got “%(day)s”."),
        "too_many": _("At most %(max)d intervals per day."),
    }

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("invalid")
        week: dict[int, list[tuple[time, time]]] = {}
        for key, intervals in data.items():
            if str(key) not in WEEKDAYS:
                raise serializers.ValidationError(
                    self.error_messages["weekday"] % {"day": str(key)[:10]}
                )
            if not isinstance(intervals, list):
                self.fail("invalid")
            if len(intervals) > MAX_INTERVALS_PER_DAY:
                raise serializers.ValidationError(
                    self.error_messages["too_many"] % {"max": MAX_INTERVALS_PER_DAY}
                )
            day = []
            for pair in intervals:
                if (
                    not isinstance(pair, list | tuple)
                    or len(pair) != 2
                    or not all(isinstance(bound, str) for bound in pair)
                ):
                    self.fail("invalid")
                start = _parse_time(pair[0], end=False)
                end = _parse_time(pair[1], end=True)
                if end != time(0) and end <= start:
                    raise serializers.ValidationError(
                        _("An interval must end after it starts (%(start)s–%(end)s).")
                        % {"start": pair[0], "end": pair[1]}
                    )
                day.append((start, end))
            week[int(key)] = day
        return week

    def to_representation(self, calendar: Calendar):
        week = {day: [] for day in WEEKDAYS}
        for interval in calendar.intervals.all():
            week[str(interval.weekday)].append(
                [_format_time(interval.start, end=False), _format_time(interval.end, end=True)]
            )
        return week


@extend_schema_field({"type": "string", "enum": sorted(zoneinfo.available_timezones())})
class TimeZoneField(serializers.CharField):
    """An IANA time zone name (the schema lists them all)."""

    def __init__(self, **kwargs):
        super().__init__(max_length=64, **kwargs)


class HolidayPresetSerializer(serializers.Serializer):
    country = serializers.CharField(max_length=3, help_text=_("e.g. DE"))
    subdivision = serializers.CharField(
        max_length=10, allow_blank=True, default="", help_text=_("e.g. BY")
    )

    def validate(self, attrs):
        countries = _holiday_countries()
        country = attrs["country"].upper()
        if country not in countries:
            raise serializers.ValidationError(
                {"country": [_("The holidays package knows no country “%s”.") % country[:3]]}
            )
        subdivision = attrs.get("subdivision", "")
        if subdivision and subdivision not in countries[country]:
            raise serializers.ValidationError(
                {
                    "subdivision": [
                        _("%(country)s has no subdivision “%(sub)s”.")
                        % {"country": country, "sub": subdivision[:10]}
                    ]
                }
            )
        return {"country": country, "subdivision": subdivision}


class CalendarSerializer(serializers.ModelSerializer):
    """Output: a calendar as the contract shows it."""

    week = WeekField(source="*", read_only=True)
    holidays = serializers.SerializerMethodField()
    holiday_preset = serializers.SerializerMethodField()

    class Meta:
        model = Calendar
        fields = [
            "id",
            "name",
            "timezone",
            "always_open",
            "week",
            "holidays",
            "holiday_preset",
            "updated_at",
        ]

    def get_holidays(self, calendar: Calendar) -> list[date]:
        return [holiday.date for holiday in calendar.holidays.all()]

    @extend_schema_field(HolidayPresetSerializer(allow_null=True))
    def get_holiday_preset(self, calendar: Calendar) -> dict | None:
        if not calendar.holiday_country:
            return None
        return {"country": calendar.holiday_country, "subdivision": calendar.holiday_subdivision}


class CalendarInputSerializer(serializers.Serializer):
    """Input of POST/PUT/PATCH; PATCH keeps whatever it does not name."""

    name = serializers.CharField(max_length=120)
    timezone = TimeZoneField(help_text=_("IANA name, e.g. Europe/Berlin"))
    always_open = serializers.BooleanField(default=False)
    week = WeekField(required=False)
    holidays = serializers.ListField(
        child=serializers.DateField(), max_length=MAX_HOLIDAYS, required=False
    )
    holiday_preset = HolidayPresetSerializer(allow_null=True, required=False)

    def validate_name(self, value: str) -> str:
        value = value.strip()
        others = Calendar.objects.filter(name=value)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise serializers.ValidationError(_("A calendar with this name exists."))
        return value

    def validate_timezone(self, value: str) -> str:
        if value not in _time_zones():
            raise serializers.ValidationError(
                _("“%(value)s” is not an IANA time zone such as Europe/Berlin.")
                % {"value": value[:64]}
            )
        return value

    def validate(self, attrs):
        if self.partial:
            return attrs  # the view validates the merged calendar again, as a whole
        week = attrs.get("week", {})
        try:
            # The pure calendar refuses overlapping intervals; ask it rather than re-implement.
            BusinessCalendar(timezone=attrs["timezone"], week=week)
        except (ValueError, TypeError) as exc:
            raise serializers.ValidationError({"week": [str(exc)]}) from None
        if not attrs.get("always_open") and not any(week.values()):
            raise serializers.ValidationError(
                {"week": [_("Give at least one working interval, or make the calendar 24×7.")]}
            )
        return attrs


def _calendar_current(calendar: Calendar) -> dict:
    """The stored content in CalendarInputSerializer's shape (for PATCH)."""
    week: dict[int, list[tuple[time, time]]] = {}
    for interval in calendar.intervals.all():
        week.setdefault(interval.weekday, []).append((interval.start, interval.end))
    return {
        "name": calendar.name,
        "timezone": calendar.timezone,
        "always_open": calendar.always_open,
        "week": week,
        "holidays": {holiday.date: holiday.name for holiday in calendar.holidays.all()},
        "holiday_preset": (
            {"country": calendar.holiday_country, "subdivision": calendar.holiday_subdivision}
            if calendar.holiday_country
            else None
        ),
    }


class CalendarFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains", max_length=120)

    class Meta:
        model = Calendar
        fields = ["name", "always_open", "timezone"]


@extend_schema_view(
    list=extend_schema(summary=_("List business calendars")),
    retrieve=extend_schema(
        summary=_("A calendar, by id"), responses={200: CalendarSerializer, **ERROR_RESPONSES}
    ),
    create=extend_schema(
        summary=_("Create a calendar (admins)"),
        request=CalendarInputSerializer,
        responses={201: CalendarSerializer, **ERROR_RESPONSES},
    ),
    update=extend_schema(
        summary=_("Replace a calendar (admins)"),
        request=CalendarInputSerializer,
        responses={200: CalendarSerializer, **ERROR_RESPONSES},
    ),
    partial_update=extend_schema(
        summary=_("Change part of a calendar (admins)"),
        request=CalendarInputSerializer(partial=True),
        responses={200: CalendarSerializer, **ERROR_RESPONSES},
    ),
)
class CalendarViewSet(
    mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet
):
    """Business calendars: readable by everyone, changed by admins through calendar_save."""

    serializer_class = CalendarSerializer
    filterset_class = CalendarFilter
    ordering_fields = ["name", "id", "updated_at"]
    ordering = ["name"]

    def get_queryset(self):
        return Calendar.objects.prefetch_related("intervals", "holidays").order_by("name")

    def _save(self, request, *, calendar: Calendar | None, partial: bool) -> Calendar:
        if not permissions.can_configure_calendars(request.user):
            raise PermissionDenied(_("Only admins change calendars."))
        current = _calendar_current(calendar) if calendar is not None else {}
        data = CalendarInputSerializer(
            instance=calendar, data=request.data, partial=partial, context={"request": request}
        )
        if partial:
            # Validate the merged result, so a PATCH of only `week` is checked against the
            # stored time zone and 24×7 flag.
            data.is_valid(raise_exception=True)
            merged = {**current, **data.validated_data}
            data = CalendarInputSerializer(instance=calendar, data=_as_input(merged))
        data.is_valid(raise_exception=True)
        values = {**current, **data.validated_data} if partial else data.validated_data
        preset = values.get("holiday_preset") or {}
        saved = services.calendar_save(
            calendar=calendar,
            name=values["name"],
            timezone_name=values["timezone"],
            always_open=values.get("always_open", False),
            week=values.get("week", {}),
            holidays=values.get("holidays", []),
            holiday_country=preset.get("country", ""),
            holiday_subdivision=preset.get("subdivision", ""),
            actor=request.user,
        )
        return self.get_queryset().get(pk=saved.pk)

    def create(self, request, *args, **kwargs):
        calendar = self._save(request, calendar=None, partial=False)
        return Response(CalendarSerializer(calendar).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        calendar = self._save(
            request, calendar=self.get_object(), partial=kwargs.get("partial", False)
        )
        return Response(CalendarSerializer(calendar).data)


def _as_input(values: dict) -> dict:
    """Stored calendar values back into the JSON shape the input serializer reads."""
    week = values.get("week") or {}
    holidays = values.get("holidays") or []
    return {
        "name": values["name"],
        "timezone": values["timezone"],
        "always_open": values.get("always_open", False),
        "week": {
            str(day): [
                [_format_time(start, end=False), _format_time(end, end=True)]
                for start, end in intervals
            ]
            for day, intervals in week.items()
        },
        "holidays": [day.isoformat() for day in holidays],
        "holiday_preset": values.get("holiday_preset"),
    }


# --- Service standards ----------------------------------------------------------------------


class TargetSerializer(serializers.Serializer):
    priority = serializers.ChoiceField(choices=Priority.choices)
    first_response = serializers.DurationField(min_value=timedelta(seconds=1), max_value=MAX_TARGET)
    resolution = serializers.DurationField(min_value=timedelta(seconds=1), max_value=MAX_TARGET)

    def validate(self, attrs):
        if attrs["resolution"] < attrs["first_response"]:
            raise serializers.ValidationError(
                {"resolution": [_("Resolution cannot come before the first response.")]}
            )
        return attrs


class LadderLevelSerializer(serializers.Serializer):
    metric = serializers.ChoiceField(choices=Metric.choices)
    threshold = serializers.DecimalField(
        max_digits=4,
        decimal_places=2,
        min_value=Decimal("0.01"),
        max_value=Decimal("10"),
        coerce_to_string=False,
        help_text=_("Fraction of the target: 0.75 warns, 1.0 is the breach."),
    )
    actions = serializers.ListField(
        child=serializers.ChoiceField(choices=LadderAction.choices), max_length=6, default=list
    )

    def validate_actions(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class StandardSerializer(serializers.ModelSerializer):
    """Output: the standard and the content of its current version."""

    department = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    calendar = serializers.SerializerMethodField()
    version = serializers.SerializerMethodField()
    effective_from = serializers.SerializerMethodField()
    targets = serializers.SerializerMethodField()
    ladder = serializers.SerializerMethodField()

    class Meta:
        model = ServiceStandard
        fields = [
            "id",
            "name",
            "department",
            "calendar",
            "version",
            "effective_from",
            "targets",
            "ladder",
        ]

    def get_calendar(self, standard: ServiceStandard) -> int | None:
        version = standard.current_version
        return version.calendar_id if version else None

    def get_version(self, standard: ServiceStandard) -> int | None:
        version = standard.current_version
        return version.number if version else None

    def get_effective_from(self, standard: ServiceStandard) -> datetime | None:
        version = standard.current_version
        return version.effective_from if version else None

    @extend_schema_field(TargetSerializer(many=True))
    def get_targets(self, standard: ServiceStandard) -> list[dict]:
        version = standard.current_version
        targets = version.targets.all() if version else []
        return TargetSerializer(targets, many=True).data

    @extend_schema_field(LadderLevelSerializer(many=True))
    def get_ladder(self, standard: ServiceStandard) -> list[dict]:
        version = standard.current_version
        levels = version.levels.all() if version else []
        return LadderLevelSerializer(levels, many=True).data


class StandardInputSerializer(serializers.Serializer):
    """Input of POST/PUT/PATCH; each publishes a new version (PATCH keeps what it omits)."""

    name = serializers.CharField(max_length=120)
    department = serializers.SlugRelatedField(
        slug_field="slug", queryset=Department.objects.all(), allow_null=True, default=None
    )
    calendar = serializers.PrimaryKeyRelatedField(queryset=Calendar.objects.all())
    targets = TargetSerializer(many=True, min_length=1, max_length=len(Priority.values))
    ladder = LadderLevelSerializer(many=True, max_length=20, default=list)
    note = serializers.CharField(max_length=200, allow_blank=True, default="")

    def validate_name(self, value: str) -> str:
        value = value.strip()
        others = ServiceStandard.objects.filter(name=value)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise serializers.ValidationError(_("A service standard with this name exists."))
        return value

    def validate_targets(self, value: list[dict]) -> list[dict]:
        priorities = [target["priority"] for target in value]
        if len(set(priorities)) != len(priorities):
            raise serializers.ValidationError(_("Give each priority at most one target."))
        return value

    def validate_ladder(self, value: list[dict]) -> list[dict]:
        keys = [(level["metric"], level["threshold"]) for level in value]
        if len(set(keys)) != len(keys):
            raise serializers.ValidationError(
                _("Each metric may have a threshold only once in the ladder.")
            )
        return value


def _standard_current(standard: ServiceStandard) -> dict:
    version = standard.current_version
    return {
        "name": standard.name,
        "department": standard.department.slug if standard.department else None,
        "calendar": version.calendar_id if version else None,
        "targets": [
            {
                "priority": t.priority,
                "first_response": serializers.DurationField().to_representation(t.first_response),
                "resolution": serializers.DurationField().to_representation(t.resolution),
            }
            for t in (version.targets.all() if version else [])
        ],
        "ladder": [
            {"metric": level.metric, "threshold": str(level.threshold), "actions": level.actions}
            for level in (version.levels.all() if version else [])
        ],
    }


class StandardFilter(django_filters.FilterSet):
    department = django_filters.CharFilter(field_name="department__slug", max_length=60)
    name = django_filters.CharFilter(lookup_expr="icontains", max_length=120)

    class Meta:
        model = ServiceStandard
        fields = ["department", "name"]


@extend_schema_view(
    list=extend_schema(summary=_("List service standards")),
    retrieve=extend_schema(
        summary=_("A service standard, by id"),
        responses={200: StandardSerializer, **ERROR_RESPONSES},
    ),
    create=extend_schema(
        summary=_("Publish a new service standard"),
        request=StandardInputSerializer,
        responses={201: StandardSerializer, **ERROR_RESPONSES},
    ),
    update=extend_schema(
        summary=_("Publish a new version of a standard"),
        request=StandardInputSerializer,
        responses={200: StandardSerializer, **ERROR_RESPONSES},
    ),
    partial_update=extend_schema(
        summary=_("Publish a new version, changing only what is given"),
        request=StandardInputSerializer(partial=True),
        responses={200: StandardSerializer, **ERROR_RESPONSES},
    ),
)
class StandardViewSet(
    mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet
):
    """Service standards. Writes publish immutable versions; tickets keep theirs."""

    serializer_class = StandardSerializer
    filterset_class = StandardFilter
    ordering_fields = ["name", "id"]
    ordering = ["name"]

    def get_queryset(self):
        return (
            ServiceStandard.objects.select_related("department", "current_version")
            .prefetch_related(
                Prefetch(
                    "current_version__targets", queryset=StandardTarget.objects.order_by("priority")
                ),
                Prefetch(
                    "current_version__levels",
                    queryset=LadderLevel.objects.order_by("metric", "threshold"),
                ),
            )
            .order_by("name")
        )

    def _publish(self, request, *, standard: ServiceStandard | None, partial: bool):
        payload = request.data
        if partial and standard is not None:
            if not isinstance(payload, dict):
                raise serializers.ValidationError(
                    {"detail": [_("Send a JSON object.")]}, code="invalid"
                )
            payload = {**_standard_current(standard), **payload}
        data = StandardInputSerializer(instance=standard, data=payload)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        department = values["department"]
        allowed = (
            permissions.can_configure_standard(request.user, standard)
            if standard is not None
            else True
        ) and permissions.can_create_standard(request.user, department)
        if not allowed:
            raise PermissionDenied(_("You may not configure this service standard."))
        published = services.standard_publish(
            standard=standard,
            name=values["name"],
            calendar=values["calendar"],
            department=department,
            targets={
                t["priority"]: (t["first_response"], t["resolution"]) for t in values["targets"]
            },
            ladder=[(lvl["metric"], lvl["threshold"], lvl["actions"]) for lvl in values["ladder"]],
            actor=request.user,
            note=values["note"],
        )
        return self.get_queryset().get(pk=published.pk)

    def create(self, request, *args, **kwargs):
        standard = self._publish(request, standard=None, partial=False)
        return Response(StandardSerializer(standard).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        standard = self._publish(
            request, standard=self.get_object(), partial=kwargs.get("partial", False)
        )
        return Response(StandardSerializer(standard).data)
