"""The run recorder (workers/runs.py), the per-job lock (workers/locks.py) and dispatch to
the broker (workers/dispatch.py)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from sessions_api.errors import DispatchFailed, InvalidParams, UnknownJob
from sessions_api.lifecycle import prune, stuck
from sessions_api.models import JobRun, JobState
from workers import dispatch, locks
from workers import runs as jobs

pytestmark = pytest.mark.django_db


def test_a_run_records_start_end_status_counts_and_params():
    run = jobs.request_run(job="expire_sessions", params={"batch_size": "10"}, triggered_by="cli")
    assert run.status == "queued" and run.params == {"batch_size": 10}

    record = jobs.execute_run(job="expire_sessions", run_id=run.id, triggered_by="cli")

    assert record.id == run.id and record.status == "succeeded"
    assert record.counts["expired"] == 0
    assert record.started_at <= record.finished_at and record.duration_s is not None
    assert record.details["attempt"] == 1
    assert not JobState.objects.get(name="lock:expire_sessions").value  # released


def test_a_failing_job_is_recorded_failed_and_reraised(monkeypatch):
    def boom(**arguments):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(prune, "prune_versions", boom)
    run = jobs.request_run(job="prune_versions")
    with pytest.raises(RuntimeError):
        jobs.execute_run(job="prune_versions", run_id=run.id)
    row = JobRun.objects.get(id=run.id)
    assert row.status == "failed" and "RuntimeError: disk on fire" in row.error
    assert row.finished_at is not None
    assert jobs.get_run(run_id=run.id).retryable
    retried = jobs.retry_run(run_id=run.id, triggered_by="user:ann")
    assert (retried.job, retried.status, retried.triggered_by) == (
        "prune_versions",
        "queued",
        "user:ann",
    )


def test_second_concurrent_run_is_skipped_while_the_first_holds_the_lock(monkeypatch):
    inner: dict[str, jobs.RunRecord] = {}

    def nested(**arguments):
        # While this run holds the lock, another run of the same job starts.
        inner["record"] = jobs.execute_run(job="detect_stuck_sessions", triggered_by="beat")
        return SimpleNamespace(counts=lambda: {"n": 1}, details=lambda: {})

    monkeypatch.setattr(stuck, "detect_stuck_sessions", nested)
    outer = jobs.execute_run(job="detect_stuck_sessions", triggered_by="cli")

    assert outer.status == "succeeded"
    assert inner["record"].status == "skipped"
    assert "lock held" in inner["record"].details["reason"]
    # Another job's lock is independent.
    assert jobs.execute_run(job="expire_sessions").status == "succeeded"


def test_lock_is_exclusive_until_its_lease_runs_out():
    first = locks.job_lock("purge_sessions", ttl=timedelta(seconds=60))
    second = locks.job_lock("purge_sessions", ttl=timedelta(seconds=60))
    assert first.acquire()
    assert not second.acquire()
    assert first.renew()
    first.release()
    assert second.acquire()
    assert not first.renew()  # no longer ours
    # A holder that died: its lease ran out, so the next one takes over.
    row = JobState.objects.get(name="lock:purge_sessions")
    row.value = {**row.value, "until": (timezone.now() - timedelta(seconds=1)).isoformat()}
    row.save()
    assert first.acquire()


@pytest.mark.django_db(transaction=True)
def test_lock_holds_across_threads():
    """Two threads (two connections) race for one job's lock: exactly one wins."""
    results: list[bool] = []
    barrier = threading.Barrier(2)

    def contend():
        from django.db import connection

        try:
            lock = locks.job_lock("reconcile_store", ttl=timedelta(seconds=30))
            barrier.wait(timeout=10)
            # The test database (in-memory SQLite, shared cache) answers a concurrent writer
            # with "table is locked" at once instead of queueing it like a file database;
            # that is LockUnavailable, which the task retries. Bounded here likewise.
            for _ in range(100):
                try:
                    results.append(lock.acquire())
                    break
                except locks.LockUnavailable:
                    time.sleep(0.02)
        finally:
            connection.close()

    threads = [threading.Thread(target=contend) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == [False, True]


def test_runs_left_running_by_a_dead_worker_are_closed_by_the_next_run():
    dead = JobRun.objects.create(
        job="expire_sessions", status="running", queued_at=timezone.now(), triggered_by="beat"
    )
    jobs.execute_run(job="expire_sessions", triggered_by="cli")
    dead.refresh_from_db()
    assert dead.status == "failed" and "worker lost" in dead.error


def test_redelivered_task_reuses_its_row_and_finished_runs_do_not_rerun():
    first = jobs.execute_run(job="expire_sessions", task_id="task-1", triggered_by="beat")
    again = jobs.execute_run(job="expire_sessions", task_id="task-1", triggered_by="beat")
    assert again.id == first.id and again.status == "succeeded"
    assert JobRun.objects.filter(task_id="task-1").count() == 1


def test_redelivery_of_an_interrupted_run_finishes_it():
    interrupted = JobRun.objects.create(
        job="expire_sessions",
        status="running",
        queued_at=timezone.now(),
        triggered_by="cli",
        task_id="task-2",
        details={"attempt": 1},
    )
    record = jobs.execute_run(job="expire_sessions", task_id="task-2", run_id=interrupted.id)
    assert record.status == "succeeded" and record.details["attempt"] == 2


def test_beat_runs_once_per_period_even_from_two_beats():
    gap = timedelta(minutes=4)
    first = jobs.execute_run(job="detect_stuck_sessions", triggered_by="beat", min_gap=gap)
    second = jobs.execute_run(job="detect_stuck_sessions", triggered_by="beat", min_gap=gap)
    manual = jobs.execute_run(job="detect_stuck_sessions", triggered_by="cli", min_gap=gap)
    assert first.status == "succeeded"
    assert second.status == "skipped" and "already ran this period" in second.details["reason"]
    assert manual.status == "succeeded"  # a person asking always runs
    later = timezone.now() + gap + timedelta(seconds=1)
    assert (
        jobs.execute_run(
            job="detect_stuck_sessions", triggered_by="beat", min_gap=gap, now=later
        ).status
        == "succeeded"
    )


def test_note_retry_puts_the_run_back_to_queued_with_the_error():
    run = jobs.request_run(job="expire_sessions")
    JobRun.objects.filter(id=run.id).update(status="failed", error="x")
    jobs.note_retry(task_id=run.task_id, error=ConnectionError("redis down"))
    row = JobRun.objects.get(id=run.id)
    assert row.status == "queued" and "retrying after: ConnectionError: redis down" in row.error


@pytest.mark.parametrize(
    ("job", "params", "message"),
    [
        ("nope", {}, "unknown job"),
        ("expire_sessions", {"keep": "3"}, "takes no parameter"),
        ("prune_versions", {"keep": "many"}, "must be int"),
        ("prune_versions", {"keep": "0"}, "must be positive"),
        ("rollup_analytics", {"full": "maybe"}, "true or false"),
    ],
)
def test_bad_params_are_refused_before_anything_runs(job, params, message):
    with pytest.raises((UnknownJob, InvalidParams), match=message):
        jobs.request_run(job=job, params=params)
    assert not JobRun.objects.exists()


class FakeApp:
    def __init__(self, error: Exception | None = None) -> None:
        self.sent: list[tuple[tuple, dict]] = []
        self.error = error

    def send_task(self, *args, **kwargs):
        if self.error:
            raise self.error
        self.sent.append((args, kwargs))


@pytest.fixture
def fake_app(monkeypatch):
    app = FakeApp()
    monkeypatch.setattr(dispatch, "celery_app", lambda: app)
    return app


def test_dispatch_sends_the_task_with_the_run_id(fake_app):
    run = jobs.request_run(job="rollup_analytics", params={"full": "1"}, dry_run=True)
    dispatch.dispatch_run(run_id=run.id)
    ((args, kwargs),) = fake_app.sent
    assert args == ("rollup_analytics",)
    assert kwargs["kwargs"] == {"params": {"full": True}, "run_id": run.id, "triggered_by": "cli"}
    assert kwargs["task_id"] == run.task_id


def test_dispatch_failure_fails_the_run_with_a_clear_error(fake_app):
    fake_app.error = ConnectionRefusedError("broker down")
    run = jobs.request_run(job="expire_sessions")
    with pytest.raises(DispatchFailed, match="broker down"):
        dispatch.dispatch_run(run_id=run.id)
    assert JobRun.objects.get(id=run.id).status == "failed"


def test_a_job_with_nothing_to_do_is_recorded_skipped_with_the_reason(monkeypatch):
    for name in ("MONGO_SOURCE_URL", "MONGODB_URL", "MONGO_SOURCE_COLLECTION"):
        monkeypatch.delenv(name, raising=False)
    record = jobs.execute_run(job="sync_mongo_source", triggered_by="beat")
    assert record.status == "skipped"
    assert "no source attached" in record.details["reason"]
    assert JobRun.objects.get(pk=record.id).status == "skipped"
    # Skipped runs do not count as this period's run: the next beat tries again.
    again = jobs.execute_run(
        job="sync_mongo_source", triggered_by="beat", min_gap=timedelta(minutes=2)
    )
    assert again.status == "skipped" and "no source attached" in again.details["reason"]


def test_idle_beat_runs_for_the_same_reason_share_one_row(monkeypatch):
    for name in ("MONGO_SOURCE_URL", "MONGODB_URL", "MONGO_SOURCE_COLLECTION"):
        monkeypatch.delenv(name, raising=False)
    first = jobs.execute_run(job="sync_mongo_source", triggered_by="beat")
    second = jobs.execute_run(job="sync_mongo_source", triggered_by="beat")
    third = jobs.execute_run(job="sync_mongo_source", triggered_by="beat")
    assert first.id == second.id == third.id
    row = JobRun.objects.get(job="sync_mongo_source")
    assert row.status == "skipped" and row.details["repeats"] == 3
    # The row stands for the latest of the three: "last run" is now, not the first idle run.
    assert row.details["idle_since"] == first.queued_at.isoformat()
    assert row.queued_at > first.queued_at and row.started_at > first.started_at
    # A run someone asked for keeps its own row, and the next idle beat run starts a new one.
    manual = jobs.execute_run(job="sync_mongo_source", triggered_by="manual")
    after = jobs.execute_run(job="sync_mongo_source", triggered_by="beat")
    assert len({first.id, manual.id, after.id}) == 3
    assert JobRun.objects.filter(job="sync_mongo_source").count() == 3


def test_the_history_lists_a_folded_idle_row_by_its_latest_repeat(monkeypatch):
    for name in ("MONGO_SOURCE_URL", "MONGODB_URL", "MONGO_SOURCE_COLLECTION"):
        monkeypatch.delenv(name, raising=False)
    idle = jobs.execute_run(job="sync_mongo_source", triggered_by="beat")
    other = jobs.execute_run(job="expire_sessions", triggered_by="cli")
    jobs.execute_run(job="sync_mongo_source", triggered_by="beat")  # folded into ``idle``

    history = jobs.list_runs()

    assert [run.id for run in history] == [idle.id, other.id]
    assert [run.id for run in jobs.list_runs(before_id=idle.id)] == [other.id]
    assert jobs.list_runs(before_id=other.id) == []


def test_finished_runs_past_the_retention_leave_the_history_but_the_latest_success(settings):
    settings.JOB_HISTORY_RETENTION = "30d"
    long_ago = timezone.now() - timedelta(days=40)
    succeeded = JobRun.objects.create(
        job="expire_sessions", status="succeeded", triggered_by="beat", queued_at=long_ago
    )
    failed = JobRun.objects.create(
        job="expire_sessions", status="failed", triggered_by="beat", queued_at=long_ago
    )
    older_success = JobRun.objects.create(
        job="expire_sessions",
        status="succeeded",
        triggered_by="beat",
        queued_at=long_ago - timedelta(days=1),
    )
    other_job = JobRun.objects.create(
        job="purge_sessions", status="succeeded", triggered_by="beat", queued_at=long_ago
    )
    recent_failure = jobs.request_run(job="expire_sessions", params={}, triggered_by="cli")
    JobRun.objects.filter(pk=recent_failure.id).update(status="failed")

    recent = jobs.execute_run(job="expire_sessions", triggered_by="cli")

    kept = set(JobRun.objects.filter(job="expire_sessions").values_list("pk", flat=True))
    assert recent.id in kept and recent_failure.id in kept
    assert succeeded.pk not in kept and failed.pk not in kept and older_success.pk not in kept
    assert JobRun.objects.filter(pk=other_job.pk).exists()  # only the finishing job's runs


def test_a_job_that_keeps_failing_keeps_its_latest_success_however_old(settings, monkeypatch):
    settings.JOB_HISTORY_RETENTION = "30d"
    success = JobRun.objects.create(
        job="prune_versions",
        status="succeeded",
        triggered_by="beat",
        queued_at=timezone.now() - timedelta(days=90),
    )

    def boom(**arguments):
        raise RuntimeError("still broken")

    monkeypatch.setattr(prune, "prune_versions", boom)
    with pytest.raises(RuntimeError):
        jobs.execute_run(job="prune_versions", triggered_by="beat")

    assert JobRun.objects.filter(pk=success.pk).exists()
    assert JobRun.objects.filter(job="prune_versions", status="failed").count() == 1


def test_an_otel_fold_with_nothing_waiting_is_idle():
    record = jobs.execute_run(job="fold_otel_spans", triggered_by="beat")
    assert record.status == "skipped"
    assert record.details["reason"] == "no spans waiting to be folded"


@pytest.mark.parametrize(
    ("job", "reason"),
    [
        ("evaluate_alerts", "no alert rules and no saves waiting for a check"),
        ("deliver_alerts", "no notifications due"),
    ],
)
def test_alert_jobs_with_nothing_to_do_are_idle(job, reason):
    record = jobs.execute_run(job=job, triggered_by="beat")
    assert record.status == "skipped" and record.details["reason"] == reason
