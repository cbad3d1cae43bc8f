"""REST API v1 for departments and the service catalogue (thin: selectors in, services out).

Departments are addressed by slug, people by username, services and standards by id.
"""

from __future__ import annotations

import django_filters
from django.db.models import Prefetch
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from departments import selectors, services
from departments.models import Department, Membership, Priority, Service
from servicedesk import permissions
from servicedesk.api.schema import ERROR_RESPONSES
from slas.models import ServiceStandard

# --- Departments ----------------------------------------------------------------------------


class DepartmentSerializer(serializers.ModelSerializer):
    parent = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    calendar = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    leads = serializers.SerializerMethodField()

    class Meta:
        model = Department
        fields = ["name", "slug", "code", "parent", "calendar", "leads", "active"]

    def get_leads(self, department: Department) -> list[str]:
        # Prefetched by the viewset (`lead_memberships`): no query per department.
        return [membership.user.username for membership in department.lead_memberships]


class DepartmentFilter(django_filters.FilterSet):
    parent = django_filters.CharFilter(field_name="parent__slug", max_length=60)
    code = django_filters.CharFilter(field_name="code", max_length=10)

    class Meta:
        model = Department
        fields = ["active", "parent", "code"]


@extend_schema_view(
    list=extend_schema(summary=_("List departments"), responses={200: DepartmentSerializer}),
    retrieve=extend_schema(
        summary=_("A department, by slug"),
        responses={200: DepartmentSerializer, **ERROR_RESPONSES},
    ),
)
class DepartmentViewSet(viewsets.ReadOnlyModelViewSet):
    """Departments of the organisation (every signed-in person may read them)."""

    serializer_class = DepartmentSerializer
    lookup_field = "slug"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"
    filterset_class = DepartmentFilter
    ordering_fields = ["name", "slug", "code"]
    ordering = ["name"]

    def get_queryset(self):
        leads = Membership.objects.filter(role=Membership.Role.LEAD).select_related("user")
        return (
            selectors.department_list(active_only=False)
            .prefetch_related(Prefetch("memberships", queryset=leads, to_attr="lead_memberships"))
            .order_by("name")
        )


# --- Services (catalogue entries) -----------------------------------------------------------


class ServiceSerializer(serializers.ModelSerializer):
    department = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    standard = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)

    class Meta:
        model = Service
        fields = [
            "id",
            "name",
            "description",
            "department",
            "standard",
            "default_priority",
            "active",
        ]


class ServiceInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=160)
    description = serializers.CharField(max_length=20_000, allow_blank=True, default="")
    department = serializers.SlugRelatedField(slug_field="slug", queryset=Department.objects.all())
    standard = serializers.PrimaryKeyRelatedField(
        queryset=ServiceStandard.objects.all(), allow_null=True, default=None
    )
    default_priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.P3)
    confidential = serializers.BooleanField(default=False)

    def validate(self, attrs):
        if Service.objects.filter(department=attrs["department"], name=attrs["name"]).exists():
            raise serializers.ValidationError(
                {"name": [_("This department already offers a service with this name.")]}
            )
        return attrs


class ServiceFilter(django_filters.FilterSet):
    department = django_filters.CharFilter(field_name="department__slug", max_length=60)

    class Meta:
        model = Service
        fields = ["department", "active", "default_priority", "standard"]


@extend_schema_view(
    list=extend_schema(summary=_("List the service catalogue")),
    retrieve=extend_schema(
        summary=_("A catalogue entry, by id"),
        responses={200: ServiceSerializer, **ERROR_RESPONSES},
    ),
    create=extend_schema(
        summary=_("Add a service to a department's catalogue"),
        request=ServiceInputSerializer,
        responses={201: ServiceSerializer, **ERROR_RESPONSES},
    ),
)
class ServiceViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """The catalogue: what each supplier department offers."""

    serializer_class = ServiceSerializer
    filterset_class = ServiceFilter
    ordering_fields = ["name", "id", "default_priority"]
    ordering = ["department__name", "name"]

    def get_queryset(self):
        return selectors.service_list()

    def create(self, request, *args, **kwargs):
        data = ServiceInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        department = data.validated_data["department"]
        if not permissions.can_configure_department(request.user, department):
            raise PermissionDenied(_("You may not change this department's catalogue."))
        service = services.service_create(**data.validated_data)
        return Response(ServiceSerializer(service).data, status=status.HTTP_201_CREATED)
