"""run_job / rebuild_rollups commands, the Celery task wiring, and the Jobs page."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from sessions_api.models import JobRun, RollupBucket, Session
from workers import dispatch, registry, schedule, tasks
from workers import runs as jobs
from workers.celery import app
from workers.locks import TransientJobError

pytestmark = pytest.mark.django_db


class FakeApp:
    def __init__(self) -> None:
        self.sent: list[tuple[tuple, dict]] = []

    def send_task(self, *args, **kwargs):
        self.sent.append((args, kwargs))


@pytest.fixture
def fake_broker(monkeypatch) -> FakeApp:
    fake = FakeApp()
    monkeypatch.setattr(dispatch, "celery_app", lambda: fake)
    return fake


def run_command(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


# --- commands -------------------------------------------------------------------------------


def test_run_job_inline_prints_the_recorded_run(make_session):
    make_session(expire_after=60)
    output = run_command("run_job", "expire_sessions", "--inline", "--param", "batch_size=5")
    assert "expire_sessions: SUCCEEDED" in output
    assert "expired: 1" in output and '"batch_size": 5' in output
    run = JobRun.objects.get()
    assert (run.status, run.triggered_by, run.params) == ("succeeded", "cli", {"batch_size": 5})


def test_run_job_dry_run_lists_what_would_go(settings, make_session):
    settings.PURGE_EXPIRED_GRACE = "1h"
    session = make_session()
    Session.objects.filter(id=session.id).update(
        status="expired", expired_at=session.updated_at - timedelta(days=400)
    )
    output = run_command("run_job", "purge_sessions", "--inline", "--dry-run")
    assert "(dry run): SUCCEEDED" in output and "would purge:" in output
    assert str(session.id) in output
    assert Session.objects.filter(id=session.id).exists()


def test_run_job_refuses_unknown_jobs_and_params():
    with pytest.raises(CommandError, match="unknown job"):
        run_command("run_job", "make_coffee", "--inline")
    with pytest.raises(CommandError, match="takes no parameter"):
        run_command("run_job", "expire_sessions", "--inline", "--param", "colour=red")
    with pytest.raises(CommandError, match="KEY=VALUE"):
        run_command("run_job", "expire_sessions", "--param", "oops")


def test_run_job_enqueues_and_gives_a_clear_message_when_no_worker_answers(fake_broker):
    with pytest.raises(CommandError, match="Is a worker running"):
        run_command("run_job", "detect_stuck_sessions", "--timeout", "0.3")
    ((args, kwargs),) = fake_broker.sent
    run = JobRun.objects.get()
    assert args == ("detect_stuck_sessions",) and kwargs["kwargs"]["run_id"] == run.id
    assert run.status == "queued"


def test_rebuild_rollups_command(make_session):
    make_session()
    output = run_command("rebuild_rollups")
    assert "rebuilt in" in output
    assert RollupBucket.objects.filter(series="sessions_by_status").exists()
    assert JobRun.objects.get().params == {"full": True}


# --- tasks and schedule ---------------------------------------------------------------------


def test_tasks_have_the_contract_names_and_reliability_options():
    for name in registry.JOB_NAMES:
        task = app.tasks[name]
        assert task.acks_late and task.reject_on_worker_lost
        assert task.soft_time_limit and task.time_limit > task.soft_time_limit
        assert TransientJobError in task.autoretry_for
        assert task.retry_backoff_max < 7200  # below the broker visibility timeout
    assert "workers.ping" in app.tasks


def test_beat_schedule_has_one_entry_per_job_with_expires(monkeypatch):
    entries = schedule.beat_schedule()
    assert set(entries) == set(registry.JOB_NAMES)
    for job, entry in entries.items():
        assert entry["task"] == job
        assert entry["kwargs"] == {
            "triggered_by": "beat",
            "period_s": entry["schedule"].total_seconds(),
        }
        assert 0 < entry["options"]["expires"] < entry["schedule"].total_seconds()
    monkeypatch.setenv("JOB_SCHEDULE_PURGE_SESSIONS", "off")
    monkeypatch.setenv("JOB_SCHEDULE_EXPIRE_SESSIONS", "90")
    entries = schedule.beat_schedule()
    assert "purge_sessions" not in entries
    assert entries["expire_sessions"]["schedule"] == timedelta(seconds=90)
    assert app.conf.beat_schedule.keys() >= {"expire_sessions", "rollup_analytics"}


def test_a_task_runs_its_job_and_records_it(make_session):
    make_session(expire_after=60)
    result = tasks.JOB_TASKS["expire_sessions"].apply(kwargs={"triggered_by": "beat"}).get()
    assert result["status"] == "succeeded" and result["counts"]["expired"] == 1
    run = JobRun.objects.get(id=result["run_id"])
    assert run.triggered_by == "beat"


# --- the Jobs page --------------------------------------------------------------------------


@pytest.fixture
def viewer_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_user("vera", password="x" * 12))
    return client


@pytest.fixture
def admin_client() -> Client:
    user = User.objects.create_user("ada", password="x" * 12)
    user.groups.add(Group.objects.get_or_create(name="admin")[0])
    client = Client(enforce_csrf_checks=False)
    client.force_login(user)
    return client


def test_jobs_page_shows_every_job_last_run_and_history(viewer_client):
    jobs.execute_run(job="expire_sessions", triggered_by="beat")
    response = viewer_client.get("/jobs/")
    assert response.status_code == 200
    html = response.content.decode()
    for name in registry.JOB_NAMES:
        assert f'id="job-{name}"' in html
    assert "every 5 minutes" in html and "succeeded" in html
    assert "Run now" not in html  # viewers see, admins act


def test_admin_runs_a_job_now_and_previews_a_destructive_one(admin_client, fake_broker):
    html = admin_client.get("/jobs/").content.decode()
    assert "Run now" in html and "Preview (dry run)" in html

    response = admin_client.post("/jobs/expire_sessions/run/")
    assert response.status_code == 302
    run = JobRun.objects.get(job="expire_sessions")
    assert (run.triggered_by, run.dry_run, run.status) == ("user:ada", False, "queued")
    assert fake_broker.sent[-1][0] == ("expire_sessions",)

    response = admin_client.post("/jobs/purge_sessions/run/", {"dry_run": "1"})
    preview = JobRun.objects.get(job="purge_sessions")
    assert preview.dry_run and response["Location"] == f"/jobs/runs/{preview.id}/"

    # A destructive run for real needs the confirmation tick.
    admin_client.post("/jobs/purge_sessions/run/")
    assert JobRun.objects.filter(job="purge_sessions").count() == 1
    admin_client.post("/jobs/purge_sessions/run/", {"confirm": "yes"})
    assert JobRun.objects.filter(job="purge_sessions", dry_run=False).count() == 1


def test_run_detail_shows_counts_details_and_retry(admin_client, fake_broker):
    failed = JobRun.objects.create(
        job="prune_versions",
        status="failed",
        queued_at=timezone.now(),
        error="RuntimeError: boom",
        counts={"sessions_pruned": 0},
        details={"pruned": []},
    )
    html = admin_client.get(f"/jobs/runs/{failed.id}/").content.decode()
    assert "RuntimeError: boom" in html and "Retry this run" in html
    admin_client.post(f"/jobs/runs/{failed.id}/retry/")
    assert JobRun.objects.filter(job="prune_versions", status="queued").count() == 1
    assert admin_client.get("/jobs/runs/999999/").status_code == 404


def test_viewers_cannot_run_jobs(viewer_client):
    assert viewer_client.post("/jobs/expire_sessions/run/").status_code == 403
    assert not JobRun.objects.exists()


def test_job_forms_need_a_csrf_token(fake_broker):
    user = User.objects.create_superuser("root", password="x" * 12)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post("/jobs/expire_sessions/run/").status_code == 403
    assert not JobRun.objects.exists()


def test_anonymous_users_are_sent_to_login():
    response = Client().get("/jobs/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
