"""The Celery tasks: one per job in the registry (workers/registry.py), named exactly as the
job, each a thin call of ``runs.execute_run``. Ids not objects: a task takes only JSON params
and, when run_job or the Jobs page asked for it, the id of its JobRun row (beat adds
``triggered_by`` and its period, ``period_s``).

Every job task is ``acks_late`` with ``reject_on_worker_lost`` (a killed worker's task is
delivered again and the run resumes under the same row), has the job's soft and hard time
limits (the soft one is recorded as a failure; work committed batch by batch stays done), and
retries transient failures (broker, database, store or source unreachable) with backoff; the
run row shows "retrying after: ..." meanwhile.
"""

from __future__ import annotations

from typing import Any

import redis.exceptions
from celery import Task
from django.db import InterfaceError, OperationalError

from sessions_api.errors import SourceUnavailable, StoreUnavailable
from workers import runs, schedule
from workers.celery import app
from workers.locks import TransientJobError
from workers.registry import JOBS, JobSpec

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    TransientJobError,
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
        runs.note_retry(task_id=task_id, error=exc)


def _register(spec: JobSpec) -> Task:
    def run_job(
        self: Task,
        params: dict[str, Any] | None = None,
        run_id: int | None = None,
        triggered_by: str = "beat",
        period_s: float | None = None,
    ) -> dict[str, Any]:
        record = runs.execute_run(
            job=spec.name,
            params=params or {},
            run_id=run_id,
            task_id=self.request.id or "",
            triggered_by=triggered_by,
            min_gap=schedule.min_gap(spec.name, period_s) if triggered_by == "beat" else None,
        )
        return {"run_id": record.id, "status": record.status, "counts": record.counts}

    run_job.__name__ = run_job.__qualname__ = spec.name
    run_job.__doc__ = spec.summary
    return app.task(
        run_job,
        name=spec.name,
        bind=True,
        base=JobTask,
        acks_late=True,
        reject_on_worker_lost=True,
        soft_time_limit=int(spec.soft_time_limit.total_seconds()),
        time_limit=int(spec.time_limit.total_seconds()),
        autoretry_for=TRANSIENT_ERRORS,
        max_retries=5,
        retry_backoff=5,
        retry_backoff_max=300,  # far below the broker's visibility timeout
        retry_jitter=True,
    )


#: job name -> its Celery task
JOB_TASKS: dict[str, Task] = {name: _register(spec) for name, spec in JOBS.items()}


@app.task(name="workers.ping")
def ping() -> str:
    """A canary: answers when a worker is consuming."""
    return "pong"


# --- alert events: one small task per event, outside the job runs ----------------------------
# Sent at commit time (workers/alert_events.py); a lost message is caught by the
# evaluate_alerts and deliver_alerts jobs, and both tasks are idempotent (outbox rows are
# processed once, notifications are claimed before they are sent).

ALERT_EVENT_TASKS = ("alerts.session_event", "alerts.deliver")


@app.task(
    name="alerts.session_event",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT_ERRORS,
    max_retries=5,
    retry_backoff=2,
    retry_backoff_max=60,
    soft_time_limit=60,
    time_limit=90,
)
def alert_session_event(outbox_id: int) -> list[int]:
    """Check one saved session against the session rules and send what fires at once."""
    from sessions_api.lifecycle.alerts import delivery, evaluate

    created = evaluate.process_outbox(outbox_id=outbox_id)
    for notification_id in created:
        _deliver_and_schedule(delivery, notification_id)
    return created


@app.task(
    name="alerts.deliver",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT_ERRORS,
    max_retries=5,
    retry_backoff=2,
    retry_backoff_max=60,
    soft_time_limit=60,
    time_limit=90,
)
def alert_deliver(notification_id: int) -> str:
    """One delivery attempt; a failure schedules the next one after its backoff."""
    from sessions_api.lifecycle.alerts import delivery

    return _deliver_and_schedule(delivery, notification_id)


def _deliver_and_schedule(delivery: Any, notification_id: int) -> str:
    outcome = delivery.deliver_notification(notification_id=notification_id)
    if outcome.retry_in is not None:
        alert_deliver.apply_async(args=[notification_id], countdown=outcome.retry_in)
    return outcome.status or "not claimed"
