from django.urls import path

from dashboard.views import errors, overview, prices, sessions

app_name = "dashboard"
urlpatterns = [
    path("", overview.overview, name="overview"),
    path("sessions/", sessions.explorer, name="sessions"),
    path("sessions/export.csv", sessions.export_csv, name="sessions_export_csv"),
    path("sessions/export.json", sessions.export_json, name="sessions_export_json"),
    path("sessions/<uuid:session_id>/", sessions.detail, name="session"),
    path(
        "sessions/<uuid:session_id>/timeline/",
        sessions.timeline_fragment,
        name="session_timeline",
    ),
    path("sessions/<uuid:session_id>/raw/", sessions.raw, name="session_raw"),
    path(
        "sessions/<uuid:session_id>/raw/download/",
        sessions.raw_download,
        name="session_raw_download",
    ),
    path("sessions/<uuid:session_id>/versions/", sessions.versions, name="session_versions"),
    path("errors/", errors.errors, name="errors"),
    path("prices/", prices.prices, name="prices"),
    path("prices/<int:price_id>/edit/", prices.edit_price, name="price_edit"),
]

# Jobs page (issue 5): job history, and run now / retry / dry-run preview for admins.
from dashboard.views import jobs as jobs_views  # noqa: E402

urlpatterns += [
    path("jobs/", jobs_views.jobs_page, name="jobs"),
    path("jobs/runs/<int:run_id>/", jobs_views.run_detail, name="job_run"),
    path("jobs/runs/<int:run_id>/retry/", jobs_views.retry, name="job_retry"),
    path("jobs/<str:name>/run/", jobs_views.run_now, name="job_run_now"),
]

# Editing, checkpoints, branches and the audit log (issue 6).
from dashboard.views import audit as audit_views  # noqa: E402
from dashboard.views import editing as editing_views  # noqa: E402

urlpatterns += [
    path("sessions/<uuid:session_id>/edit/", editing_views.edit_page, name="session_edit"),
    path("sessions/<uuid:session_id>/edit/save/", editing_views.save_part, name="edit_save"),
    path("sessions/<uuid:session_id>/edit/status/", editing_views.save_status, name="edit_status"),
    path("sessions/<uuid:session_id>/edit/expiry/", editing_views.save_expiry, name="edit_expiry"),
    path("sessions/<uuid:session_id>/edit/hold/", editing_views.save_hold, name="edit_hold"),
    path(
        "sessions/<uuid:session_id>/edit/annotations/",
        editing_views.save_annotations,
        name="edit_annotations",
    ),
    path("sessions/<uuid:session_id>/revert/", editing_views.revert, name="session_revert"),
    path(
        "sessions/<uuid:session_id>/checkpoints/",
        editing_views.create_checkpoint,
        name="session_checkpoint",
    ),
    path("sessions/<uuid:session_id>/restore/", editing_views.restore, name="session_restore"),
    path("sessions/<uuid:session_id>/branch/", editing_views.branch, name="session_branch"),
    path("sessions/<uuid:session_id>/delete/", editing_views.delete, name="session_delete"),
    path("audit/", audit_views.audit_log, name="audit"),
]
