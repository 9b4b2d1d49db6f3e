"""Background jobs: the registry, the run recorder with its per-job lock, and the reads the
Jobs page and ``run_job`` show.

Every run of every job is a JobRun row (history that survives restarts):

1. ``request_run`` (run_job, the Jobs page) creates the row ``queued``; ``dispatch_run`` sends
   the task with the row's id. Beat sends the task without one; the run then creates its row.
2. ``execute_run`` (inside the Celery task, or in-process with ``run_job --inline``) takes the
   job's lock, marks the row ``running``, calls the service, and records ``succeeded`` with
   counts and details, or ``failed`` with the error. A run that finds the lock held records
   ``skipped``; so do beat runs when the job already ran this period (two beat
   instances).

The lock is a lease renewed by a heartbeat thread while the job runs: a Redis lock when
REDIS_URL is set, else a JobState row. A worker killed with -9 stops renewing, the lease runs
out within JOB_LOCK_TTL_SECONDS, and the redelivered task (acks_late) takes it over and reuses
the same row. Rows left ``running`` by a dead worker are closed as failed by
the next run that holds the lock.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
import uuid
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Protocol

from django.conf import settings
from django.db import IntegrityError, OperationalError, connections, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from sessions_api import conf
from sessions_api.analytics import rollups
from sessions_api.errors import DispatchFailed, InvalidParams, RunNotFound, UnknownJob
from sessions_api.ingest import mongo_sync
from sessions_api.lifecycle import maintenance
from sessions_api.models import JobRun, JobState

logger = logging.getLogger(__name__)

Status = JobRun.Status
TERMINAL = (Status.SUCCEEDED, Status.FAILED, Status.SKIPPED)


class TransientJobError(RuntimeError):
    """Worth retrying later: a dependency is down, not the job wrong."""


class LockUnavailable(TransientJobError):
    """The lock backend (Redis or the database) could not be asked."""


class LeaseLost(RuntimeError):
    """This run's lock lease ran out or was taken over: it stops at the next batch boundary."""


# --- the registry -----------------------------------------------------------------------------


@dataclass(frozen=True)
class JobContext:
    now: datetime
    params: Mapping[str, Any]
    dry_run: bool
    checkpoint: Callable[[], None]


@dataclass(frozen=True)
class JobSpec:
    name: str
    summary: str
    destructive: bool
    params: Mapping[str, type]
    execute: Callable[[JobContext], Any]  # returns a result with counts() and details()


def _expire(ctx: JobContext) -> Any:
    return maintenance.expire_sessions(
        now=ctx.now,
        batch_size=ctx.params.get("batch_size", 500),
        dry_run=ctx.dry_run,
        checkpoint=ctx.checkpoint,
    )


def _purge(ctx: JobContext) -> Any:
    return maintenance.purge_sessions(
        now=ctx.now,
        batch_size=ctx.params.get("batch_size", 200),
        limit=ctx.params.get("limit"),
        pause_s=ctx.params.get("pause_s", 0.0),
        dry_run=ctx.dry_run,
        checkpoint=ctx.checkpoint,
    )


def _prune(ctx: JobContext) -> Any:
    return maintenance.prune_versions(
        now=ctx.now,
        keep=ctx.params.get("keep"),
        batch_size=ctx.params.get("batch_size", 200),
        dry_run=ctx.dry_run,
        checkpoint=ctx.checkpoint,
    )


def _rollup(ctx: JobContext) -> Any:
    return rollups.rollup_analytics(
        now=ctx.now,
        full=ctx.params.get("full", False),
        dry_run=ctx.dry_run,
        checkpoint=ctx.checkpoint,
    )


def _sync(ctx: JobContext) -> Any:
    return mongo_sync.sync_mongo_source(
        now=ctx.now,
        batch_size=ctx.params.get("batch_size", 200),
        max_documents=ctx.params.get("max_documents", 5000),
        full=ctx.params.get("full", False),
        dry_run=ctx.dry_run,
        checkpoint=ctx.checkpoint,
    )


def _reconcile(ctx: JobContext) -> Any:
    min_age = ctx.params.get("orphan_min_age_s")
    return maintenance.reconcile_store(
        now=ctx.now,
        batch_size=ctx.params.get("batch_size", 500),
        orphan_min_age=timedelta(seconds=min_age) if min_age is not None else None,
        dry_run=ctx.dry_run,
        checkpoint=ctx.checkpoint,
    )


def _stuck(ctx: JobContext) -> Any:
    return maintenance.detect_stuck_sessions(
        now=ctx.now,
        batch_size=ctx.params.get("batch_size", 1000),
        dry_run=ctx.dry_run,
        checkpoint=ctx.checkpoint,
    )


JOBS: dict[str, JobSpec] = {
    spec.name: spec
    for spec in (
        JobSpec(
            "expire_sessions",
            "Marks sessions expired when their own expiry passes or they idle too long.",
            False,
            {"batch_size": int},
            _expire,
        ),
        JobSpec(
            "purge_sessions",
            "Deletes sessions expired longer than the grace period or past retention.",
            True,
            {"batch_size": int, "limit": int, "pause_s": float},
            _purge,
        ),
        JobSpec(
            "prune_versions",
            "Keeps the newest N versions of each session (and pinned checkpoints).",
            True,
            {"keep": int, "batch_size": int},
            _prune,
        ),
        JobSpec(
            "rollup_analytics",
            "Updates the hourly and daily analytics buckets the charts read.",
            False,
            {"full": bool},
            _rollup,
        ),
        JobSpec(
            "sync_mongo_source",
            "Imports new and changed documents from the attached MongoDB collection.",
            False,
            {"batch_size": int, "max_documents": int, "full": bool},
            _sync,
        ),
        JobSpec(
            "reconcile_store",
            "Checks index rows against stored bodies; repairs what a crash left (Mongo).",
            False,
            {"batch_size": int, "orphan_min_age_s": int},
            _reconcile,
        ),
        JobSpec(
            "detect_stuck_sessions",
            "Flags running sessions without an update for too long; clears the flag after.",
            False,
            {"batch_size": int},
            _stuck,
        ),
    )
}
JOB_NAMES = tuple(JOBS)
DESTRUCTIVE_JOBS = frozenset(name for name, spec in JOBS.items() if spec.destructive)


def get_spec(job: str) -> JobSpec:
    try:
        return JOBS[job]
    except KeyError:
        raise UnknownJob(f"unknown job {job!r}; jobs are: {', '.join(JOB_NAMES)}") from None


def clean_params(job: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check params against the job's declared ones; strings (``--param k=v``) are converted."""
    spec = get_spec(job)
    cleaned: dict[str, Any] = {}
    for name, value in (params or {}).items():
        kind = spec.params.get(name)
        if kind is None:
            allowed = ", ".join(spec.params) or "none"
            raise InvalidParams(f"{job} takes no parameter {name!r} (it takes: {allowed})")
        cleaned[name] = _convert(name, value, kind)
    return cleaned


def _convert(name: str, value: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise InvalidParams(f"{name} must be true or false, not {value!r}")
    if isinstance(value, bool):
        raise InvalidParams(f"{name} must be a number, not {value!r}")
    try:
        converted = kind(value)
    except (TypeError, ValueError):
        raise InvalidParams(f"{name} must be {kind.__name__}, not {value!r}") from None
    if converted < 0 or (name in {"batch_size", "keep", "max_documents"} and converted < 1):
        raise InvalidParams(f"{name} must be positive, not {value!r}")
    return converted


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


# --- requesting and dispatching runs ----------------------------------------------------------


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


def dispatch_run(*, run_id: int) -> RunRecord:
    """Hand a queued run to the broker. Never blocks long: a broker that does not answer
    within a few seconds fails the run with a clear error (DispatchFailed)."""
    row = JobRun.objects.get(pk=run_id)
    app = import_string(getattr(settings, "JOBS_CELERY_APP", "workers.celery.app"))
    try:
        app.send_task(
            row.job,
            kwargs={"params": row.params, "run_id": row.id, "triggered_by": row.triggered_by},
            task_id=row.task_id or str(uuid.uuid4()),
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
        JobRun.objects.filter(pk=run_id, status=Status.QUEUED).update(
            status=Status.FAILED, error=message, finished_at=timezone.now()
        )
        raise DispatchFailed(message) from exc
    return _record(JobRun.objects.get(pk=run_id))


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
        details={"attempt": attempt, "worker": _worker_name()},
    )
    row.refresh_from_db()
    heartbeat = _Heartbeat(lock)
    heartbeat.start()

    def checkpoint() -> None:
        if heartbeat.lost.is_set():
            raise LeaseLost(f"{spec.name}: lock lease lost; another run may own the job now")

    try:
        result = spec.execute(
            JobContext(now=started, params=row.params, dry_run=row.dry_run, checkpoint=checkpoint)
        )
    except BaseException as exc:
        _finish(
            row,
            Status.FAILED,
            error=_error_text(exc),
            details={"attempt": attempt, "worker": _worker_name()},
        )
        raise
    finally:
        heartbeat.stop()
    return _finish(
        row,
        Status.SUCCEEDED,
        counts=result.counts(),
        details={**result.details(), "attempt": attempt},
    )


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


@cache
def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# --- locks ------------------------------------------------------------------------------------


class JobLock(Protocol):
    ttl: timedelta

    def acquire(self) -> bool: ...
    def renew(self) -> bool: ...
    def release(self) -> None: ...
    def holder(self) -> str: ...


def job_lock(job: str, *, owner: str = "", ttl: timedelta | None = None) -> JobLock:
    """The lock for one job: Redis when REDIS_URL is set, the database otherwise."""
    ttl = ttl or conf.job_lock_ttl()
    token = f"{_worker_name()}:{owner}:{uuid.uuid4().hex[:8]}"
    if getattr(settings, "REDIS_URL", ""):
        return RedisJobLock(job, token=token, ttl=ttl)
    return DatabaseJobLock(job, token=token, ttl=ttl)


class RedisJobLock:
    """``SET NX PX`` with a token; renew and release only while the token is ours."""

    def __init__(self, job: str, *, token: str, ttl: timedelta) -> None:
        self.key = f"observatory:joblock:{job}"
        self.token = token
        self.ttl = ttl
        self._client = _redis_client(settings.REDIS_URL)

    def _call(self, fn: Callable[[], Any]) -> Any:
        import redis

        try:
            return fn()
        except redis.RedisError as exc:
            raise LockUnavailable(f"Redis lock: {exc}") from exc

    def acquire(self) -> bool:
        ms = int(self.ttl.total_seconds() * 1000)
        return bool(self._call(lambda: self._client.set(self.key, self.token, nx=True, px=ms)))

    def renew(self) -> bool:
        ms = int(self.ttl.total_seconds() * 1000)
        return bool(self._call(lambda: self._client.eval(_RENEW_LUA, 1, self.key, self.token, ms)))

    def release(self) -> None:
        with suppress(LockUnavailable):
            self._call(lambda: self._client.eval(_RELEASE_LUA, 1, self.key, self.token))

    def holder(self) -> str:
        with suppress(LockUnavailable):
            value = self._call(lambda: self._client.get(self.key))
            return value.decode() if isinstance(value, bytes) else str(value)
        return "unknown"


# Compare-and-act on the token, atomically on the server. Renewing also re-takes a key that
# is gone (Redis restarted without persistence): nobody else holds the job then, so the run may
# go on; a key held by another token means the lease is lost.
_RENEW_LUA = """
local current = redis.call('get', KEYS[1])
if current == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
if not current then
  if redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then
    return 1
  end
end
return 0
"""
_RELEASE_LUA = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


@cache
def _redis_client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)


class DatabaseJobLock:
    """A lease in a JobState row (``lock:<job>``): taken when free or expired, inside a short
    transaction that locks the row (SQLite: the IMMEDIATE transaction serialises writers)."""

    def __init__(self, job: str, *, token: str, ttl: timedelta) -> None:
        self.name = f"lock:{job}"
        self.token = token
        self.ttl = ttl

    def _row(self) -> JobState:
        row = JobState.objects.select_for_update().filter(name=self.name).first()
        if row is None:
            try:
                with transaction.atomic():
                    row = JobState.objects.create(name=self.name, value={})
            except IntegrityError:
                row = JobState.objects.select_for_update().get(name=self.name)
        return row

    def acquire(self) -> bool:
        now = timezone.now()
        try:
            with transaction.atomic():
                row = self._row()
                lease = row.value or {}
                owner = lease.get("owner")
                until = _parse_time(lease.get("until"))
                if owner and owner != self.token and until is not None and until > now:
                    return False
                row.value = {
                    "owner": self.token,
                    "until": (now + self.ttl).isoformat(),
                    "since": now.isoformat(),
                }
                row.save(update_fields=["value", "updated_at"])
                return True
        except OperationalError as exc:
            raise LockUnavailable(f"database lock: {exc}") from exc

    def renew(self) -> bool:
        now = timezone.now()
        with transaction.atomic():
            row = self._row()
            lease = row.value or {}
            if lease.get("owner") != self.token:
                return False
            row.value = {**lease, "until": (now + self.ttl).isoformat()}
            row.save(update_fields=["value", "updated_at"])
            return True

    def release(self) -> None:
        with suppress(Exception), transaction.atomic():
            row = self._row()
            if (row.value or {}).get("owner") == self.token:
                row.value = {}
                row.save(update_fields=["value", "updated_at"])

    def holder(self) -> str:
        value = JobState.objects.filter(name=self.name).values_list("value", flat=True).first()
        return str((value or {}).get("owner", "unknown"))


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


class _Heartbeat:
    """Renews the lease every third of its TTL on a daemon thread; sets ``lost`` when the
    lease is no longer ours (a renewal that merely fails is tried again next beat)."""

    def __init__(self, lock: JobLock) -> None:
        self.lock = lock
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="job-lock-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        interval = max(0.5, self.lock.ttl.total_seconds() / 3)
        try:
            while not self._stop.wait(interval):
                try:
                    if not self.lock.renew():
                        self.lost.set()
                        return
                except Exception:
                    logger.warning("job lock renewal failed; trying again", exc_info=True)
        finally:
            connections.close_all()  # this thread's own database connections


# --- reads for the Jobs page and run_job ------------------------------------------------------


@dataclass(frozen=True)
class ScheduleInfo:
    """What beat does with a job (from workers/schedule.py)."""

    every: timedelta | None  # None: not scheduled
    description: str = ""


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
    """Newest first; page with ``before_id`` (keyset on id)."""
    runs = JobRun.objects.all()
    if job:
        get_spec(job)
        runs = runs.filter(job=job)
    if before_id is not None:
        runs = runs.filter(id__lt=before_id)
    return [_record(row) for row in runs.order_by("-id")[: max(1, min(limit, 200))]]


def get_run(*, run_id: int) -> RunRecord | None:
    row = JobRun.objects.filter(pk=run_id).first()
    return _record(row) if row else None
