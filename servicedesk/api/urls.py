"""REST API v1. Each app registers its viewsets on the shared router."""

from django.urls import include, path
from rest_framework.authtoken.views import obtain_auth_token
from rest_framework.routers import DefaultRouter

from departments.api import DepartmentViewSet, ServiceViewSet
from slas.api import CalendarViewSet, SlaMetricsView, StandardViewSet

router = DefaultRouter()
router.register("departments", DepartmentViewSet, basename="department")
router.register("services", ServiceViewSet, basename="service")
router.register("calendars", CalendarViewSet, basename="calendar")
router.register("standards", StandardViewSet, basename="standard")

urlpatterns = [
    path("auth/token/", obtain_auth_token, name="api-token"),
    path("metrics/sla/", SlaMetricsView.as_view(), name="api-metrics-sla"),
    path("", include(router.urls)),
]
