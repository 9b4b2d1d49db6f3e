"""The jobs: one ``JobSpec`` per job, the only place a job is declared.

Everything else is derived from it: the Celery tasks (workers/tasks.py, same names as the
jobs), the beat schedule (workers/schedule.py), the parameters ``run_job`` and the Jobs page
accept, and what the Jobs page says about each job.

workers/celery.py reads the schedule before Django is set up, so nothing here may load models:
a job names its service by dotted path, imported when a run calls it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from django.utils.module_loading import import_string

from sessions_api.errors import InvalidParams, UnknownJob


class JobResult(Protocol):
    """What a job's service returns: counts for the run's summary, details for its page.

    A service that had nothing to do at all (no source attached, a feature turned off) says why
    in ``nothing_to_do`` (an attribute or property; absent or empty otherwise): the run is then
    recorded ``skipped`` with that reason, not ``succeeded``."""

    def counts(self) -> dict[str, Any]: ...
    def details(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Param:
    """A parameter a job takes (``run_job --param name=value``), passed to its service."""

    kind: type[int] | type[float] | type[bool]
    #: None: the service decides (from a setting, or no bound).
    default: int | float | bool | None
    minimum: int = 0
    #: The service's keyword and how the value becomes its argument, where they differ: runs
    #: keep JSON-friendly numbers (seconds) where a service takes a timedelta.
    argument: str = ""
    to_argument: Callable[[Any], Any] | None = None


@dataclass(frozen=True)
class JobSpec:
    name: str
    #: Dotted path of the keyword-only service; it is called with ``now``, ``dry_run``,
    #: ``checkpoint`` and the params, and returns a JobResult.
    service: str
    #: What the job does, in one line (the Jobs page shows it).
    summary: str
    #: Why it runs as often as it does.
    why_this_often: str
    #: The beat period, unless JOB_SCHEDULE_<JOB> changes it.
    every: timedelta
    #: The soft limit fails the run (batches committed so far stay done); the hard one kills it.
    soft_time_limit: timedelta
    time_limit: timedelta
    #: Deletes data: the Jobs page offers a dry run first.
    destructive: bool = False
    params: Mapping[str, Param] = field(default_factory=dict)

    def run_service(
        self,
        *,
        now: datetime,
        params: Mapping[str, Any],
        dry_run: bool,
        checkpoint: Callable[[], None],
    ) -> JobResult:
        """Call the service with the run's params (cleaned), defaults for the others."""
        arguments = {}
        for name, param in self.params.items():
            value = params.get(name, param.default)
            if value is not None and param.to_argument is not None:
                value = param.to_argument(value)
            arguments[param.argument or name] = value
        service = import_string(self.service)
        return service(now=now, dry_run=dry_run, checkpoint=checkpoint, **arguments)


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


JOBS: dict[str, JobSpec] = {
    spec.name: spec
    for spec in (
        JobSpec(
            name="expire_sessions",
            service="sessions_api.lifecycle.expiry.expire_sessions",
            summary="Marks sessions expired when their own expiry passes or they idle too long.",
            why_this_often="Every 5 minutes: indexed and cheap, so the Expired status is never "
            "stale for long.",
            every=timedelta(minutes=5),
            soft_time_limit=timedelta(minutes=10),
            time_limit=timedelta(minutes=12),
            params={
                "batch_size": Param(int, 500, minimum=1),
                "lock_target_ms": Param(float, 50.0, minimum=1),
            },
        ),
        JobSpec(
            name="purge_sessions",
            service="sessions_api.lifecycle.purge.purge_sessions",
            summary="Deletes sessions expired longer than the grace period or past retention.",
            why_this_often="Hourly, in small batches that leave ingestion its latency: hourly "
            "keeps each run short.",
            every=timedelta(hours=1),
            soft_time_limit=timedelta(minutes=25),
            time_limit=timedelta(minutes=30),
            destructive=True,
            params={
                "batch_size": Param(int, 200, minimum=1),
                "limit": Param(int, None),
                "pause_s": Param(float, 0.0),
                "lock_target_ms": Param(float, 50.0, minimum=1),
            },
        ),
        JobSpec(
            name="prune_versions",
            service="sessions_api.lifecycle.prune.prune_versions",
            summary="Keeps the newest N versions of each session (and pinned checkpoints).",
            why_this_often="Every 6 hours: versions pile up slowly.",
            every=timedelta(hours=6),
            soft_time_limit=timedelta(minutes=25),
            time_limit=timedelta(minutes=30),
            destructive=True,
            params={"keep": Param(int, None, minimum=1), "batch_size": Param(int, 200, minimum=1)},
        ),
        JobSpec(
            name="rollup_analytics",
            service="sessions_api.analytics.rollups.rollup_analytics",
            summary="Updates the hourly and daily analytics buckets the charts read.",
            why_this_often="Every 5 minutes: folds the sessions received since the last run "
            "into the buckets the charts read, so they lag by one period at most (once a day a "
            "run rebuilds them all).",
            every=timedelta(minutes=5),
            soft_time_limit=timedelta(minutes=20),
            time_limit=timedelta(minutes=25),
            params={"full": Param(bool, False)},
        ),
        JobSpec(
            name="sync_mongo_source",
            service="sessions_api.ingest.mongo_sync.sync_mongo_source",
            summary="Imports new and changed documents from the attached MongoDB collection.",
            why_this_often="Every 2 minutes, at most 5,000 documents a run, so the source's "
            "sessions show up soon; it does nothing until a source is configured.",
            every=timedelta(minutes=2),
            soft_time_limit=timedelta(minutes=10),
            time_limit=timedelta(minutes=12),
            params={
                "batch_size": Param(int, 200, minimum=1),
                "max_documents": Param(int, 5000, minimum=1),
                "full": Param(bool, False),
            },
        ),
        JobSpec(
            name="reconcile_store",
            service="sessions_api.lifecycle.reconcile.reconcile_store",
            summary="Checks index rows against stored bodies; repairs what a crash left (Mongo).",
            why_this_often="Hourly: removes the bodies a crashed ingest left behind (Mongo "
            "store) before they can get in a retried ingest's way.",
            every=timedelta(hours=1),
            soft_time_limit=timedelta(minutes=25),
            time_limit=timedelta(minutes=30),
            params={
                "batch_size": Param(int, 500, minimum=1),
                "orphan_min_age_s": Param(
                    int, None, argument="orphan_min_age", to_argument=_seconds
                ),
            },
        ),
        JobSpec(
            name="detect_stuck_sessions",
            service="sessions_api.lifecycle.stuck.detect_stuck_sessions",
            summary="Flags running sessions without an update for too long; clears the flag after.",
            why_this_often="Every 5 minutes, so the dashboard's stuck view stays current.",
            every=timedelta(minutes=5),
            soft_time_limit=timedelta(minutes=5),
            time_limit=timedelta(minutes=6),
            params={"batch_size": Param(int, 1000, minimum=1)},
        ),
        JobSpec(
            name="index_search",
            service="sessions_api.search.index.index_search",
            summary="Adds the search entries ingest wrote to SQLite's full-text index.",
            why_this_often="Every 15 seconds: search reads the entries still waiting directly, "
            "and the fewer wait, the less a search reads (on PostgreSQL it has nothing to do).",
            every=timedelta(seconds=15),
            soft_time_limit=timedelta(minutes=5),
            time_limit=timedelta(minutes=6),
            params={"batch_size": Param(int, 1000, minimum=1)},
        ),
        JobSpec(
            name="fold_otel_spans",
            service="sessions_api.ingest.otlp.fold_otel_spans",
            summary="Appends the spans POST /v1/traces received to their sessions' documents.",
            why_this_often="Every 15 seconds: spans of large exports show in their sessions "
            "that soon (small ones are appended before the answer), and a session takes all its "
            "new spans as one version.",
            every=timedelta(seconds=15),
            soft_time_limit=timedelta(minutes=5),
            time_limit=timedelta(minutes=6),
            params={"batch_size": Param(int, 5000, minimum=1)},
        ),
        JobSpec(
            name="close_idle_otel_sessions",
            service="sessions_api.lifecycle.otel_idle.close_idle_otel_sessions",
            summary="Ends OpenTelemetry sessions whose traces closed and that went quiet.",
            why_this_often="Every minute, so a finished conversation shows as ended soon after "
            "OTEL_SESSION_IDLE.",
            every=timedelta(minutes=1),
            soft_time_limit=timedelta(minutes=2),
            time_limit=timedelta(minutes=3),
            params={"batch_size": Param(int, 1000, minimum=1)},
        ),
        JobSpec(
            name="evaluate_alerts",
            service="sessions_api.lifecycle.alerts.evaluate.evaluate_alerts",
            summary="Checks alert rules that need a clock (stuck sessions, tool error rates) and "
            "session saves whose alert check was lost.",
            why_this_often="Every minute: a stall or an error-rate window is reported within a "
            "minute of crossing its threshold; session ends are checked at commit, not here.",
            every=timedelta(minutes=1),
            soft_time_limit=timedelta(minutes=2),
            time_limit=timedelta(minutes=3),
        ),
        JobSpec(
            name="deliver_alerts",
            service="sessions_api.lifecycle.alerts.delivery.deliver_alerts",
            summary="Sends alert notifications that are due: retries after backoff, and any "
            "whose worker or message was lost.",
            why_this_often="Every minute: first attempts go out at once from their own task; "
            "this only catches retries and losses, so a minute is soon enough.",
            every=timedelta(minutes=1),
            soft_time_limit=timedelta(minutes=4),
            time_limit=timedelta(minutes=5),
            params={"batch_size": Param(int, 100, minimum=1)},
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
        param = spec.params.get(name)
        if param is None:
            allowed = ", ".join(spec.params) or "none"
            raise InvalidParams(f"{job} takes no parameter {name!r} (it takes: {allowed})")
        cleaned[name] = _convert(name, value, param)
    return cleaned


def _convert(name: str, value: Any, param: Param) -> Any:
    kind = param.kind
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
    if converted < param.minimum:
        raise InvalidParams(f"{name} must be positive, not {value!r}")
    return converted
