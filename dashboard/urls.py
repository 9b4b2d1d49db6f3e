from django.urls import path

from dashboard.views import alerts, audit, editing, errors, jobs, overview, prices, sessions

app_name = "dashboard"
urlpatterns = [
    path("", overview.overview, name="overview"),
    # The session explorer and its exports.
    path("sessions/", sessions.explorer, name="sessions"),
    path("sessions/export.csv", sessions.export_csv, name="sessions_export_csv"),
    path("sessions/export.json", sessions.export_json, name="sessions_export_json"),
    # One session: timeline, raw body, versions.
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
    # Editing one session: the editor and its saves, then the version history actions.
    path("sessions/<uuid:session_id>/edit/", editing.edit_page, name="session_edit"),
    path("sessions/<uuid:session_id>/edit/save/", editing.save_part, name="edit_save"),
    path("sessions/<uuid:session_id>/edit/status/", editing.save_status, name="edit_status"),
    path("sessions/<uuid:session_id>/edit/expiry/", editing.save_expiry, name="edit_expiry"),
    path("sessions/<uuid:session_id>/edit/hold/", editing.save_hold, name="edit_hold"),
    path(
        "sessions/<uuid:session_id>/edit/annotations/",
        editing.save_annotations,
        name="edit_annotations",
    ),
    path("sessions/<uuid:session_id>/revert/", editing.revert, name="session_revert"),
    path(
        "sessions/<uuid:session_id>/checkpoints/",
        editing.create_checkpoint,
        name="session_checkpoint",
    ),
    path("sessions/<uuid:session_id>/restore/", editing.restore, name="session_restore"),
    path("sessions/<uuid:session_id>/branch/", editing.branch, name="session_branch"),
    path("sessions/<uuid:session_id>/delete/", editing.delete, name="session_delete"),
    # The agent's own session id (after every UUID route): a redirect to the session.
    path("sessions/<path:external_id>/", sessions.by_external_id, name="session_by_external_id"),
    # Across sessions.
    path("errors/", errors.errors, name="errors"),
    path("audit/", audit.audit_log, name="audit"),
    # Jobs: history, and run now / retry / dry-run preview for admins.
    path("jobs/", jobs.jobs_page, name="jobs"),
    path("jobs/runs/<int:run_id>/", jobs.run_detail, name="job_run"),
    path("jobs/runs/<int:run_id>/retry/", jobs.retry, name="job_retry"),
    path("jobs/<str:name>/run/", jobs.run_now, name="job_run_now"),
    # Model prices.
    # Alert rules and their notifications.
    path("alerts/", alerts.alerts_page, name="alerts"),
    path("alerts/<int:rule_id>/edit/", alerts.edit_alert, name="alert_edit"),
    path("alerts/<int:rule_id>/mute/", alerts.mute_alert, name="alert_mute"),
    path("alerts/<int:rule_id>/test/", alerts.test_alert, name="alert_test"),
    path("alerts/<int:rule_id>/delete/", alerts.delete_alert, name="alert_delete"),
    path("prices/", prices.prices, name="prices"),
    path("prices/<int:price_id>/edit/", prices.edit_price, name="price_edit"),
]
