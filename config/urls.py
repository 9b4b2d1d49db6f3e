from django.contrib import admin
from django.urls import include, path

from config.api import api
from sessions_api.api import health, otlp

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/v1/", api.urls),
    # OTLP/HTTP at the path OpenTelemetry SDKs append to OTEL_EXPORTER_OTLP_ENDPOINT.
    path("v1/traces", otlp.traces, name="otlp-traces"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("dashboard.urls")),
]

# A refused dashboard action is recorded in the audit log, then Django's 403 page.
handler403 = "dashboard.views.audit.permission_denied"
