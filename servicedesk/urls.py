from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from servicedesk.health import healthz

# Swagger UI (vendored by drf-spectacular-sidecar) under the strict CSP: the split view serves
# its start-up script from this same URL (?script=), so scripts stay 'self'; Swagger UI's
# inline <style> needs 'unsafe-inline' for styles, on this page only.
api_docs = csp_update({"style-src": ["'unsafe-inline'"]})(
    SpectacularSwaggerSplitView.as_view(url_name="api-schema")
)

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", include("servicedesk.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", api_docs, name="api-docs"),
    path("notifications/", include("tickets.notification_urls")),
    path("dashboards/", include("reports.urls")),
    path("config/", include("slas.urls")),
    path("", include("tickets.urls")),
]
