"""`/api/v1/metrics/sla/`: the dashboards' SLA figures as JSON, from the same selector
(reports.selectors.sla_figures), so the API and the dashboards cannot disagree."""

from __future__ import annotations

from datetime import timedelta

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from departments.models import Department, Priority, Service
from reports import selectors
from servicedesk import permissions
from servicedesk.api.schema import ERROR_RESPONSES

MAX_RANGE = timedelta(days=3 * 366)
# The contract's short names (issue 8: `?supplier=&customer=`), equal to the field names.
ALIASES = {"supplier": "supplier_department", "customer": "customer_department"}


def _reasonable_day(value):
    # Day arithmetic below (a 30-day default period) must not leave Python's date range.
    if not 1900 <= value.year <= 9000:
        raise serializers.ValidationError(_("Give a day between the years 1900 and 9000."))
    return value


class MetricsQuerySerializer(serializers.Serializer):
    supplier_department = serializers.SlugRelatedField(
        slug_field="slug", queryset=Department.objects.all(), required=False
    )
    customer_department = serializers.SlugRelatedField(
        slug_field="slug", queryset=Department.objects.all(), required=False
    )
    service = serializers.PrimaryKeyRelatedField(queryset=Service.objects.all(), required=False)
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    # `from` is a Python keyword: the fields are renamed in `get_fields`.
    start = serializers.DateField(required=False)
    end = serializers.DateField(required=False)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("start")
        fields["to"] = fields.pop("end")
        return fields

    def validate_from(self, value):
        return _reasonable_day(value)

    def validate_to(self, value):
        return _reasonable_day(value)

    def validate(self, attrs):
        today = selectors.reporting_today()
        end = attrs.get("to") or today + timedelta(days=1)
        start = attrs.get("from") or end - timedelta(days=30)
        if start >= end:
            raise serializers.ValidationError({"to": [_("“to” must come after “from”.")]})
        if end - start > MAX_RANGE:
            raise serializers.ValidationError(
                {"from": [_("Ask for at most three years at a time.")]}
            )
        return {**attrs, "from": start, "to": end}


class MetricFiguresSerializer(serializers.Serializer):
    met = serializers.IntegerField()
    breached = serializers.IntegerField()
    compliance = serializers.FloatField(allow_null=True, help_text=_("met / (met + breached)"))
    stopped = serializers.IntegerField(help_text=_("stopped clocks (the quantiles' population)"))
    median = serializers.DurationField(allow_null=True, help_text=_("business time to stop"))
    p90 = serializers.DurationField(allow_null=True, help_text=_("nearest-rank 90th percentile"))
    median_seconds = serializers.FloatField(allow_null=True)
    p90_seconds = serializers.FloatField(allow_null=True)


class SatisfactionSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    average = serializers.FloatField(allow_null=True)
    distribution = serializers.ListField(
        child=serializers.IntegerField(), help_text=_("ratings 1 to 5")
    )


class SlaMetricsSerializer(serializers.Serializer):
    supplier_department = serializers.CharField(allow_null=True)
    customer_department = serializers.CharField(allow_null=True)
    service = serializers.IntegerField(allow_null=True)
    priority = serializers.CharField(allow_null=True)
    from_ = serializers.DateField(source="from_")
    to = serializers.DateField(help_text=_("first day not included"))
    filed = serializers.IntegerField(help_text=_("tickets filed in the period"))
    cancelled = serializers.IntegerField()
    tickets = serializers.IntegerField(help_text=_("tickets filed in the period, not cancelled"))
    open = serializers.IntegerField(help_text=_("of those, still open"))
    first_response = MetricFiguresSerializer()
    resolution = MetricFiguresSerializer()
    satisfaction = SatisfactionSerializer()

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields

    def to_representation(self, instance):
        data = super().to_representation(instance)
        # Short aliases of the department slugs, as in the first version of the endpoint.
        data["supplier"] = data["supplier_department"]
        data["customer"] = data["customer_department"]
        return data


def _seconds(value: timedelta | None) -> float | None:
    return value.total_seconds() if value is not None else None


class SlaMetricsView(APIView):
    """SPEC §3 compliance figures for tickets filed in [from, to) — the dashboards' figures."""

    @extend_schema(
        summary=_("SLA compliance figures, as on the dashboards"),
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATE, description=_("first day (included)")),
            OpenApiParameter("to", OpenApiTypes.DATE, description=_("last day (excluded)")),
            OpenApiParameter("supplier_department", OpenApiTypes.STR, description=_("slug")),
            OpenApiParameter("customer_department", OpenApiTypes.STR, description=_("slug")),
            OpenApiParameter("service", OpenApiTypes.INT, description=_("service id")),
            OpenApiParameter("priority", OpenApiTypes.STR, enum=Priority.values),
            # The names of the issue 8 contract (`?supplier=&customer=`): kept, not deprecated.
            OpenApiParameter(
                "supplier", OpenApiTypes.STR, description=_("slug; same as supplier_department")
            ),
            OpenApiParameter(
                "customer", OpenApiTypes.STR, description=_("slug; same as customer_department")
            ),
        ],
        responses={200: SlaMetricsSerializer, **ERROR_RESPONSES},
    )
    def get(self, request):
        data = request.query_params.dict()
        used_alias = {}
        for alias, name in ALIASES.items():
            if alias in data and name not in data:
                data[name] = data.pop(alias)
                used_alias[name] = alias
        query = MetricsQuerySerializer(data=data)
        if not query.is_valid():
            raise ValidationError(
                {used_alias.get(key, key): value for key, value in query.errors.items()}
            )
        values = query.validated_data
        supplier = values.get("supplier_department")
        customer = values.get("customer_department")
        allowed = permissions.sla_metrics_scope(request.user, supplier=supplier, customer=customer)
        if allowed is None:
            raise NotFound()
        scope = selectors.Scope(
            supplier_ids=_ids(allowed["supplier_ids"]),
            customer_ids=_ids(allowed["customer_ids"]),
            either_ids=_ids(allowed["either_ids"]),
            service_id=values["service"].pk if values.get("service") else None,
            priority=values.get("priority") or None,
        )
        period = selectors.Period(values["from"], values["to"])
        figures = selectors.sla_figures(scope=scope, period=period)
        for metric, _prefix in selectors.METRICS:
            figures[metric]["median_seconds"] = _seconds(figures[metric]["median"])
            figures[metric]["p90_seconds"] = _seconds(figures[metric]["p90"])
        body = {
            "supplier_department": supplier.slug if supplier else None,
            "customer_department": customer.slug if customer else None,
            "service": values["service"].pk if values.get("service") else None,
            "priority": values.get("priority") or None,
            "from_": period.start,
            "to": period.end,
            "tickets": figures["filed"] - figures["cancelled"],
            **figures,
        }
        return Response(SlaMetricsSerializer(body).data)


def _ids(values) -> tuple[int, ...] | None:
    return None if values is None else tuple(sorted(values))
