"""The run recorder: every run of every job is a JobRun row (history that survives restarts),
and the reads the Jobs page and ``run_job`` show.

1. ``request_run`` (run_job, the Jobs page) creates the row ``queued``; ``dispatch_run``
   (workers/dispatch.py) sends the task with the row's id. Beat sends the task without one; the
   run then creates its row.
2. ``execute_run`` (inside the Celery task, or in-process with ``run_job --inline``) takes the
   job's lock (workers/locks.py), marks the row ``running``, calls the job's service, and
   records ``succeeded`` with counts and details, or ``failed`` with the error. A run that
   finds the lock held records ``skipped``; so do beat runs when the job already ran this
   period (two beat instances must not double a periodic side effect), and runs whose service
   had nothing to do (its result's ``nothing_to_do``, the reason). Consecutive beat runs idle
   for the same reason share one row that counts its ``repeats``.

A worker killed mid-run stops renewing its lease; the redelivered task (acks_late) takes the
job over once the lease runs out and reuses the same row. Rows left ``running`` by a dead
worker are closed as failed by the next run that holds the lock.
"""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from sessions_api import conf
from sessions_api.errors import InvalidParams, RunNotFound
from sessions_api.models import JobRun
from workers.locks import JobLock, LeaseHeartbeat, LeaseLost, job_lock, worker_name
from workers.registry import JOBS, JobSpec, clean_params, get_spec
from workers.schedule import ScheduleInfo

logger = logging.getLogger(__name__)

Status = JobRun.Status
TERMINAL = (Status.SUCCEEDED, Status.FAILED, Status.SKIPPED)


# --- read models ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunRecord:
    id: int
    job: str
    status: str
    params: dict[str, Any]
    dry_run: bool
    triggered_by: str
    task_id: str
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    counts: dict[str, Any]
    details: dict[str, Any]
    error: str

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, (self.finished_at - self.started_at).total_seconds())

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    @property
    def retryable(self) -> bool:
        return self.status == Status.FAILED


def _record(row: JobRun) -> RunRecord:
    return RunRecord(
        id=row.id,
        job=row.job,
        status=row.status,
        params=dict(row.params or {}),
        dry_run=row.dry_run,
        triggered_by=row.triggered_by,
        task_id=row.task_id,
        queued_at=row.queued_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        counts=dict(row.counts or {}),
        details=dict(row.details or {}),
        error=row.error,
    )


# --- requesting runs -------------------------------------------------------------------------


def request_run(
    *,
    job: str,
    params: Mapping[str, Any] | None = None,
    dry_run: bool = False,
    triggered_by: str = "cli",
    now: datetime | None = None,
) -> RunRecord:
    """Create a queued run (validated params); ``dispatch_run`` or ``execute_run`` runs it."""
    cleaned = clean_params(job, params)
    row = JobRun.objects.create(
        job=job,
        status=Status.QUEUED,
        params=cleaned,
        dry_run=dry_run,
        triggered_by=triggered_by[:32],
        task_id=str(uuid.uuid4()),
        queued_at=now or timezone.now(),
    )
    return _record(row)


def retry_run(*, run_id: int, triggered_by: str) -> RunRecord:
    """A new queued run with the same job, params and dry-run flag as a failed one."""
    old = JobRun.objects.filter(pk=run_id).first()
    if old is None:
        raise RunNotFound(f"no run {run_id}")
    if old.status != Status.FAILED:
        raise InvalidParams(f"run {run_id} is {old.status}; only failed runs are retried")
    return request_run(
        job=old.job, params=old.params, dry_run=old.dry_run, triggered_by=triggered_by
    )


# --- executing runs ---------------------------------------------------------------------------


def execute_run(
    *,
    job: str,
    params: Mapping[str, Any] | None = None,
    run_id: int | None = None,
    task_id: str = "",
    triggered_by: str = "beat",
    dry_run: bool | None = None,
    min_gap: timedelta | None = None,
    now: datetime | None = None,
) -> RunRecord:
    """Run one job under its lock and record it. Exceptions from the job are recorded and
    re-raised (the task decides about retries); lock contention is recorded as skipped."""
    spec = get_spec(job)
    row = _resolve_row(
        job=job,
        params=params,
        run_id=run_id,
        task_id=task_id,
        triggered_by=triggered_by,
        dry_run=dry_run,
    )
    if row.status in (Status.SUCCEEDED, Status.SKIPPED):
        return _record(row)  # a duplicate delivery of a run that already finished
    lock = job_lock(job, owner=f"run {row.id}")
    if not lock.acquire():
        if row.status == Status.RUNNING:
            # Our own row is being run by the holder (a redelivery while the first delivery
            # still works), or the holder died and its lease has not run out: leave it.
            return _record(row)
        return _finish(row, Status.SKIPPED, details={"reason": f"lock held by {lock.holder()}"})
    try:
        return _run_locked(spec, row, lock, min_gap=min_gap, now=now)
    finally:
        lock.release()


def _run_locked(
    spec: JobSpec, row: JobRun, lock: JobLock, *, min_gap: timedelta | None, now: datetime | None
) -> RunRecord:
    started = now or timezone.now()
    _close_abandoned_runs(spec.name, keep=row.id, now=started)
    if row.triggered_by == "beat" and min_gap is not None:
        recent = (
            JobRun.objects.filter(
                job=spec.name,
                triggered_by="beat",
                status__in=[Status.RUNNING, Status.SUCCEEDED],
                started_at__gte=started - min_gap,
            )
            .exclude(pk=row.id)
            .order_by("-started_at")
            .first()
        )
        if recent is not None:
            return _finish(
                row,
                Status.SKIPPED,
                details={"reason": f"already ran this period (run {recent.id})"},
            )
    attempt = int((row.details or {}).get("attempt", 0)) + 1
    JobRun.objects.filter(pk=row.pk).update(
        status=Status.RUNNING,
        started_at=started,
        finished_at=None,
        error="",
        details={"attempt": attempt, "worker": worker_name()},
    )
    row.refresh_from_db()
    heartbeat = LeaseHeartbeat(lock)
    heartbeat.start()

    def checkpoint() -> None:
        if heartbeat.lost.is_set():
            raise LeaseLost(f"{spec.name}: lock lease lost; another run may own the job now")

    try:
        result = spec.run_service(
            now=started, params=row.params, dry_run=row.dry_run, checkpoint=checkpoint
        )
    except BaseException as exc:
        _finish(
            row,
            Status.FAILED,
            error=_error_text(exc),
            details={"attempt": attempt, "worker": worker_name()},
        )
        raise
    finally:
        heartbeat.stop()
    idle = str(getattr(result, "nothing_to_do", "") or "")
    if idle and row.triggered_by == "beat":
        repeated = _repeat_of_previous_idle_run(row, reason=idle)
        if repeated is not None:
            return repeated
    return _finish(
        row,
        Status.SKIPPED if idle else Status.SUCCEEDED,
        counts=result.counts(),
        details={**result.details(), "attempt": attempt, **({"reason": idle} if idle else {})},
    )


def _repeat_of_previous_idle_run(row: JobRun, *, reason: str) -> RunRecord | None:
    """A beat run with nothing to do, folded into the job's previous run when that one was
    idle for the same reason: it counts the repeat and takes this run's times, and this run's
    row goes. A job polling every few seconds would otherwise fill the history with rows that
    say nothing new. None (nothing folded) after any other outcome."""
    previous = JobRun.objects.filter(job=row.job).exclude(pk=row.pk).order_by("-id").first()
    details = (previous.details or {}) if previous is not None else {}
    if (
        previous is None
        or previous.triggered_by != "beat"
        or previous.status != Status.SKIPPED
        or details.get("reason") != reason
    ):
        return None
    repeats = int(details.get("repeats", 1)) + 1
    idle_since = details.get("idle_since") or previous.queued_at.isoformat()
    # The row now stands for the latest run (its times drive "last run" and the next-run
    # estimate); when the idling began stays in its details.
    JobRun.objects.filter(pk=previous.pk).update(
        queued_at=row.queued_at,
        started_at=row.started_at,
        finished_at=timezone.now(),
        details={**details, "repeats": repeats, "idle_since": idle_since},
    )
    row.delete()
    previous.refresh_from_db()
    return _record(previous)


def _forget_old_runs(job: str, *, now: datetime) -> None:
    """The job's finished runs past JOB_HISTORY_RETENTION leave its history, but for its latest
    success (what "last success" shows, however long the job has failed since)."""
    retention = conf.job_history_retention()
    if retention is None:
        return
    latest_success = JobRun.objects.filter(job=job, status=Status.SUCCEEDED).order_by("-queued_at")
    # The success to keep is a subquery of the delete, not a read of its own.
    JobRun.objects.filter(
        job=job,
        queued_at__lt=now - retention,
        status__in=(Status.SUCCEEDED, Status.FAILED, Status.SKIPPED),
    ).exclude(pk__in=latest_success.values("pk")[:1]).delete()


def note_retry(*, task_id: str, error: BaseException | str) -> None:
    """A failed attempt that the task will retry: back to queued, the error kept."""
    if not task_id:
        return
    text = error if isinstance(error, str) else _error_text(error)
    JobRun.objects.filter(task_id=task_id).exclude(status=Status.SUCCEEDED).update(
        status=Status.QUEUED, error=f"retrying after: {text}"[:4000], finished_at=None
    )


def _resolve_row(
    *,
    job: str,
    params: Mapping[str, Any] | None,
    run_id: int | None,
    task_id: str,
    triggered_by: str,
    dry_run: bool | None,
) -> JobRun:
    if run_id is not None:
        row = JobRun.objects.filter(pk=run_id).first()
        if row is not None:
            if row.job != job:
                raise InvalidParams(f"run {run_id} is a {row.job} run, not {job}")
            return row
    if task_id:
        row = JobRun.objects.filter(task_id=task_id, job=job).first()
        if row is not None:
            return row  # a redelivery or retry of a run we already recorded
    return JobRun.objects.create(
        job=job,
        status=Status.QUEUED,
        params=clean_params(job, params),
        dry_run=bool(dry_run),
        triggered_by=triggered_by[:32],
        task_id=task_id,
        queued_at=timezone.now(),
    )


def _finish(
    row: JobRun,
    status: str,
    *,
    counts: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
    error: str = "",
) -> RunRecord:
    now = timezone.now()
    JobRun.objects.filter(pk=row.pk).update(
        status=status,
        started_at=row.started_at or now,
        finished_at=now,
        counts=counts or {},
        details=details or {},
        error=error,
    )
    row.refresh_from_db()
    _forget_old_runs(row.job, now=now)
    record = _record(row)
    # One line per finished run, so log pipelines see job outcomes without reading JobRun.
    logger.log(
        logging.ERROR if status == "failed" else logging.INFO,
        "job %s %s",
        row.job,
        status,
        extra={
            "job": row.job,
            "run_id": row.pk,
            "status": status,
            "duration_s": record.duration_s,
            "counts": counts or {},
            "error": error or None,
        },
    )
    return record


def _close_abandoned_runs(job: str, *, keep: int, now: datetime) -> None:
    """Runs still 'running' while we hold the lock lost their worker: say so."""
    JobRun.objects.filter(job=job, status=Status.RUNNING).exclude(pk=keep).update(
        status=Status.FAILED,
        finished_at=now,
        error="worker lost: its lock lease ran out before the run finished "
        "(the task is redelivered and runs again)",
    )


def _error_text(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"[:4000]


# --- reads for the Jobs page and run_job ------------------------------------------------------


@dataclass(frozen=True)
class JobOverview:
    name: str
    summary: str
    destructive: bool
    schedule: ScheduleInfo
    last_run: RunRecord | None
    last_success: RunRecord | None
    next_run_at: datetime | None
    overdue: bool
    runs_24h: int
    failures_24h: int
    params: tuple[str, ...] = field(default_factory=tuple)


def job_overview(*, now: datetime, schedule: Mapping[str, ScheduleInfo]) -> list[JobOverview]:
    """One line per job: last run, last success, the next beat run, failures in 24 hours."""
    overview = []
    day_ago = now - timedelta(hours=24)
    for name, spec in JOBS.items():
        runs = JobRun.objects.filter(job=name)
        last = runs.order_by("-queued_at", "-id").first()
        success = runs.filter(status=Status.SUCCEEDED).order_by("-finished_at", "-id").first()
        info = schedule.get(name, ScheduleInfo(every=None))
        next_run = None
        overdue = False
        if info.every is not None:
            last_beat = (
                runs.filter(triggered_by="beat")
                .order_by("-queued_at", "-id")
                .values_list("queued_at", flat=True)
                .first()
            )
            if last_beat is not None:
                next_run = last_beat + info.every
                overdue = now > next_run + info.every
        recent = runs.filter(queued_at__gte=day_ago)
        overview.append(
            JobOverview(
                name=name,
                summary=spec.summary,
                destructive=spec.destructive,
                schedule=info,
                last_run=_record(last) if last else None,
                last_success=_record(success) if success else None,
                next_run_at=next_run,
                overdue=overdue,
                runs_24h=recent.count(),
                failures_24h=recent.filter(status=Status.FAILED).count(),
                params=tuple(spec.params),
            )
        )
    return overview


def list_runs(
    *, job: str | None = None, limit: int = 50, before_id: int | None = None
) -> list[RunRecord]:
    """Latest first, by when each run was last queued (a row that folds repeated idle runs
    moves up with each repeat); page with ``before_id``, the last run of the previous page."""
    runs = JobRun.objects.all()
    if job:
        get_spec(job)
        runs = runs.filter(job=job)
    if before_id is not None:
        before = JobRun.objects.filter(pk=before_id).values_list("queued_at", flat=True).first()
        if before is None:  # gone since (retention): page on from its id alone
            runs = runs.filter(id__lt=before_id)
        else:
            runs = runs.filter(Q(queued_at__lt=before) | Q(queued_at=before, id__lt=before_id))
    ordered = runs.order_by("-queued_at", "-id")
    return [_record(row) for row in ordered[: max(1, min(limit, 200))]]


def get_run(*, run_id: int) -> RunRecord | None:
    row = JobRun.objects.filter(pk=run_id).first()
    return _record(row) if row else None


def fail_queued_run(*, run_id: int, error: str) -> None:
    """A run that never reached a worker (the broker refused it): failed, with why."""
    JobRun.objects.filter(pk=run_id, status=Status.QUEUED).update(
        status=Status.FAILED, error=error[:1000], finished_at=timezone.now()
    )
