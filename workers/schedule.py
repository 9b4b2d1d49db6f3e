"""The beat schedule: one entry per job, each with what it does and why this often.

Every entry sends its task with ``triggered_by="beat"`` and an ``expires`` shorter than its
period, so messages that piled up while no worker was consuming are dropped instead of running
back to back. Runs are recorded and locked per job (workers/runs.py); a beat run is
skipped when the same job already ran within the last 80% of its period, so two beat
instances never double a periodic side effect (RELIABILITY F7).

Each period can be changed, or the entry switched off, with an environment variable named
after the job: ``JOB_SCHEDULE_EXPIRE_SESSIONS=15m`` (or seconds, or ``off``).
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import TYPE_CHECKING, Any

# Imported by workers/celery.py before Django is set up: nothing here may load models.
from sessions_api.conf import parse_duration

if TYPE_CHECKING:
    from workers.runs import ScheduleInfo

#: A beat run is skipped when a beat run of the same job started within this share of the
#: period (clock drift between beat instances and queueing delays stay well inside it).
MIN_GAP_SHARE = 0.8
#: A message not picked up within this share of the period expires.
EXPIRES_SHARE = 0.9

# job -> (default period, plain-English reason)
DEFAULTS: dict[str, tuple[timedelta, str]] = {
    # Every 5 minutes: mark sessions expired once their own expiry passed, or once they idled
    # longer than the policy allows. Indexed and cheap, so the Expired status is never stale
    # for long.
    "expire_sessions": (timedelta(minutes=5), "every 5 minutes"),
    # Every 5 minutes: flag running sessions without an update for STUCK_AFTER, and clear the
    # flag on those that moved on, so the dashboard's "stuck" view stays current.
    "detect_stuck_sessions": (timedelta(minutes=5), "every 5 minutes"),
    # Every 5 minutes: fold sessions received since the last run into the hourly and daily
    # rollups the charts read (once a day a run rebuilds them all).
    "rollup_analytics": (timedelta(minutes=5), "every 5 minutes"),
    # Every 2 minutes: import new and changed documents from the attached MongoDB collection,
    # at most 5,000 per run; does nothing until a source is configured.
    "sync_mongo_source": (timedelta(minutes=2), "every 2 minutes"),
    # Hourly: delete sessions expired longer than the grace period or past retention, in small
    # batches that leave ingestion its latency. Hourly keeps each run short.
    "purge_sessions": (timedelta(hours=1), "hourly"),
    # Every 6 hours: drop versions beyond the newest N per session; versions pile up slowly.
    "prune_versions": (timedelta(hours=6), "every 6 hours"),
    # Hourly: compare index rows with stored bodies and remove bodies a crashed ingest left
    # behind (Mongo store), before they can get in a retried ingest's way.
    "reconcile_store": (timedelta(hours=1), "hourly"),
}


def period(job: str) -> timedelta | None:
    """The job's period after any JOB_SCHEDULE_<JOB> override; None when switched off."""
    default, _ = DEFAULTS[job]
    override = os.environ.get(f"JOB_SCHEDULE_{job.upper()}")
    if override is None:
        return default
    return parse_duration(override, name=f"JOB_SCHEDULE_{job.upper()}")


def min_gap(job: str, period_s: float | None = None) -> timedelta | None:
    """How close two beat runs of ``job`` may start; from the period beat sent along, else
    from this process's own schedule."""
    every = timedelta(seconds=period_s) if period_s else (period(job) if job in DEFAULTS else None)
    return every * MIN_GAP_SHARE if every is not None else None


def beat_schedule() -> dict[str, dict[str, Any]]:
    """Celery's ``beat_schedule``: entry name -> task, period, kwargs, expires."""
    entries: dict[str, dict[str, Any]] = {}
    for job in DEFAULTS:
        every = period(job)
        if every is None:
            continue
        entries[job] = {
            "task": job,
            "schedule": every,
            # The period travels with the message: the worker dedupes against it even when
            # its own environment says something else.
            "kwargs": {"triggered_by": "beat", "period_s": every.total_seconds()},
            "options": {"expires": max(1.0, every.total_seconds() * EXPIRES_SHARE)},
        }
    return entries


def schedule_info() -> dict[str, ScheduleInfo]:
    """What the Jobs page shows about each job's schedule."""
    from workers.runs import ScheduleInfo

    info = {}
    for job, (default, text) in DEFAULTS.items():
        every = period(job)
        if every is None:
            info[job] = ScheduleInfo(every=None, description="not scheduled (switched off)")
        elif every == default:
            info[job] = ScheduleInfo(every=every, description=text)
        else:
            info[job] = ScheduleInfo(every=every, description=f"every {_human(every)}")
    return info


def _human(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"
