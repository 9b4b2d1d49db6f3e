"""Handing a recorded run to Celery.

The Celery app is found through the JOBS_CELERY_APP setting (a dotted path, default
``workers.celery.app``) and imported only when a run is sent, so the web process loads no
worker configuration until an admin or ``run_job`` asks for a run.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from sessions_api.errors import DispatchFailed, RunNotFound
from workers import runs
from workers.runs import RunRecord


def celery_app() -> Any:
    return import_string(getattr(settings, "JOBS_CELERY_APP", "workers.celery.app"))


def dispatch_run(*, run_id: int) -> RunRecord:
    """Send a queued run to its job's task. Never blocks long: a broker that does not answer
    within a few seconds fails the run with a clear error (DispatchFailed)."""
    run = runs.get_run(run_id=run_id)
    if run is None:
        raise RunNotFound(f"no run {run_id}")
    try:
        celery_app().send_task(
            run.job,  # a job's task has the job's name
            kwargs={"params": run.params, "run_id": run.id, "triggered_by": run.triggered_by},
            task_id=run.task_id or str(uuid.uuid4()),
            retry=True,
            retry_policy={
                "max_retries": 2,
                "interval_start": 0,
                "interval_step": 0.5,
                "interval_max": 1,
            },
        )
    except Exception as exc:
        message = f"could not enqueue: {type(exc).__name__}: {exc}"[:1000]
        runs.fail_queued_run(run_id=run_id, error=message)
        raise DispatchFailed(message) from exc
    return runs.get_run(run_id=run_id) or run
