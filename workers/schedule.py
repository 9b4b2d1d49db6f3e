"""The beat schedule, derived from the job registry (workers/registry.py): one entry per job,
named after it, sending its task every ``JobSpec.every``.

Every entry sends its task with ``triggered_by="beat"`` and an ``expires`` shorter than its
period, so messages that piled up while no worker was consuming are dropped instead of running
back to back. Runs are recorded and locked per job (workers/runs.py); a beat run is
skipped when the same job already ran within the last 80% of its period, so two beat
instances never double a periodic side effect.

Each period can be changed, or the entry switched off, with an environment variable named
after the job: ``JOB_SCHEDULE_EXPIRE_SESSIONS=15m`` (or seconds, or ``off``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

# Imported by workers/celery.py before Django is set up: nothing here may load models.
from sessions_api.conf import parse_duration
from workers.registry import JOBS

#: A beat run is skipped when a beat run of the same job started within this share of the
#: period (clock drift between beat instances and queueing delays stay well inside it).
MIN_GAP_SHARE = 0.8
#: A message not picked up within this share of the period expires.
EXPIRES_SHARE = 0.9


@dataclass(frozen=True)
class ScheduleInfo:
    """What beat does with a job, as the Jobs page shows it."""

    every: timedelta | None  # None: not scheduled
    description: str = ""


def period(job: str) -> timedelta | None:
    """The job's period after any JOB_SCHEDULE_<JOB> override; None when switched off."""
    override = os.environ.get(f"JOB_SCHEDULE_{job.upper()}")
    if override is None:
        return JOBS[job].every
    return parse_duration(override, name=f"JOB_SCHEDULE_{job.upper()}")


def min_gap(job: str, period_s: float | None = None) -> timedelta | None:
    """How close two beat runs of ``job`` may start; from the period beat sent along, else
    from this process's own schedule."""
    every = timedelta(seconds=period_s) if period_s else (period(job) if job in JOBS else None)
    return every * MIN_GAP_SHARE if every is not None else None


def beat_schedule() -> dict[str, dict[str, Any]]:
    """Celery's ``beat_schedule``: entry name -> task, period, kwargs, expires."""
    entries: dict[str, dict[str, Any]] = {}
    for job in JOBS:
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
    info = {}
    for job in JOBS:
        every = period(job)
        if every is None:
            info[job] = ScheduleInfo(every=None, description="not scheduled (switched off)")
        else:
            info[job] = ScheduleInfo(every=every, description=describe_period(every))
    return info


def describe_period(every: timedelta) -> str:
    """``hourly``, ``every 5 minutes``, ``every 6 hours``, ``every 90 seconds``."""
    seconds = int(every.total_seconds())
    if seconds == 3600:
        return "hourly"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"every {count} {unit}{'s' if count != 1 else ''}"
    return f"every {seconds} seconds"
