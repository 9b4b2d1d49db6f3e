"""Thin Celery tasks over the job services (workers/runs.py). Explicit names, ids not
objects: each task takes only JSON params and, when run_job or the Jobs page asked for it, the
id of its JobRun row (beat adds ``triggered_by`` and its period, ``period_s``).

Every job task is ``acks_late`` with ``reject_on_worker_lost`` (a killed worker's task is
delivered again and the run resumes under the same row), has a soft and a hard time limit (the
soft one is recorded as a failure; work committed batch by batch stays done), and retries
transient failures (broker, database, store or source unreachable) with backoff; the run row
shows "retrying after: ..." meanwhile.
"""

from __future__ import annotations

from typing import Any

import redis.exceptions
from celery import Task
from django.db import InterfaceError, OperationalError

from sessions_api.errors import SourceUnavailable, StoreUnavailable
from workers import runs as jobs
from workers import schedule
from workers.celery import app

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    jobs.TransientJobError,
    StoreUnavailable,
    SourceUnavailable,
    OperationalError,
    InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


class JobTask(Task):
    """Keeps the JobRun row in step with Celery's retries."""

    def on_retry(self, exc, task_id, args, kwargs, einfo):
        jobs.note_retry(task_id=task_id, error=exc)


def job_task(name: str, *, soft_minutes: int, hard_minutes: int):
    return app.task(
        name=name,
        bind=True,
        base=JobTask,
        acks_late=True,
        reject_on_worker_lost=True,
        soft_time_limit=soft_minutes * 60,
        time_limit=hard_minutes * 60,
        autoretry_for=TRANSIENT_ERRORS,
        max_retries=5,
        retry_backoff=5,
        retry_backoff_max=300,  # far below the broker's visibility timeout
        retry_jitter=True,
    )


def _run(
    task: Task,
    job: str,
    params: dict | None,
    run_id: int | None,
    triggered_by: str,
    period_s: float | None,
):
    record = jobs.execute_run(
        job=job,
        params=params or {},
        run_id=run_id,
        task_id=task.request.id or "",
        triggered_by=triggered_by,
        min_gap=schedule.min_gap(job, period_s) if triggered_by == "beat" else None,
    )
    return {"run_id": record.id, "status": record.status, "counts": record.counts}


@job_task("expire_sessions", soft_minutes=10, hard_minutes=12)
def expire_sessions(
    self, params=None, run_id=None, triggered_by="beat", period_s=None
) -> dict[str, Any]:
    """Mark sessions expired: own expiry passed, or idle past the policy."""
    return _run(self, "expire_sessions", params, run_id, triggered_by, period_s)


@job_task("purge_sessions", soft_minutes=25, hard_minutes=30)
def purge_sessions(
    self, params=None, run_id=None, triggered_by="beat", period_s=None
) -> dict[str, Any]:
    """Delete sessions past their grace period or retention, in batches."""
    return _run(self, "purge_sessions", params, run_id, triggered_by, period_s)


@job_task("prune_versions", soft_minutes=25, hard_minutes=30)
def prune_versions(
    self, params=None, run_id=None, triggered_by="beat", period_s=None
) -> dict[str, Any]:
    """Keep the newest N versions of each session."""
    return _run(self, "prune_versions", params, run_id, triggered_by, period_s)


@job_task("rollup_analytics", soft_minutes=20, hard_minutes=25)
def rollup_analytics(
    self, params=None, run_id=None, triggered_by="beat", period_s=None
) -> dict[str, Any]:
    """Update the hourly and daily analytics rollups."""
    return _run(self, "rollup_analytics", params, run_id, triggered_by, period_s)


@job_task("sync_mongo_source", soft_minutes=10, hard_minutes=12)
def sync_mongo_source(
    self, params=None, run_id=None, triggered_by="beat", period_s=None
) -> dict[str, Any]:
    """Import new and changed documents from the attached MongoDB collection."""
    return _run(self, "sync_mongo_source", params, run_id, triggered_by, period_s)


@job_task("reconcile_store", soft_minutes=25, hard_minutes=30)
def reconcile_store(
    self, params=None, run_id=None, triggered_by="beat", period_s=None
) -> dict[str, Any]:
    """Check index rows against stored bodies; repair what a crash left (Mongo store)."""
    return _run(self, "reconcile_store", params, run_id, triggered_by, period_s)


@job_task("detect_stuck_sessions", soft_minutes=5, hard_minutes=6)
def detect_stuck_sessions(
    self, params=None, run_id=None, triggered_by="beat", period_s=None
) -> dict[str, Any]:
    """Flag running sessions without an update for too long."""
    return _run(self, "detect_stuck_sessions", params, run_id, triggered_by, period_s)


@app.task(name="workers.ping")
def ping() -> str:
    """A canary: answers when a worker is consuming."""
    return "pong"
