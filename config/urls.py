from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from config.api import api
from dashboard.forms.accounts import (
    BackgroundPasswordResetForm,
    ThrottledAdminAuthenticationForm,
    ThrottledAuthenticationForm,
)
from sessions_api.api import health, otlp
from sessions_api.api.errors import unknown_api_path

# The admin's sign-in goes through the same throttle, with the same plain refusal.
admin.site.login_form = ThrottledAdminAuthenticationForm

accounts = [
    path(
        "login/",
        auth_views.LoginView.as_view(authentication_form=ThrottledAuthenticationForm),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
]
if settings.EMAIL_HOST:
    # Without a mail server a reset can only fail, so its pages exist only with one.
    accounts += [
        path(
            "password_reset/",
            auth_views.PasswordResetView.as_view(form_class=BackgroundPasswordResetForm),
            name="password_reset",
        ),
        path(
            "password_reset/done/",
            auth_views.PasswordResetDoneView.as_view(),
            name="password_reset_done",
        ),
        path(
            "reset/<uidb64>/<token>/",
            auth_views.PasswordResetConfirmView.as_view(),
            name="password_reset_confirm",
        ),
        path(
            "reset/done/",
            auth_views.PasswordResetCompleteView.as_view(),
            name="password_reset_complete",
        ),
    ]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/v1/", api.urls),
    re_path(r"^api/", unknown_api_path),
    # OTLP/HTTP at the path OpenTelemetry SDKs append to OTEL_EXPORTER_OTLP_ENDPOINT.
    path("v1/traces", otlp.traces, name="otlp-traces"),
    path("admin/", admin.site.urls),
    path("accounts/", include(accounts)),
    path("", include("dashboard.urls")),
]

# A refused dashboard action is recorded in the audit log, then Django's 403 page.
handler403 = "dashboard.views.audit.permission_denied"
