"""REST API v1. Each app registers its viewsets on the shared router."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from departments.api import DepartmentViewSet, ServiceViewSet
from reports.api import SlaMetricsView
from servicedesk.api.views import TokenView
from slas.api import CalendarViewSet, StandardViewSet
from tickets.api import TicketViewSet

router = DefaultRouter()
router.register("departments", DepartmentViewSet, basename="department")
router.register("services", ServiceViewSet, basename="service")
router.register("calendars", CalendarViewSet, basename="calendar")
router.register("standards", StandardViewSet, basename="standard")
router.register("tickets", TicketViewSet, basename="ticket")

urlpatterns = [
    path("auth/token/", TokenView.as_view(), name="api-token"),
    path("metrics/sla/", SlaMetricsView.as_view(), name="api-metrics-sla"),
    path("", include(router.urls)),
]
